import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ReenactError } from '../errors.js';
import { runFfmpeg } from '../media/ffmpeg.js';
import { writeAtomically } from '../output.js';
import { animate } from '../pipeline/animate.js';
import type { JobRunner } from './jobs.js';
import type { UploadStore } from './uploads.js';

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
    const { options } = job;
    const result = await animate(
      {
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
        signal,
      },
      onProgress,
    );
    const at = Math.min(1, result.duration / 2);
    await writeAtomically(files.thumbnail, (temporary) =>
      runFfmpeg(['-y', '-v', 'error', '-ss', String(at), '-i', files.result, '-frames:v', '1', '-vf', 'scale=320:-2', '-f', 'image2', '-c:v', 'mjpeg', temporary], 'making the thumbnail', { signal }),
    );
    const { width, height, fps, frames, duration, hasAudio, labelled, seconds } = result;
    return { width, height, fps, frames, duration, hasAudio, labelled, seconds, bytes: (await stat(files.result)).size };
  };
}
