import { stat } from 'node:fs/promises';
import { parentPort, workerData } from 'node:worker_threads';
import { ReenactError } from '../errors.js';
import { animate, type AnimateOptions, type AnimateStage } from '../pipeline/animate.js';
import type { ProgressEvent } from '../types.js';
import type { JobResult } from './jobs.js';
import { writeThumbnail } from './thumbnail.js';

/** What the studio's job thread is given (see runner.ts), and what it sends back. */
export interface JobThreadData {
  request: Omit<AnimateOptions, 'signal' | 'onProgress'>;
  /** Where the history's picture goes; none on a worker (the studio makes it from the result it receives). */
  thumbnail?: string;
}

export type JobThreadMessage =
  | { progress: ProgressEvent<AnimateStage> }
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
  const result = await animate({
    ...request,
    signal: controller.signal,
    onProgress: (event) => send({ progress: event }),
  });
  if (thumbnail) await writeThumbnail(result.output, thumbnail, result.duration, controller.signal);
  const { width, height, fps, frames, duration, hasAudio, labelled, seconds } = result;
  send({
    result: {
      width,
      height,
      fps,
      frames,
      duration,
      hasAudio,
      labelled,
      seconds,
      bytes: (await stat(result.output)).size,
    },
  });
} catch (error) {
  send({
    error:
      error instanceof ReenactError
        ? { code: error.code, message: error.message, ...(error.hint ? { hint: error.hint } : {}) }
        : { message: (error as Error).stack ?? String(error) },
  });
}
