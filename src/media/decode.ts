import type { Readable } from 'node:stream';
import { cancelled, invalidOption, ReenactError } from '../errors.js';
import type { Box, VideoFrame } from '../types.js';
import { StderrTail, ffmpegFailed, passthroughArgs, spawnTool, waitForExit } from './ffmpeg.js';
import { probeVideo, type VideoInfo } from './probe.js';
import { openVideo } from './repair.js';

export interface DecodeOptions {
  /** Region to keep, in display pixels of the source; parts outside the frame come out black. */
  crop?: Box;
  /** Output size; when only one is given the other keeps the aspect ratio of the (cropped) source. */
  width?: number;
  height?: number;
  /** Seconds from the start of the video. */
  startTime?: number;
  /** Seconds to decode from startTime; to the end when absent. */
  duration?: number;
  /** Aborting kills ffmpeg and makes the generator throw CANCELLED. */
  signal?: AbortSignal;
  /** The video's probeVideo() result, when the caller already has it (saves one ffprobe run). */
  info?: VideoInfo;
}

interface DecodePlan {
  width: number;
  height: number;
  filters: string[];
}

function positiveInteger(value: number | undefined, name: string): void {
  if (value !== undefined && !(Number.isInteger(value) && value > 0)) {
    throw invalidOption(name, 'a positive whole number of pixels', value, `Round \`${name}\` before decoding.`);
  }
}

/** The crop/pad/scale filter chain and the size of the frames it yields. */
export function planDecode(
  info: Pick<VideoInfo, 'width' | 'height'>,
  options: Pick<DecodeOptions, 'crop' | 'width' | 'height'> = {},
): DecodePlan {
  positiveInteger(options.width, 'width');
  positiveInteger(options.height, 'height');
  const filters: string[] = [];
  let sourceWidth = info.width;
  let sourceHeight = info.height;
  const crop = options.crop;
  if (crop) {
    const x = Math.round(crop.x);
    const y = Math.round(crop.y);
    const width = Math.round(crop.width);
    const height = Math.round(crop.height);
    if (!(width > 0 && height > 0) || !Number.isFinite(x) || !Number.isFinite(y)) {
      throw new ReenactError(
        'BAD_ARGUMENT',
        `The crop box ${JSON.stringify(crop)} has no area.`,
        'Give a crop box with a positive width and height.',
      );
    }
    if (x >= info.width || y >= info.height || x + width <= 0 || y + height <= 0) {
      throw new ReenactError(
        'BAD_ARGUMENT',
        `The crop box ${JSON.stringify(crop)} lies outside the ${info.width}x${info.height} video.`,
        'Give a crop box that overlaps the video frame (in display pixels).',
      );
    }
    // Pad first where the box reaches past an edge, so a face near the border keeps its place in the crop.
    const left = Math.max(0, -x);
    const top = Math.max(0, -y);
    const right = Math.max(0, x + width - info.width);
    const bottom = Math.max(0, y + height - info.height);
    if (left || top || right || bottom) {
      filters.push(`pad=${info.width + left + right}:${info.height + top + bottom}:${left}:${top}:black`);
    }
    filters.push(`crop=${width}:${height}:${x + left}:${y + top}:exact=1`);
    sourceWidth = width;
    sourceHeight = height;
  }
  let width =
    options.width ??
    (options.height ? Math.max(1, Math.round((options.height * sourceWidth) / sourceHeight)) : sourceWidth);
  let height =
    options.height ??
    (options.width ? Math.max(1, Math.round((options.width * sourceHeight) / sourceWidth)) : sourceHeight);
  width = Math.round(width);
  height = Math.round(height);
  if (width !== sourceWidth || height !== sourceHeight) {
    // Area averaging when shrinking (no aliasing), bilinear when enlarging.
    const method = width <= sourceWidth && height <= sourceHeight ? 'area' : 'bilinear';
    filters.push(`scale=${width}:${height}:flags=${method}+accurate_rnd`);
  }
  filters.push('format=rgb24');
  return { width, height, filters };
}

function looksCorrupt(stderr: StderrTail): boolean {
  return /Invalid data|partial file|corrupt|truncat|error while decoding|moov atom|Invalid NAL|missing picture|concealing/i.test(
    stderr.toString(),
  );
}

/**
 * Decodes a video as RGB frames, one at a time: ffmpeg crops and scales, the pipe carries raw
 * RGB24, and the next frame is read only when the consumer asks for it, so memory stays at a
 * frame or two whatever the clip's length. Every decoded frame comes out exactly once
 * (passthrough timing, no drops or duplicates), with its index in the stream and its time.
 *
 * A recording that needs repair (see probeVideo) is decoded through a temporary constant-rate copy.
 * Stopping early (break/return) or aborting kills ffmpeg. A file that turns out damaged part
 * way yields the frames that decoded and then throws CORRUPT_MEDIA.
 */
export async function* decodeVideo(path: string, options: DecodeOptions = {}): AsyncGenerator<VideoFrame> {
  const { signal } = options;
  if (signal?.aborted) throw cancelled();
  let info = options.info ?? (await probeVideo(path));
  let source = path;
  let cleanup: (() => Promise<void>) | undefined;
  if (info.needsRepair) {
    // Without a stated rate and duration frames have no dependable times: decode a constant-rate copy.
    // Each call repairs again, so callers that decode a video more than once use openVideo() first.
    const opened = await openVideo(path, { info, signal });
    info = opened.info;
    source = opened.path;
    cleanup = opened.cleanup;
  }
  try {
    yield* decodeFrames(source, info, options);
  } finally {
    await cleanup?.();
  }
}

async function* decodeFrames(path: string, info: VideoInfo, options: DecodeOptions): AsyncGenerator<VideoFrame> {
  const { signal } = options;
  const startTime = options.startTime ?? 0;
  if (!(Number.isFinite(startTime) && startTime >= 0)) {
    throw new ReenactError(
      'BAD_ARGUMENT',
      `startTime must be 0 or more seconds, not ${options.startTime}.`,
      'Give the start as seconds from the beginning of the video.',
    );
  }
  if (options.duration !== undefined && !(Number.isFinite(options.duration) && options.duration > 0)) {
    throw new ReenactError(
      'BAD_ARGUMENT',
      `duration must be more than 0 seconds, not ${options.duration}.`,
      'Give the length to decode in seconds, or leave it out to decode to the end.',
    );
  }
  const plan = planDecode(info, options);
  const frameBytes = plan.width * plan.height * 3;
  const trimmed = startTime > 0 || options.duration !== undefined;
  const args = ['-hide_banner', '-nostdin', '-v', 'error'];
  if (startTime > 0) args.push('-ss', String(startTime));
  args.push('-i', path);
  if (options.duration !== undefined) args.push('-t', String(options.duration));
  args.push(
    '-map',
    '0:v:0',
    '-an',
    '-sn',
    '-dn',
    '-vf',
    plan.filters.join(','),
    ...(await passthroughArgs()),
    '-pix_fmt',
    'rgb24',
    '-f',
    'rawvideo',
    'pipe:1',
  );

  // Frame k of a constant-rate stream starts at k/fps; input seeking keeps frames at or after startTime.
  const firstIndex = startTime > 0 ? Math.ceil(startTime * info.fps - 1e-3) : 0;
  const child = spawnTool('ffmpeg', args);
  const stderr = new StderrTail().attach(child);
  const exited = waitForExit(child);
  exited.catch(() => {});
  const onAbort = () => child.kill('SIGKILL');
  signal?.addEventListener('abort', onAbort, { once: true });
  let count = 0;
  try {
    let frame: Uint8Array | undefined;
    let filled = 0;
    for await (const chunk of child.stdout as Readable as AsyncIterable<Buffer>) {
      let offset = 0;
      while (offset < chunk.length) {
        frame ??= new Uint8Array(frameBytes);
        const take = Math.min(frameBytes - filled, chunk.length - offset);
        frame.set(chunk.subarray(offset, offset + take), filled);
        filled += take;
        offset += take;
        if (filled === frameBytes) {
          const index = firstIndex + count;
          yield { width: plan.width, height: plan.height, data: frame, index, time: info.fps ? index / info.fps : 0 };
          count++;
          frame = undefined;
          filled = 0;
          if (signal?.aborted) throw cancelled();
        }
      }
    }
    const { code } = await exited.catch((cause: unknown) => {
      throw new ReenactError(
        'FFMPEG_FAILED',
        `Could not start ffmpeg (${(cause as Error).message}).`,
        'Check that ffmpeg runs on this machine, or set FFMPEG_PATH.',
        { cause },
      );
    });
    if (signal?.aborted) throw cancelled();
    if (code !== 0) {
      if (looksCorrupt(stderr)) throw corruptAfter(path, count, stderr);
      throw ffmpegFailed(`decoding ${path}`, stderr);
    }
    if (filled > 0 || (!trimmed && info.frameCount > 0 && count < info.frameCount && looksCorrupt(stderr))) {
      throw corruptAfter(path, count, stderr);
    }
    if (count === 0 && !trimmed) {
      throw new ReenactError(
        'NO_FRAMES',
        `No frames could be decoded from ${path}.`,
        'Check that the video plays in a video player; export it again if not.',
      );
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited.catch(() => {});
    }
  }
}

function corruptAfter(path: string, decoded: number, stderr: StderrTail): ReenactError {
  return new ReenactError(
    'CORRUPT_MEDIA',
    `${path} is damaged: decoding stopped after ${decoded} frame${decoded === 1 ? '' : 's'} (${stderr.lines(2) || 'unexpected end of data'}).`,
    'Copy or export the video again, or trim it to the part that plays.',
  );
}
