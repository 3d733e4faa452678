import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { cancelled, ReenactError, type ErrorCode } from '../errors.js';
import type { ProgressEvent } from '../types.js';
import { workerEntry } from '../worker-entry.js';
import type { JobThreadData, JobThreadMessage } from './job-thread.js';
import type { JobOptions, JobResult, JobRunner } from './jobs.js';
import type { UploadStore } from './uploads.js';

/** A job's options as `animate` takes them; FOMM's config and checkpoint are names in `modelsFolder`. */
export function jobRequest(
  inputs: { photo: string; clip: string },
  options: JobOptions,
  output: string,
  modelsFolder: string,
  threads?: number,
): JobThreadData['request'] {
  return {
    source: inputs.photo,
    driving: inputs.clip,
    output,
    model: options.model,
    ...(options.model === 'fomm' && options.config && options.checkpoint
      ? { config: join(modelsFolder, options.config), checkpoint: join(modelsFolder, options.checkpoint) }
      : {}),
    compare: options.compare,
    label: options.label,
    ...(options.face !== undefined ? { face: options.face } : {}),
    ...(options.startFrame !== undefined ? { startFrame: options.startFrame } : {}),
    ...(threads ? { threads } : {}),
  };
}

/**
 * Runs a job (animate, then the thumbnail when asked for) on a worker thread of its own, so the
 * frames it computes never hold up the process's event loop (the studio's answers, a worker's
 * lock renewals); aborting the signal aborts animate there, which removes its partial output
 * before the thread ends. `log` gets the trace of an error that is a bug, not bad input.
 */
export async function runJobThread(
  data: JobThreadData,
  signal: AbortSignal,
  onProgress: (event: ProgressEvent) => void,
  log: (line: string) => void,
): Promise<JobResult> {
  if (signal.aborted) throw cancelled();
  const worker = new Worker(workerEntry(import.meta.url, 'job-thread'), { workerData: data });
  const abort = () => worker.postMessage('abort');
  signal.addEventListener('abort', abort, { once: true });
  try {
    return await new Promise<JobResult>((resolve, reject) => {
      worker.on('message', (message: JobThreadMessage) => {
        if ('progress' in message) return onProgress(message.progress);
        if ('result' in message) return resolve(message.result);
        const { code, message: text, hint } = message.error;
        if (code) return reject(new ReenactError(code as ErrorCode, text, hint));
        // A bug, not bad input: the trace goes to the log, its first line to the page.
        log(text);
        reject(new Error(text.split('\n')[0]!.replace(/^Error: /, '')));
      });
      worker.on('error', reject);
      worker.on('exit', (code) => reject(new Error(`the job's thread stopped (exit code ${code})`)));
    });
  } finally {
    signal.removeEventListener('abort', abort);
    // Its answer is in; whatever it still holds (models, wasm) goes with the thread.
    await worker.terminate();
  }
}

/**
 * The studio's job: `animate` on the job's uploads, writing into the job's folder, then a
 * thumbnail from the result for the history, on a thread of its own (runJobThread).
 */
export function animateJobRunner(uploads: UploadStore, modelsFolder: string, threads?: number): JobRunner {
  return async (job, files, signal, onProgress) => {
    const [photo, clip] = await Promise.all([uploads.get(job.photo), uploads.get(job.clip)]);
    if (!photo || !clip) {
      throw new ReenactError(
        'FILE_NOT_FOUND',
        `the job's ${!photo ? 'photo' : 'clip'} is no longer on the server (pruned or deleted).`,
        'Upload it again and start a new job.',
      );
    }
    const request = jobRequest(
      { photo: uploads.path(photo), clip: uploads.path(clip) },
      job.options,
      files.result,
      modelsFolder,
      threads,
    );
    return runJobThread({ request, thumbnail: files.thumbnail }, signal, onProgress, (trace) =>
      process.stderr.write(`reenact studio: job ${job.id} failed: ${trace}\n`),
    );
  };
}
