import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { cancelled, ReenactError, type ErrorCode } from '../errors.js';
import { workerEntry } from '../worker-entry.js';
import type { JobThreadData, JobThreadMessage } from './job-thread.js';
import type { JobResult, JobRunner } from './jobs.js';
import type { UploadStore } from './uploads.js';

/**
 * The studio's job: `animate` on the job's uploads, writing into the job's folder, then a
 * thumbnail from the result for the history. It runs on a worker thread of its own, so the
 * frames it computes never hold up the server's answers; aborting the signal aborts animate
 * there, which removes its partial output before the thread ends.
 */
export function animateJobRunner(uploads: UploadStore, modelsFolder: string, threads?: number): JobRunner {
  return async (job, files, signal, onProgress) => {
    const [photo, clip] = await Promise.all([uploads.get(job.photo), uploads.get(job.clip)]);
    if (!photo || !clip) {
      throw new ReenactError('FILE_NOT_FOUND', `the job's ${!photo ? 'photo' : 'clip'} is no longer on the server (pruned or deleted).`, 'Upload it again and start a new job.');
    }
    const { options } = job;
    const data: JobThreadData = {
      request: {
        source: uploads.path(photo),
        driving: uploads.path(clip),
        output: files.result,
        model: options.model,
        ...(options.model === 'fomm' && options.config && options.checkpoint
          ? { config: join(modelsFolder, options.config), checkpoint: join(modelsFolder, options.checkpoint) }
          : {}),
        compare: options.compare,
        label: options.label,
        ...(options.face !== undefined ? { face: options.face } : {}),
        ...(options.startFrame !== undefined ? { startFrame: options.startFrame } : {}),
        ...(threads ? { threads } : {}),
      },
      thumbnail: files.thumbnail,
    };
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
          // A bug, not bad input: the trace goes to the studio's terminal, its first line to the page.
          process.stderr.write(`reenact studio: job ${job.id} failed: ${text}\n`);
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
  };
}
