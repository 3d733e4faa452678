import { extname } from 'node:path';
import { ReenactError } from '../errors.js';
import { decodeVideo } from '../media/decode.js';
import { readImage } from '../media/image.js';
import { probeVideo } from '../media/probe.js';
import { WatermarkDetector, type Detection } from './detect.js';

/** Extensions read as still images; anything else is probed as a video. */
const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.webp', '.tif', '.tiff', '.bmp', '.gif', '.avif', '.heic']);
/** Seconds of video analysed at most: the mark adds up over time and 20 s is plenty. */
const MAX_SECONDS = 20;

export interface WatermarkCheck extends Detection {
  file: string;
  kind: 'video' | 'image';
  width: number;
  height: number;
}

export interface VerifyOptions {
  signal?: AbortSignal;
}

/**
 * Looks for the reenact watermark in a video (its first 20 s) or a still image. Throws a
 * ReenactError (FILE_NOT_FOUND, NOT_MEDIA, CORRUPT_MEDIA, NO_FRAMES) for a file it cannot read.
 */
export async function checkWatermark(path: string, options: VerifyOptions = {}): Promise<WatermarkCheck> {
  const detector = new WatermarkDetector();
  if (IMAGE_EXTENSIONS.has(extname(path).toLowerCase())) {
    const image = await readImage(path);
    detector.addRgb(image.data, image.width, image.height, 0);
    return { file: path, kind: 'image', width: image.width, height: image.height, ...detector.result() };
  }
  const info = await probeVideo(path);
  let size = { width: info.width, height: info.height };
  for await (const frame of decodeVideo(path, { info, ...(options.signal ? { signal: options.signal } : {}) })) {
    if (frame.time >= MAX_SECONDS) break;
    detector.addRgb(frame.data, frame.width, frame.height, frame.time);
    size = { width: frame.width, height: frame.height };
  }
  if (detector.frameCount === 0)
    throw new ReenactError(
      'NO_FRAMES',
      `No frames could be decoded from ${path}.`,
      'Check that the video plays in a video player.',
    );
  return { file: path, kind: 'video', ...size, ...detector.result() };
}
