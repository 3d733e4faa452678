import { invalidOption, ReenactError } from '../errors.js';
import { decodeVideo } from '../media/decode.js';
import { VideoEncoder } from '../media/encode.js';
import { openVideo } from '../media/repair.js';
import type { ProgressCallback } from '../types.js';
import type { FaceTrack } from './tracks.js';

export interface CropVideoOptions {
  /** Side of the output clip in pixels (even). Default 256, what the FOMM vox models take. */
  size?: number;
  onProgress?: ProgressCallback;
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
export async function cropDrivingVideo(path: string, track: FaceTrack, outputPath: string, options: CropVideoOptions = {}): Promise<CroppedVideo> {
  const size = options.size ?? 256;
  if (!Number.isInteger(size) || size < 16 || size > 4096 || size % 2 !== 0) {
    throw invalidOption('size', 'an even number of pixels from 16 to 4096', size, 'The models take 256.');
  }
  const opened = await openVideo(path, { signal: options.signal });
  try {
    const { info } = opened;
    const frames = track.end - track.start;
    if (!(frames > 0) || track.start < 0 || (info.frameCount > 0 && track.end > info.frameCount)) {
      throw new ReenactError('BAD_ARGUMENT', `frames ${track.start}..${track.end} are not in ${path} (${info.frameCount} frames).`, 'Use a track found in this video.');
    }
    const startTime = track.start / info.fps;
    const duration = frames / info.fps;
    const encoder = await VideoEncoder.create(outputPath, {
      width: size,
      height: size,
      fps: info.fps,
      ...(info.hasAudio ? { audioFrom: { path: opened.path, startTime, duration } } : {}),
      metadata: { comment: `reenact crop-video: frames ${track.start}-${track.end} of the source, box ${track.box.width}x${track.box.height}+${track.box.x}+${track.box.y}` },
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
