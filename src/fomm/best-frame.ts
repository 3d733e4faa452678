import { ReenactError } from '../errors.js';
import { convexHullArea } from './keypoints.js';

/**
 * A landmark set: points as consecutive coordinates, `stride` numbers per point (2 for x, y;
 * 3 for x, y, z — z is centred but not scaled, as in the reference).
 */
export interface LandmarkSet {
  points: ArrayLike<number>;
  stride: 2 | 3;
}

/** Centres the set on its mean and divides x and y by sqrt of the convex-hull area of (x, y). */
export function normalizeLandmarks(set: LandmarkSet): Float64Array {
  const { points, stride } = set;
  const count = Math.floor(points.length / stride);
  const mean = new Float64Array(stride);
  for (let i = 0; i < count; i++) for (let d = 0; d < stride; d++) mean[d]! += points[i * stride + d]! / count;
  const out = new Float64Array(count * stride);
  for (let i = 0; i < count; i++) for (let d = 0; d < stride; d++) out[i * stride + d] = points[i * stride + d]! - mean[d]!;
  const scale = Math.sqrt(convexHullArea(out, stride));
  for (let i = 0; i < count; i++) {
    out[i * stride] = out[i * stride]! / scale;
    out[i * stride + 1] = out[i * stride + 1]! / scale;
  }
  return out;
}

/**
 * The driving frame whose normalised landmarks are closest (sum of squared differences) to the
 * source's; frames without a face are `undefined` and skipped. Returns 0 when no frame has one.
 */
export function findBestFrame(source: LandmarkSet, frames: Iterable<LandmarkSet | undefined>): number {
  const reference = normalizeLandmarks(source);
  let best = 0;
  let bestDistance = Infinity;
  let index = 0;
  for (const frame of frames) {
    if (frame) {
      if (frame.points.length !== source.points.length || frame.stride !== source.stride) {
        throw new ReenactError('BAD_ARGUMENT', `Landmark set of frame ${index} has ${frame.points.length} numbers; the source has ${source.points.length}.`, 'Use the same landmark model for the source and the driving frames.');
      }
      const normalized = normalizeLandmarks(frame);
      let distance = 0;
      for (let i = 0; i < normalized.length; i++) distance += (reference[i]! - normalized[i]!) ** 2;
      if (distance < bestDistance) {
        bestDistance = distance;
        best = index;
      }
    }
    index++;
  }
  return best;
}

/** How the reference animates from a start frame. */
export interface AnimationOrder {
  startFrame: number;
  /** Driving frames of the backward pass: start down to 0 (each normalised against the start frame). */
  backward: number[];
  /** Driving frames of the forward pass: start up to the last. */
  forward: number[];
  /**
   * The driving frame behind each output frame: backward reversed, then forward without
   * repeating the start frame. This is 0..n-1, so a streaming pipeline can run in driving order
   * with the start frame's keypoints as kp_driving_initial.
   */
  output: number[];
}

export function animationOrder(frameCount: number, startFrame: number): AnimationOrder {
  if (!Number.isInteger(startFrame) || startFrame < 0 || startFrame >= frameCount) {
    throw new ReenactError('BAD_ARGUMENT', `Start frame ${startFrame} is outside the ${frameCount} driving frames.`, 'Choose a frame index from 0 to the frame count minus 1.');
  }
  const backward = Array.from({ length: startFrame + 1 }, (_, i) => startFrame - i);
  const forward = Array.from({ length: frameCount - startFrame }, (_, i) => startFrame + i);
  return { startFrame, backward, forward, output: [...backward.slice().reverse(), ...forward.slice(1)] };
}
