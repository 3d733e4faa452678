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
  | 'BAD_INSTALL'
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

/**
 * A BAD_ARGUMENT naming the option as the library spells it, in backticks (`startFrame`), with
 * what it must be and what it was; the CLI maps backticked option names to its flags.
 */
export function invalidOption(name: string, expected: string, actual: unknown, hint?: string): ReenactError {
  return new ReenactError('BAD_ARGUMENT', `\`${name}\` must be ${expected}, not ${shown(actual)}.`, hint);
}

/** A value as a message shows it: strings quoted, arrays and objects as JSON. */
function shown(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null || typeof value !== 'object') return String(value);
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}

/**
 * The one check of a `threads` option (animate, FommModel): undefined (all cores) or a whole
 * number of at least 1.
 */
export function checkThreads(threads: number | undefined): number | undefined {
  if (threads !== undefined && !(Number.isInteger(threads) && threads >= 1)) {
    throw invalidOption('threads', 'a whole number of at least 1', threads, 'Leave it out to use all cores.');
  }
  return threads;
}

/** What every stage throws when its AbortSignal is aborted. */
export function cancelled(): ReenactError {
  return new ReenactError('CANCELLED', 'The operation was cancelled.', 'Run it again when ready.');
}

/** Throws CANCELLED if `signal` is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw cancelled();
}
