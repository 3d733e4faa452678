import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ReenactError } from '../errors.js';
import { runFfmpeg } from '../media/ffmpeg.js';
import { writeAtomically } from '../output.js';
import { animate } from '../pipeline/animate.js';
import type { ProgressEvent } from '../types.js';
import type { JobOptions, JobResult, JobRunner } from './jobs.js';
import type { UploadStore } from './uploads.js';

/**
 * A job's `animate`, wherever it runs: in the studio (animateJobRunner) or on a worker that
 * downloaded the inputs (src/worker). FOMM's config and checkpoint are names in `modelsFolder`.
 * Returns what the studio keeps of the result.
 */
export async function animateJob(
  inputs: { photo: string; clip: string },
  options: JobOptions,
  output: string,
  settings: { modelsFolder: string; threads?: number },
  signal: AbortSignal,
  onProgress: (event: ProgressEvent) => void,
): Promise<JobResult> {
  const result = await animate(
    {
      source: inputs.photo,
      driving: inputs.clip,
      output,
      model: options.model,
      ...(options.model === 'fomm' && options.config && options.checkpoint
        ? { config: join(settings.modelsFolder, options.config), checkpoint: join(settings.modelsFolder, options.checkpoint) }
        : {}),
      compare: options.compare,
      label: options.label,
      ...(options.face !== undefined ? { face: options.face } : {}),
      ...(options.startFrame !== undefined ? { startFrame: options.startFrame } : {}),
      ...(settings.threads ? { threads: settings.threads } : {}),
      signal,
    },
    onProgress,
  );
  const { width, height, fps, frames, duration, hasAudio, labelled, seconds } = result;
  return { width, height, fps, frames, duration, hasAudio, labelled, seconds, bytes: (await stat(output)).size };
}

/** A small JPEG from the middle of the first two seconds of a result, for the history. */
export async function writeThumbnail(video: string, thumbnail: string, duration: number, signal?: AbortSignal): Promise<void> {
  const at = Math.min(1, duration / 2);
  await writeAtomically(thumbnail, (temporary) =>
    runFfmpeg(['-y', '-v', 'error', '-ss', String(at), '-i', video, '-frames:v', '1', '-vf', 'scale=320:-2', '-f', 'image2', '-c:v', 'mjpeg', temporary], 'making the thumbnail', signal ? { signal } : {}),
  );
}

/**
 * The studio's job: `animate` on the job's uploads, writing into the job's folder, then a
 * thumbnail from the result for the history. Cancelling aborts animate, which removes its
 * partial output.
 */
export function animateJobRunner(uploads: UploadStore, modelsFolder: string, threads?: number): JobRunner {
  return async (job, files, signal, onProgress) => {
    const [photo, clip] = await Promise.all([uploads.get(job.photo), uploads.get(job.clip)]);
    if (!photo || !clip) {
      throw new ReenactError('FILE_NOT_FOUND', `the job's ${!photo ? 'photo' : 'clip'} is no longer on the server (pruned or deleted).`, 'Upload it again and start a new job.');
    }
    const result = await animateJob({ photo: uploads.path(photo), clip: uploads.path(clip) }, job.options, files.result, { modelsFolder, ...(threads ? { threads } : {}) }, signal, onProgress);
    await writeThumbnail(files.result, files.thumbnail, result.duration, signal);
    return result;
  };
}
