import { LANDMARK_COUNT, type Face, type FaceAnalyzer } from '../face/detector.js';
import { MeshAnimator, type MeshAnimatorOptions } from '../mesh/animator.js';
import type { RgbImage } from '../types.js';
import { LandmarkPool, LIVE_GROUPING } from './landmark-pool.js';

/** Faces averaged into the reference: one frame's detector noise would stay in every frame after. */
const REFERENCE_FRAMES = 5;

export interface LiveAnimatorOptions extends MeshAnimatorOptions {
  /** Face detection worker threads (default 1: detection of one frame overlaps the rendering of the one before). */
  detectionThreads?: number;
}

export interface LiveFrame {
  /** The animated photo at the photo's size; the photo as it is until the reference is taken. */
  image: RgbImage;
  /** Whether the driving frame had a face (without one the last pose is held). */
  face: boolean;
  /** True while the reference is being taken (the first frames with a face after a start or retakeReference). */
  calibrating: boolean;
}

/**
 * The mesh model for a live driver (a webcam): built once from a photo, it takes driving frames
 * as they come and returns each one rendered, with the same motion model, smoothing and mouth
 * fill as `animate`. The reference pose (the driver's face that maps onto the photo as it is) is
 * the average of the first frames with a face, and is taken again on retakeReference ("hold a
 * neutral face"). Nothing of earlier frames is kept but the smoothing's state and the last pose.
 *
 * Frames are not queued: while one is being detected only the newest frame offered waits, and
 * the frames it replaces are dropped (their offers resolve undefined), so latency cannot grow on
 * a slow machine; the frame rate drops instead. Detection runs on a worker thread, so one
 * frame's detection overlaps the previous one's render.
 */
export class LiveAnimator {
  private animator: MeshAnimator | undefined;
  private referenceFaces: Face[] = [];
  private detecting = false;
  /** The newest frame offered during a detection, and how to answer its offer. */
  private waiting: { frame: RgbImage; time: number; resolve: (frame: LiveFrame | undefined) => void } | undefined;
  private index = 0;
  private closed = false;
  /** Frames offered, rendered, and dropped (replaced by a newer frame while a detection was in progress). */
  readonly stats = { offered: 0, rendered: 0, dropped: 0 };

  private constructor(
    private source: { image: RgbImage; face: Face },
    private readonly pool: LandmarkPool,
    private readonly options: MeshAnimatorOptions,
  ) {}

  /**
   * `source`: the photo and its face (FaceAnalyzer.detect, chooseFace). `analyzer` detects on the
   * calling thread where every worker is busy (it is not, with one frame in detection at a time).
   */
  static async create(
    source: { image: RgbImage; face: Face },
    analyzer: FaceAnalyzer,
    options: LiveAnimatorOptions = {},
  ): Promise<LiveAnimator> {
    const { detectionThreads, ...mesh } = options;
    return new LiveAnimator(source, await LandmarkPool.create(analyzer, detectionThreads ?? 1, LIVE_GROUPING), mesh);
  }

  /** True while a frame is being detected: a frame offered now waits (or replaces the one waiting). */
  get busy(): boolean {
    return this.detecting;
  }

  /**
   * Renders the driving `frame` captured at `time` seconds (a clock of the caller's, increasing).
   * While a frame is being detected the newest frame offered waits in a single slot; one it
   * replaces resolves undefined (dropped), so no frame waits longer than one detection.
   */
  offer(frame: RgbImage, time: number): Promise<LiveFrame | undefined> {
    this.stats.offered++;
    if (this.closed) return this.drop();
    if (this.detecting) {
      this.waiting?.resolve(undefined);
      if (this.waiting) this.stats.dropped++;
      return new Promise((resolve) => (this.waiting = { frame, time, resolve }));
    }
    return this.run(frame, time);
  }

  private drop(): Promise<undefined> {
    this.stats.dropped++;
    return Promise.resolve(undefined);
  }

  private async run(frame: RgbImage, time: number): Promise<LiveFrame | undefined> {
    this.detecting = true;
    let face: Face | null;
    try {
      face = await this.pool.detect({ ...frame, index: this.index++, time });
    } finally {
      this.detecting = false;
      const next = this.waiting;
      this.waiting = undefined;
      // The waiting frame's detection starts before this one renders: the two overlap.
      if (next) this.run(next.frame, next.time).then(next.resolve, () => next.resolve(undefined));
    }
    // Rendering is synchronous: frames come out in the order they were detected, the order they came in.
    this.stats.rendered++;
    if (!this.animator && face) {
      this.referenceFaces.push(face);
      if (this.referenceFaces.length >= REFERENCE_FRAMES) {
        this.animator = new MeshAnimator(this.source, averageFace(this.referenceFaces), this.options);
        this.referenceFaces = [];
      }
    }
    if (!this.animator)
      return { image: { ...this.source.image, data: this.source.image.data.slice() }, face: !!face, calibrating: true };
    return { image: this.animator.render({ face, frame, time }), face: !!face, calibrating: false };
  }

  /** Takes the reference again from the next frames with a face. */
  retakeReference(): void {
    this.animator = undefined;
    this.referenceFaces = [];
  }

  /** Animates another photo from the next frame on; the reference is taken again (it maps onto this photo's face). */
  setSource(source: { image: RgbImage; face: Face }): void {
    this.source = source;
    this.retakeReference();
  }

  get size(): { width: number; height: number } {
    return { width: this.source.image.width, height: this.source.image.height };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.waiting?.resolve(undefined);
    this.waiting = undefined;
    await this.pool.close();
  }
}

/** The landmarks (and box) of several detections of one face, averaged. */
function averageFace(faces: Face[]): Face {
  const landmarks = new Float32Array(LANDMARK_COUNT * 3);
  const box = { x: 0, y: 0, width: 0, height: 0 };
  let score = 0;
  for (const face of faces) {
    for (let i = 0; i < landmarks.length; i++) landmarks[i]! += face.landmarks[i]! / faces.length;
    box.x += face.box.x / faces.length;
    box.y += face.box.y / faces.length;
    box.width += face.box.width / faces.length;
    box.height += face.box.height / faces.length;
    score += face.score / faces.length;
  }
  return { box, score, landmarks };
}
