/**
 * Every failure a user can cause ends in a ReenactError: a stable code for programs,
 * a message naming the problem, and a hint saying what to do about it.
 */
export type ErrorCode =
  | 'FILE_NOT_FOUND'
  | 'NOT_MEDIA'
  | 'CORRUPT_MEDIA'
  | 'NO_FRAMES'
  | 'IMAGE_TOO_LARGE'
  | 'NO_FACE'
  | 'FACE_INDEX'
  | 'NO_TRACK'
  | 'BAD_CHECKPOINT'
  | 'CHECKPOINT_MISMATCH'
  | 'BAD_CONFIG'
  | 'BAD_ARGUMENT'
  | 'OUTPUT_UNWRITABLE'
  | 'FFMPEG_FAILED'
  | 'CANCELLED';

export class ReenactError extends Error {
  override readonly name = 'ReenactError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** What the user can do about it, one sentence. */
    readonly hint?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** The message and the hint as a user reads them. */
  describe(): string {
    return this.hint ? `${this.message}\n  ${this.hint}` : this.message;
  }
}

/** What every stage throws when its AbortSignal is aborted. */
export function cancelled(): ReenactError {
  return new ReenactError('CANCELLED', 'The operation was cancelled.', 'Run it again when ready.');
}

/** Throws CANCELLED if `signal` is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw cancelled();
}
