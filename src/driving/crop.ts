import { rm } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { invalidOption, ReenactError } from '../errors.js';
import { FaceAnalyzer } from '../face/detector.js';
import { decodeVideo } from '../media/decode.js';
import { VideoEncoder } from '../media/encode.js';
import { probeVideo } from '../media/probe.js';
import { openVideo } from '../media/repair.js';
import { PendingOutput } from '../output.js';
import type { ProgressCallback } from '../types.js';
import {
  DEFAULT_MIN_FRAMES,
  findFaceTracks,
  longestTrack,
  writeTracksJson,
  type FaceTrack,
  type TrackOptions,
} from './tracks.js';

export interface CropVideoOptions {
  /** Side of the output clip in pixels (even). Default 256, what the FOMM vox models take. */
  size?: number;
  onProgress?: ProgressCallback<'crop'>;
  signal?: AbortSignal;
}

export interface CroppedVideo {
  path: string;
  frames: number;
  size: number;
  fps: number;
  hasAudio: boolean;
}

/**
 * Writes the track's frames, cut to its square box and scaled to size x size, as an MP4 with the
 * same stretch of the source's audio, so picture and sound stay in sync. Frames stream from
 * decoder to encoder; the file appears only when complete.
 */
export async function cropDrivingVideo(
  path: string,
  track: FaceTrack,
  outputPath: string,
  options: CropVideoOptions = {},
): Promise<CroppedVideo> {
  const size = options.size ?? 256;
  if (!Number.isInteger(size) || size < 16 || size > 4096 || size % 2 !== 0) {
    throw invalidOption('size', 'an even number of pixels from 16 to 4096', size, 'The models take 256.');
  }
  const opened = await openVideo(path, { signal: options.signal });
  try {
    const { info } = opened;
    const frames = track.end - track.start;
    if (!(frames > 0) || track.start < 0 || (info.frameCount > 0 && track.end > info.frameCount)) {
      throw new ReenactError(
        'BAD_ARGUMENT',
        `frames ${track.start}..${track.end} are not in ${path} (${info.frameCount} frames).`,
        'Use a track found in this video.',
      );
    }
    const startTime = track.start / info.fps;
    const duration = frames / info.fps;
    const encoder = await VideoEncoder.create(outputPath, {
      width: size,
      height: size,
      fps: info.fps,
      ...(info.hasAudio ? { audioFrom: { path: opened.path, startTime, duration } } : {}),
      metadata: {
        comment: `reenact crop-video: frames ${track.start}-${track.end} of the source, box ${track.box.width}x${track.box.height}+${track.box.x}+${track.box.y}`,
      },
    });
    let written = 0;
    try {
      // Half a frame of slack so rounding never drops the last frame; the count stops it exactly.
      const decoder = decodeVideo(opened.path, {
        crop: track.box,
        width: size,
        height: size,
        startTime,
        duration: duration + 0.5 / info.fps,
        info,
        signal: options.signal,
      });
      for await (const frame of decoder) {
        await encoder.write(frame);
        written++;
        options.onProgress?.({ stage: 'crop', done: written, total: frames });
        if (written === frames) break;
      }
      await encoder.finish();
    } catch (error) {
      await encoder.abort();
      throw error;
    }
    return { path: outputPath, frames: written, size, fps: info.fps, hasAudio: info.hasAudio };
  } finally {
    await opened.cleanup();
  }
}

export interface CropClipsOptions
  extends Omit<CropVideoOptions, 'onProgress'>, Pick<TrackOptions, 'minFrames' | 'increase' | 'stride'> {
  onProgress?: ProgressCallback<'track' | 'crop'>;
  /**
   * When the video holds several face tracks, write each, in time order, to the output path
   * numbered (crop.mp4 → crop-1.mp4, crop-2.mp4, …). Default: only the longest, to the output path.
   */
  all?: boolean;
  /** Also write the face tracks found (frames, times, crop boxes) as JSON here. */
  tracksJson?: string;
  /** A loaded analyzer to use; default: one made for this call. */
  analyzer?: FaceAnalyzer;
}

export interface CroppedClips {
  /** Every face track found. */
  tracks: FaceTrack[];
  /** The clips written, each with its track. */
  clips: { track: FaceTrack; video: CroppedVideo }[];
}

/** Output path of the nth track (1-based) with `all`: crop.mp4 -> crop-1.mp4. */
function numbered(path: string, n: number): string {
  const ext = extname(path);
  return join(dirname(path), `${basename(path, ext)}-${n}${ext}`);
}

/**
 * What `reenact crop-video` does: finds the video's face tracks and writes the longest (or, with
 * `all`, each) as a square clip (cropDrivingVideo). The input and the output folders are checked
 * before the long detection pass; all or nothing: on failure the clips already written by this
 * call are removed too.
 */
export async function cropFaceClips(
  video: string,
  outputPath: string,
  options: CropClipsOptions = {},
): Promise<CroppedClips> {
  const { signal, onProgress } = options;
  const info = await probeVideo(video);
  for (const path of [outputPath, options.tracksJson]) if (path) await (await PendingOutput.create(path)).discard();
  const analyzer = options.analyzer ?? (await FaceAnalyzer.create());
  const written: string[] = [];
  try {
    const tracks = await findFaceTracks(video, analyzer, {
      minFrames: options.minFrames,
      increase: options.increase,
      stride: options.stride,
      onProgress,
      signal,
    });
    const minFrames = Math.min(options.minFrames ?? DEFAULT_MIN_FRAMES, info.frameCount || Infinity);
    const chosen: [FaceTrack, string][] =
      options.all && tracks.length > 1
        ? tracks.map((track, i) => [track, numbered(outputPath, i + 1)])
        : [[longestTrack(tracks, video, minFrames), outputPath]];
    const clips: CroppedClips['clips'] = [];
    for (const [track, output] of chosen) {
      clips.push({
        track,
        video: await cropDrivingVideo(video, track, output, { size: options.size, onProgress, signal }),
      });
      written.push(output);
    }
    if (options.tracksJson) await writeTracksJson(options.tracksJson, info, tracks, { signal });
    return { tracks, clips };
  } catch (error) {
    await Promise.all(written.map((path) => rm(path, { force: true })));
    throw error;
  }
}
