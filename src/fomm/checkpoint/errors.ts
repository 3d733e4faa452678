import { ReenactError } from '../../errors.js';

/** What is wrong with a checkpoint, as far as the reader can tell; each has its hint. */
export type CheckpointProblem = 'damaged' | 'unsupported';

const HINTS: Record<CheckpointProblem, string> = {
  damaged: 'The file may be truncated or corrupted; download the checkpoint again.',
  unsupported:
    'Use an unmodified PyTorch checkpoint of the First Order Motion Model (for example vox-cpk.pth.tar); reenact never runs code from a checkpoint.',
};

/** The BAD_CHECKPOINT error of the checkpoint readers (container, pickle, zip). */
export function badCheckpoint(message: string, cause?: unknown, problem: CheckpointProblem = 'damaged'): ReenactError {
  return new ReenactError('BAD_CHECKPOINT', message, HINTS[problem], cause === undefined ? undefined : { cause });
}
