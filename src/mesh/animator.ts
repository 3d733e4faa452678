import type { Face } from '../face/detector.js';
import type { RgbImage } from '../types.js';
import { faceColourStats, fillMouth, mouthOpeningArea, type ColourStats } from './mouth.js';
import { OneEuroFilter } from './one-euro.js';
import { EYE_LID_PAIRS, EYE_OUTER_CORNERS, MESH_POINTS, RIGID_POINTS } from './regions.js';
import { compose, fitAffine, fitSimilarity, invert, scaleOf, type Affine } from './affine.js';
import { warpMesh } from './topology.js';
import { warpPiecewiseAffine } from './warp.js';

export interface MeshAnimatorOptions {
  /** One Euro smoothing of the driving landmarks against detector jitter. Default true. */
  smoothing?: boolean;
  /** One Euro cutoff at rest, Hz. Default 1. */
  minCutoff?: number;
  /** One Euro speed coefficient, per face size per second. Default 8. */
  beta?: number;
  /** Paint the driver's mouth interior where the source's mouth has none. Default true. */
  mouthFill?: boolean;
}

const RIGID_WEIGHTS = RIGID_POINTS.map((i) => [i, 1] as const);

/** Widest a driver can open the source's eyes, relative to the source's own opening. */
const MAX_EYE_OPENING = 1.5;

/**
 * Face Mesh never closes the lid contours: a shut eye still measures about this share of the
 * open gap (0.04 against 0.08-0.09 eye widths on the fixture's blink), so closing maps from it.
 */
const CLOSED_EYE_GAP = 0.45;

/**
 * The `mesh` motion model: animates a photo by warping it with a dense piecewise-affine field
 * over the Face Mesh landmarks, driven by the landmarks of a driving video. The driver's head
 * pose (an affine transform fitted on rigid landmarks) and its expression (the landmark offsets left
 * after undoing the pose) are both taken relative to a reference frame of the driving video,
 * scaled to the source face and applied to the source landmarks.
 */
export class MeshAnimator {
  private readonly image: RgbImage;
  /** Mesh vertices on the source photo: the 468 landmarks, then the anchors (interleaved x, y). */
  private readonly from: Float64Array;
  private readonly to: Float64Array;
  private readonly triangles: Uint32Array;
  /** Per anchor: how much of the head motion it follows. */
  private readonly anchorFollow: Float64Array;
  /** The reference driving landmarks, and the similarity taking them onto the source face. */
  private readonly reference: Float64Array;
  private readonly referenceToSource: Affine;
  /** Source landmarks expressed in the reference frame's coordinates. */
  private readonly sourceInReference: Float64Array;
  private readonly sourceColours: ColourStats;
  private readonly sourceMouthArea: number;
  private readonly filter: OneEuroFilter | undefined;
  /** Coordinates are filtered divided by this (the reference face size), so the filter's units are faces. */
  private readonly referenceSize: number;
  private readonly mouthFill: boolean;
  private readonly driving = new Float64Array(MESH_POINTS * 2);
  /** The last rendered frame, kept for frames without a face (callers may change what they were given). */
  private held: Uint8Array | undefined;

  constructor(source: { image: RgbImage; face: Face }, reference: Face, options: MeshAnimatorOptions = {}) {
    this.image = source.image;
    const sourcePoints = planar(source.face);
    this.reference = planar(reference);
    this.referenceSize = faceSize(this.reference);
    this.referenceToSource = fitSimilarity(this.reference, sourcePoints, RIGID_POINTS);
    const toReference = invert(this.referenceToSource);
    this.sourceInReference = new Float64Array(MESH_POINTS * 2);
    for (let i = 0; i < MESH_POINTS; i++) apply(toReference, sourcePoints, i, this.sourceInReference, i);

    const mesh = warpMesh(source.face, this.image);
    this.anchorFollow = mesh.follow;
    this.from = mesh.vertices;
    this.triangles = mesh.triangles;
    this.to = Float64Array.from(this.from);

    this.sourceColours = faceColourStats(this.image, sourcePoints);
    this.sourceMouthArea = mouthOpeningArea(sourcePoints);
    this.mouthFill = options.mouthFill ?? true;
    this.filter =
      options.smoothing === false
        ? undefined
        : // A quick speed estimate (4 Hz) and a high beta let a two-frame blink through: the
          // fixture's blink keeps 90% of its depth, against 68% with 1 Hz, beta 4.
          new OneEuroFilter(MESH_POINTS * 2, { minCutoff: options.minCutoff ?? 1, beta: options.beta ?? 8, derivativeCutoff: 4 });
  }

  /**
   * The source animated to follow `driving` (landmarks of the driving frame, in the driving
   * frame's px), at the source photo's size. A null face holds the last pose. `time` is the
   * frame's time in seconds, for the smoothing; a time at or before the previous one (a seek)
   * restarts the smoothing. The returned image is a fresh copy the caller may keep or change.
   */
  render(driving: { face: Face | null; frame: RgbImage; time: number }): RgbImage {
    if (!driving.face) return { width: this.image.width, height: this.image.height, data: (this.held ?? this.image.data).slice() };
    const points = this.driving;
    const landmarks = driving.face.landmarks;
    for (let i = 0; i < MESH_POINTS; i++) {
      points[2 * i] = landmarks[3 * i]!;
      points[2 * i + 1] = landmarks[3 * i + 1]!;
    }
    if (this.filter) {
      const size = this.referenceSize;
      for (let i = 0; i < points.length; i++) points[i]! /= size;
      this.filter.filter(points, driving.time);
      for (let i = 0; i < points.length; i++) points[i]! *= size;
    }

    // Driver pose relative to the reference, and the same motion about the source face. An
    // affine fit rather than a similarity: its shear and squash take up most of the apparent
    // shape change of a face turning (yaw) or nodding (pitch), which would otherwise be read
    // as expression and distort the source's features.
    const pose = fitAffine(this.reference, points, RIGID_WEIGHTS) ?? fitSimilarity(this.reference, points, RIGID_POINTS);
    const unpose = invert(pose);
    const sourcePose = compose(this.referenceToSource, compose(pose, invert(this.referenceToSource)));
    const toSource = compose(this.referenceToSource, pose);
    const to = this.to;
    const reference = this.reference;
    const inReference = this.sourceInReference;
    for (let i = 0; i < MESH_POINTS; i++) {
      // Expression: the driver's offset from the reference once its pose is undone.
      const dx = unpose.a * points[2 * i]! + unpose.b * points[2 * i + 1]! + unpose.tx - reference[2 * i]!;
      const dy = unpose.c * points[2 * i]! + unpose.d * points[2 * i + 1]! + unpose.ty - reference[2 * i + 1]!;
      const x = inReference[2 * i]! + dx;
      const y = inReference[2 * i + 1]! + dy;
      to[2 * i] = toSource.a * x + toSource.b * y + toSource.tx;
      to[2 * i + 1] = toSource.c * x + toSource.d * y + toSource.ty;
    }
    this.transferBlinks(points, unpose, sourcePose);
    const from = this.from;
    for (let k = 0; k < this.anchorFollow.length; k++) {
      const i = MESH_POINTS + k;
      const w = this.anchorFollow[k]!;
      const x = from[2 * i]!;
      const y = from[2 * i + 1]!;
      to[2 * i] = x + w * (sourcePose.a * x + sourcePose.b * y + sourcePose.tx - x);
      to[2 * i + 1] = y + w * (sourcePose.c * x + sourcePose.d * y + sourcePose.ty - y);
    }

    const out = copy(this.image);
    warpPiecewiseAffine(this.image, from, to, this.triangles, out.data);
    if (this.mouthFill) {
      const targetArea = mouthOpeningArea(to);
      // How far the target opening outgrows the (posed) source's own mouth interior.
      const available = this.sourceMouthArea * scaleOf(sourcePose) ** 2;
      const strength = targetArea > 1 ? fillStrength(targetArea / Math.max(available, 1e-6)) : 0;
      if (strength > 0) {
        fillMouth({
          out,
          target: to,
          driverFrame: driving.frame,
          driver: points,
          sourceColours: this.sourceColours,
          driverColours: faceColourStats(driving.frame, points),
          strength,
        });
      }
    }
    // A reused buffer rather than a fresh copy per frame: one allocation of the image size fewer.
    if (!this.held) this.held = new Uint8Array(out.data.length);
    this.held.set(out.data);
    return out;
  }

  /**
   * Eyelids move by ratio, not by offset: the lid gaps on the target are the source's gaps
   * times how far the driver's eyes are open relative to the reference. An added offset would
   * leave a wide-eyed source half open when a narrow-eyed driver blinks.
   */
  private transferBlinks(points: Float64Array, unpose: Affine, sourcePose: Affine): void {
    const to = this.to;
    const from = this.from;
    const reference = this.reference;
    // Both eyes take the mean of their openings: Face Mesh often sees one eye of a blink stay
    // half open, and a blink closing one eye reads as a wink. (Real winks are lost.)
    let relative = 0;
    for (const pairs of EYE_LID_PAIRS) {
      let driverGap = 0;
      let referenceGap = 0;
      for (const [upper, lower] of pairs) {
        const ux = points[2 * upper]!, uy = points[2 * upper + 1]!, lx = points[2 * lower]!, ly = points[2 * lower + 1]!;
        // The gap with the driver's pose undone, so turning the head does not read as closing the eye.
        driverGap += Math.hypot(unpose.a * (lx - ux) + unpose.b * (ly - uy), unpose.c * (lx - ux) + unpose.d * (ly - uy));
        referenceGap += Math.hypot(reference[2 * lower]! - reference[2 * upper]!, reference[2 * lower + 1]! - reference[2 * upper + 1]!);
      }
      relative += driverGap / Math.max(referenceGap, 1e-6) / EYE_LID_PAIRS.length;
    }
    const ratio = relative >= 1 ? Math.min(MAX_EYE_OPENING, relative) : Math.max(0, (relative - CLOSED_EYE_GAP) / (1 - CLOSED_EYE_GAP));
    for (const pairs of EYE_LID_PAIRS) {
      for (const [upper, lower] of pairs) {
        const mx = (to[2 * upper]! + to[2 * lower]!) / 2;
        const my = (to[2 * upper + 1]! + to[2 * lower + 1]!) / 2;
        const gx = from[2 * lower]! - from[2 * upper]!;
        const gy = from[2 * lower + 1]! - from[2 * upper + 1]!;
        const hx = (ratio * (sourcePose.a * gx + sourcePose.b * gy)) / 2;
        const hy = (ratio * (sourcePose.c * gx + sourcePose.d * gy)) / 2;
        to[2 * upper] = mx - hx;
        to[2 * upper + 1] = my - hy;
        to[2 * lower] = mx + hx;
        to[2 * lower + 1] = my + hy;
      }
    }
  }
}

/**
 * Blend weight of the driver's mouth interior for a target opening `growth` times the source's:
 * none while the source's own interior stretches a little, full by the time its teeth would
 * show as vertical streaks.
 */
function fillStrength(growth: number): number {
  const t = Math.min(1, Math.max(0, (growth - 1.15) / 0.5));
  return t * t * (3 - 2 * t);
}

function copy(image: RgbImage): RgbImage {
  return { width: image.width, height: image.height, data: image.data.slice() };
}

/** The 468 mesh landmarks as interleaved x, y. */
function planar(face: Face): Float64Array {
  const points = new Float64Array(MESH_POINTS * 2);
  for (let i = 0; i < MESH_POINTS; i++) {
    points[2 * i] = face.landmarks[3 * i]!;
    points[2 * i + 1] = face.landmarks[3 * i + 1]!;
  }
  return points;
}

function faceSize(points: Float64Array): number {
  const [a, b] = EYE_OUTER_CORNERS;
  return Math.max(1, Math.hypot(points[2 * b] - points[2 * a], points[2 * b + 1] - points[2 * a + 1]));
}

function apply(s: Affine, src: Float64Array, i: number, dst: Float64Array, j: number): void {
  const x = src[2 * i]!;
  const y = src[2 * i + 1]!;
  dst[2 * j] = s.a * x + s.b * y + s.tx;
  dst[2 * j + 1] = s.c * x + s.d * y + s.ty;
}
