import { ReenactError } from '../errors.js';
import type { Face, FaceAnalyzer } from '../face/detector.js';
import type { DecodeOptions } from '../media/decode.js';
import type { VideoInfo } from '../media/probe.js';
import type { MeshAnimatorOptions } from '../mesh/animator.js';
import type { ProgressCallback, RgbImage, VideoFrame } from '../types.js';
import type { AnimateStage } from './animate.js';

/** What a motion model needs to prepare a run (shared by the mesh and FOMM modes). */
export interface MotionContext {
  /** The photo as read. */
  photo: RgbImage;
  /** The photo at output size (cropToEven); frames are this size. */
  background: RgbImage;
  /** The face to animate, in photo pixels. */
  face: Face;
  analyzer: FaceAnalyzer;
  /** The driving video to decode (a repaired copy where the original needed one) and its info. */
  driving: { path: string; info: VideoInfo; name: string };
  /** A frame index, 'best', or undefined for the first frame with a face. */
  startFrame?: number | 'best';
  /** CPU threads the mode may use; default all cores. */
  threads?: number;
  /** Options of the mesh mode's animator (checked by animate). */
  mesh?: Pick<MeshAnimatorOptions, 'expressionScale' | 'animate'>;
  signal?: AbortSignal;
  onProgress?: ProgressCallback<AnimateStage>;
}

/**
 * A prepared run: the driving frames to read and how each becomes an output frame. `analyse`
 * (landmarks, face presence) may run for several frames at once, up to `lookahead` ahead of
 * `render`, which is called in frame order with each frame's analysis.
 */
export interface MotionSession<Analysis = unknown> {
  /** How to decode the driving video for this mode (full frame, or the face crop at model size). */
  decode: DecodeOptions;
  readonly lookahead: number;
  analyse(frame: VideoFrame): Promise<Analysis>;
  /** The animated photo (background size) for the next driving frame. */
  render(frame: VideoFrame, analysis: Analysis): Promise<RgbImage>;
  /** The driving frame whose pose maps onto the photo's (known once a face has been seen). */
  readonly startFrame: number | undefined;
  /** Driving frames with a face (the others held the last pose). */
  readonly framesWithFace: number;
  close(): Promise<void>;
}

/**
 * Runs `map` on up to `depth` items ahead of the consumer and yields [item, result] in the
 * source's order. At most depth + 1 items are held.
 */
export async function* mapAhead<T, R>(
  source: AsyncIterable<T>,
  map: (item: T) => Promise<R>,
  depth: number,
): AsyncGenerator<[T, R]> {
  const queue: { item: T; result: Promise<R> }[] = [];
  for await (const item of source) {
    const result = map(item);
    // Observed when it reaches the front; until then a rejection must not count as unhandled.
    result.catch(() => {});
    queue.push({ item, result });
    if (queue.length > depth) {
      const head = queue.shift()!;
      yield [head.item, await head.result];
    }
  }
  while (queue.length > 0) {
    const head = queue.shift()!;
    yield [head.item, await head.result];
  }
}

/** The face mesh proper (irises left out) as x, y pairs, for comparing poses. */
export function meshPoints(face: Face): Float64Array {
  const points = new Float64Array(468 * 2);
  for (let i = 0; i < 468; i++) {
    points[2 * i] = face.landmarks[3 * i]!;
    points[2 * i + 1] = face.landmarks[3 * i + 1]!;
  }
  return points;
}

export function noTrack(name: string): ReenactError {
  return new ReenactError(
    'NO_TRACK',
    `no face found in any frame of the driving video ${name}.`,
    'Use a driving video that shows one face clearly (frontal, well lit) for most of its length.',
  );
}
