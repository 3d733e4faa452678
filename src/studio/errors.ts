import { ReenactError, type ErrorCode } from '../errors.js';

/** A refused request: the HTTP status and the JSON body `{ error: { code, message, hint } }`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }

  get body(): { error: { code: string; message: string; hint?: string } } {
    return { error: { code: this.code, message: this.message, ...(this.hint ? { hint: this.hint } : {}) } };
  }
}

/** A 404 for an upload or job id the studio does not hold (only its first 40 characters are echoed). */
export function unknownIdError(
  code: 'UNKNOWN_UPLOAD' | 'UNKNOWN_JOB',
  what: string,
  id: string,
  hint: string,
): HttpError {
  return new HttpError(404, code, `there is no ${what} with id "${id.slice(0, 40)}".`, hint);
}

/** The status for a library error caused by what the client sent. */
const STATUS: Partial<Record<ErrorCode, number>> = {
  NOT_MEDIA: 415,
  IMAGE_TOO_LARGE: 413,
  CORRUPT_MEDIA: 422,
  NO_FRAMES: 422,
  NO_FACE: 422,
  FACE_INDEX: 422,
  NO_TRACK: 422,
  BAD_ARGUMENT: 400,
  BAD_CHECKPOINT: 422,
  CHECKPOINT_MISMATCH: 422,
  BAD_CONFIG: 422,
};

/** A ReenactError about the client's input as an HttpError; anything else is rethrown as is. */
export function toHttpError(error: unknown): HttpError {
  if (error instanceof HttpError) return error;
  if (error instanceof ReenactError && STATUS[error.code])
    return new HttpError(STATUS[error.code]!, error.code, error.message, error.hint);
  throw error;
}
