import { stat } from 'node:fs/promises';
import { parentPort, workerData } from 'node:worker_threads';
import { ReenactError } from '../errors.js';
import { runFfmpeg } from '../media/ffmpeg.js';
import { writeAtomically } from '../output.js';
import { animate, type AnimateOptions } from '../pipeline/animate.js';
import type { JobResult } from './jobs.js';

/** What the studio's job thread is given (see runner.ts), and what it sends back. */
export interface JobThreadData {
  request: Omit<AnimateOptions, 'signal'>;
  thumbnail: string;
}

export type JobThreadMessage =
  | { progress: { stage: string; done: number; total?: number } }
  | { result: JobResult }
  | { error: { code?: string; message: string; hint?: string } };

const port = parentPort!;
const { request, thumbnail } = workerData as JobThreadData;
const controller = new AbortController();
port.on('message', (message: unknown) => {
  if (message === 'abort') controller.abort();
});
const send = (message: JobThreadMessage) => port.postMessage(message);

try {
  const result = await animate({ ...request, signal: controller.signal }, (event) => send({ progress: event }));
  // The history's picture: a frame from the first second of the result.
  const at = Math.min(1, result.duration / 2);
  await writeAtomically(thumbnail, (temporary) =>
    runFfmpeg(['-y', '-v', 'error', '-ss', String(at), '-i', result.output, '-frames:v', '1', '-vf', 'scale=320:-2', '-f', 'image2', '-c:v', 'mjpeg', temporary], 'making the thumbnail', { signal: controller.signal }),
  );
  const { width, height, fps, frames, duration, hasAudio, labelled, seconds } = result;
  send({ result: { width, height, fps, frames, duration, hasAudio, labelled, seconds, bytes: (await stat(result.output)).size } });
} catch (error) {
  send({ error: error instanceof ReenactError ? { code: error.code, message: error.message, ...(error.hint ? { hint: error.hint } : {}) } : { message: (error as Error).stack ?? String(error) } });
}
