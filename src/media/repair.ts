import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { ReenactError } from '../errors.js';
import { PendingOutput, writeAtomically } from '../output.js';
import { fpsRational, runFfmpeg, runTool } from './ffmpeg.js';
import { probeVideo, type VideoInfo } from './probe.js';

/** Rates cameras and browsers record at; a measured rate this close to one is taken as it. */
const COMMON_RATES = [24000 / 1001, 24, 25, 30000 / 1001, 30, 48, 50, 60000 / 1001, 60, 90, 120];

/** The average frame rate from the video packets' timestamps (what MediaRecorder files actually hold). */
export async function measureFrameRate(path: string, options: { signal?: AbortSignal } = {}): Promise<number> {
  const result = await runTool(
    'ffprobe',
    ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=pts_time', '-of', 'csv=p=0', '-i', path],
    options,
  );
  const times = result.stdout
    .split('\n')
    .map((line) => Number.parseFloat(line))
    .filter((time) => Number.isFinite(time))
    .sort((a, b) => a - b);
  if (times.length < 2) return 0;
  const gaps = times
    .slice(1)
    .map((time, i) => time - times[i]!)
    .sort((a, b) => a - b);
  const typicalGap = gaps[Math.floor(gaps.length / 2)]!;
  // The last frame is shown for one typical frame time, so n frames cover (last - first + gap) seconds.
  const span = times[times.length - 1]! - times[0]! + typicalGap;
  if (!(span > 0)) return 0;
  const measured = times.length / span;
  const nearest = COMMON_RATES.reduce((best, rate) =>
    Math.abs(rate - measured) < Math.abs(best - measured) ? rate : best,
  );
  return Math.abs(nearest - measured) / nearest < 0.02 ? nearest : Math.round(measured * 100) / 100;
}

async function transcodeConstantRate(
  input: string,
  info: VideoInfo,
  outputPath: string,
  signal?: AbortSignal,
): Promise<void> {
  const fps = info.fps || (await measureFrameRate(input, { signal }));
  if (!fps) {
    throw new ReenactError(
      'CORRUPT_MEDIA',
      `${input} has no usable frame timestamps, so its frame rate cannot be recovered.`,
      'Record the video again, or convert it with a video editor to a constant frame rate.',
    );
  }
  await runFfmpeg(
    [
      '-y',
      '-i',
      input,
      '-map',
      '0:v:0',
      '-map',
      '0:a:0?',
      // The fps filter places frames by their timestamps on a constant-rate grid; the result has a real duration and frame count.
      '-vf',
      `fps=${fpsRational(fps)}`,
      '-c:v',
      'libx264',
      '-preset',
      'veryfast',
      '-crf',
      '16',
      '-pix_fmt',
      'yuv420p',
      '-c:a',
      'aac',
      '-b:a',
      '160k',
      '-movflags',
      '+faststart',
      '-f',
      'mp4',
      outputPath,
    ],
    `repairing ${input}`,
    { signal },
  );
}

/**
 * Rewrites a recording whose container lacks a duration or a usable frame rate (the browser's
 * MediaRecorder WebM, for one) as an MP4 with a constant frame rate and a real duration, so
 * frames can be addressed exactly. Audio is kept (as AAC). Returns the repaired file's info.
 */
export async function repairRecording(
  input: string,
  output: string,
  options: { signal?: AbortSignal } = {},
): Promise<VideoInfo> {
  if (!['.mp4', '.m4v', '.mov'].includes(extname(output).toLowerCase())) {
    throw new ReenactError(
      'BAD_ARGUMENT',
      `The repaired video is written as MP4, so ${output} should end in .mp4.`,
      'Name the output file something.mp4.',
    );
  }
  const info = await probeVideo(input);
  await writeAtomically(
    output,
    (tempPath) => transcodeConstantRate(input, info, tempPath, options.signal),
    options.signal,
  );
  return probeVideo(output);
}

export interface OpenedVideo {
  /** The video's info (the repaired copy's, when one was made). */
  info: VideoInfo;
  /** The file to decode: the original, or a repaired temporary copy. */
  path: string;
  /** True when path is a repaired temporary copy. */
  repaired: boolean;
  /** Removes the temporary copy, if any; call when done with the video. */
  cleanup: () => Promise<void>;
}

/**
 * Probes a video and, where its container cannot be used frame-accurately (needsRepair),
 * makes a constant-rate temporary copy to use instead. The copy is removed by cleanup(), or at
 * once when making it fails or `signal` aborts.
 */
export async function openVideo(
  path: string,
  options: { info?: VideoInfo; signal?: AbortSignal } = {},
): Promise<OpenedVideo> {
  const info = options.info ?? (await probeVideo(path));
  if (!info.needsRepair) return { info, path, repaired: false, cleanup: async () => {} };
  const temporary = await PendingOutput.create(
    join(tmpdir(), `reenact-repaired-${randomBytes(4).toString('hex')}.mp4`),
  );
  try {
    await transcodeConstantRate(path, info, temporary.tempPath, options.signal);
    const repairedInfo = await probeVideo(temporary.tempPath);
    return { info: repairedInfo, path: temporary.tempPath, repaired: true, cleanup: () => temporary.discard() };
  } catch (error) {
    await temporary.discard();
    throw error;
  }
}
