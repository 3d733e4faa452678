import { ReenactError } from '../errors.js';
import { convexHullArea } from '../fomm/keypoints.js';

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
  for (let i = 0; i < count; i++)
    for (let d = 0; d < stride; d++) out[i * stride + d] = points[i * stride + d]! - mean[d]!;
  const scale = Math.sqrt(convexHullArea(out, stride));
  for (let i = 0; i < count; i++) {
    out[i * stride] = out[i * stride]! / scale;
    out[i * stride + 1] = out[i * stride + 1]! / scale;
  }
  return out;
}

/**
 * The search for the driving frame whose pose and expression are closest to the source's (the
 * reference's `find_best_frame`): frames are offered one at a time as they stream by, and the one
 * whose normalised landmarks are nearest (sum of squared differences) to the source's is kept,
 * the first of equals. Only the best item is held, so a caller keeps one frame, not the video.
 */
export class BestFrameSearch<T> {
  private readonly reference: Float64Array;
  private readonly source: LandmarkSet;
  private bestDistance = Infinity;
  private found: { index: number; item: T } | undefined;

  constructor(source: LandmarkSet) {
    this.source = source;
    this.reference = normalizeLandmarks(source);
  }

  /** Considers frame `index` with its landmarks; `item` is what to keep should it be the best. */
  offer(index: number, landmarks: LandmarkSet, item: T): void {
    if (landmarks.points.length !== this.source.points.length || landmarks.stride !== this.source.stride) {
      throw new ReenactError(
        'BAD_ARGUMENT',
        `Landmark set of frame ${index} has ${landmarks.points.length} numbers; the source has ${this.source.points.length}.`,
        'Use the same landmark model for the source and the driving frames.',
      );
    }
    const normalized = normalizeLandmarks(landmarks);
    let distance = 0;
    for (let i = 0; i < normalized.length; i++) distance += (normalized[i]! - this.reference[i]!) ** 2;
    if (distance < this.bestDistance) {
      this.bestDistance = distance;
      this.found = { index, item };
    }
  }

  /** The best frame so far and its item; undefined while no frame was offered. */
  get best(): { index: number; item: T } | undefined {
    return this.found;
  }
}
