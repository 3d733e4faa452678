import type { RgbImage } from '../types.js';
import type { Face, FaceAnalyzer } from './detector.js';
import { eyeCentres } from './landmarks.js';

export interface LandmarkTrackerOptions {
  /**
   * Run the face detector again after this many tracked frames, so the face region follows
   * changes of scale that the mesh-only path keeps fixed. Default 10: on the talking-head
   * fixture, 30 let the mouth opening drift by up to 0.2 eye widths from a full detection
   * while the head turned; 10 keeps it within about 0.1, for ~3 ms more per frame on average.
   */
  redetectEvery?: number;
  /**
   * A frame whose face moved more than this since the previous frame (the eye centres, in eye
   * distances) is detected afresh: on fast moves the previous frame's region no longer fits and
   * the mesh slips. Default 0.12.
   */
  maxStep?: number;
}

/**
 * Landmarks of the main face in each frame of one video, fast enough for every frame: after
 * a detection, each frame runs only the Face Mesh (and iris) on the region the previous frame's
 * landmarks give, about half the cost of a full `detect`. Use one tracker per video, and no
 * other calls on its analyzer in between (each one makes the next frame a full detection).
 */
export class LandmarkTracker {
  private stream = {};
  private sinceDetection = 0;
  private previous: Face | null = null;
  private readonly redetectEvery: number;
  private readonly maxStep: number;

  constructor(
    private readonly analyzer: FaceAnalyzer,
    options: LandmarkTrackerOptions = {},
  ) {
    this.redetectEvery = Math.max(1, options.redetectEvery ?? 10);
    this.maxStep = options.maxStep ?? 0.12;
  }

  /** The largest face in the frame, or null when there is none (the caller holds the last pose). */
  async track(frame: RgbImage): Promise<Face | null> {
    let redetect = this.sinceDetection >= this.redetectEvery;
    let [face = null] = await this.analyzer.detectInStream(frame, this.stream, { redetect });
    if (!redetect && face && this.previous && step(this.previous, face) > this.maxStep) {
      [face = null] = await this.analyzer.detectInStream(frame, this.stream, { redetect: true });
      redetect = true;
    }
    this.sinceDetection = redetect ? 0 : this.sinceDetection + 1;
    // A lost face makes the analyzer detect afresh on the next frame.
    this.previous = face;
    return face;
  }

  /** Forget the tracked region: the next frame starts with a full detection (a cut, a new video). */
  reset(): void {
    this.stream = {};
    this.sinceDetection = 0;
    this.previous = null;
  }
}

/** How far the eyes moved between two faces, in eye distances of the first. */
function step(before: Face, after: Face): number {
  const a = eyeCentres(before);
  const b = eyeCentres(after);
  const unit = Math.hypot(a.imageRight.x - a.imageLeft.x, a.imageRight.y - a.imageLeft.y) || 1;
  return Math.max(Math.hypot(b.imageLeft.x - a.imageLeft.x, b.imageLeft.y - a.imageLeft.y), Math.hypot(b.imageRight.x - a.imageRight.x, b.imageRight.y - a.imageRight.y)) / unit;
}
