import { LANDMARK_COUNT, type Face } from '../face/detector.js';
import { LANDMARKS } from '../face/landmarks.js';
import type { RgbImage } from '../types.js';
import { fitSimilarity, invert, scaleOf, type Affine } from '../align/affine.js';
import {
  easeTurn,
  faceDown,
  fitHeadPose,
  IDENTITY_POSE,
  landmarks3d,
  rotationFromVector,
  rotationVector,
  type HeadPose,
  type Rotation,
} from './head.js';
import { lashColour, shiftIris, shutLids, sourceIris, type SourceIris } from './eyes.js';
import { faceColourStats, fillMouth, mouthOpeningArea, type ColourStats } from './mouth.js';
import { OneEuroFilter } from './one-euro.js';
import { pointBounds } from './polygon.js';
import { BROWS, EYE_FOLDS, EYE_LID_PAIRS, EYE_OUTER_CORNERS, FACE_OVAL, MESH_POINTS, RIGID_POINTS } from './regions.js';
import { EYES, FACE_VERTICES, IRIS_VERTICES, warpMesh } from './topology.js';
import { warpPiecewiseAffine } from './warp.js';

/** The parts of the driver's motion the animation can take (all by default). */
export const ANIMATE_PARTS = ['pose', 'expression', 'eyes', 'mouth'] as const;
export type AnimatePart = (typeof ANIMATE_PARTS)[number];

export interface MeshAnimatorOptions {
  /** One Euro smoothing of the driver's expression and head pose against detector jitter. Default true. */
  smoothing?: boolean;
  /** One Euro cutoff at rest of the expression, Hz. Default 1. */
  minCutoff?: number;
  /** One Euro speed coefficient of the expression, per face size per second. Default 8. */
  beta?: number;
  /** Blur fast moves along their path, as a camera's shutter does (see MeshAnimator's blurMotion). Default true. */
  motionBlur?: boolean;
  /** Paint the driver's mouth interior where the source's mouth has none. Default true. */
  mouthFill?: boolean;
  /** How strongly expression, eyes and mouth follow the driver: 0 none, 1 as the driver (default), up to 2. */
  expressionScale?: number;
  /**
   * Which parts of the driver's motion to take: the head's pose (turns, nods, tilts, moving
   * nearer), the expression (brows, cheeks, nose), the eyes (lids and gaze), the mouth (lips,
   * jaw, the mouth interior). Default all.
   */
  animate?: readonly AnimatePart[];
}

/** Widest a driver can open the source's eyes, relative to the source's own opening. */
const MAX_EYE_OPENING = 1.5;

/**
 * Face Mesh never closes the lid contours: a shut eye still measures about this share of the
 * open gap (0.04 against 0.08-0.09 eye widths on the fixture's blink), so closing maps from it.
 */
const CLOSED_EYE_GAP = 0.3;

/**
 * Down to this share of the reference's gap the lids follow the driver's as they are: the small
 * changes of an eye that stays open (and the detector's noise) are not amplified on the way to
 * CLOSED_EYE_GAP.
 */
const LINEAR_EYE_GAP = 0.8;

/**
 * Turns out of the image plane follow the driver up to `knee` and ease off towards `limit`
 * (radians; see easeTurn). At 12 and 22 degrees the head turned two thirds of the driver's on the
 * big turns of driving-talking.mp4 (18.9 of 28.5 degrees, bench:quality --step 3); at these, 89%.
 */
const TURN = { knee: (22 * Math.PI) / 180, limit: (36 * Math.PI) / 180 };

/**
 * A face triangle drawn at under this share of its area in the photo (relative to the head's
 * scale) is seen obliquely: the far side of a turn, where the cheek becomes the head's outline.
 * There the warp draws the skin to a hard, stair-stepped cut against whatever lies behind (the
 * photo's own edges there are soft: cheek against sky, hair against the ear), so the pixels on
 * both sides of that cut are softened (see featherOutline).
 */
const OBLIQUE = 0.6;

/** Layers in MeshAnimator's mask: drawn by no face triangle, by one seen about as in the photo, by an oblique one. */
const BEHIND = 0,
  FACING = 1,
  SIDEWAYS = 2;

/**
 * See MeshAnimator's blurMotion. Face sizes are the photo's px between the outer eye corners;
 * `carry` is the share of the move so far that a frame's move keeps;
 * `spacing` is px; `most` the draws on each side. bench:quality --step 3, face box L1 ratios:
 * head-turns 0.498 -> 0.487, talking 0.472 -> 0.467, eyes 0.387 (to 0.001); with every frame,
 * head-turns 0.508 -> 0.498. A `longest` of 0.08 measured lower still but blurred a fast turn
 * past what the real frames show.
 */
const MOTION_BLUR = { from: 0.02, reach: 0.3, longest: 0.04, spacing: 2, most: 3, carry: 0.5 };

/** Change of any rotation entry (~radians) after which the face triangles are sorted again. */
const RESORT_TURN = 0.01;

/**
 * One Euro speed coefficient of the lid gaps (per relative gap per second): a blink, the gap
 * falling by about 0.6 in a frame, gets a cutoff near 20 Hz at its first frame.
 */
const LID_GAP_BETA = 2.5;

/**
 * One Euro smoothing of the head's pose (the image place of the face's centre and its scale, in
 * face sizes and log scale; the rotation as a rotation vector, radians). The pose is fitted on
 * 24 rigid landmarks, so it is less noisy than any one landmark and takes a quicker filter
 * than the expression: smoothed as landmarks (1 Hz, beta 8, speed at 4 Hz) the face trailed a
 * fast turn (driving-head-turns.mp4 moves 30-60 px a frame) and lost 0.013 of its face-box L1
 * ratio to the lag, for median frame-to-frame jitter at rest 0.08-0.09 px lower (driving-talking,
 * driving-eyes).
 */
const POSE_SMOOTHING = { minCutoff: 1, beta: 16, derivativeCutoff: 8 };

/**
 * One Euro smoothing of the gaze (eye widths): a glance moves the iris a tenth of the eye in a
 * frame or two, and a high beta lets it through. Smoothed with the expression (face units, where
 * a glance is a small, slow move) the iris lagged the driver's glances: bench:quality's gaze
 * ratio on driving-eyes.mp4 0.53, against 0.46 with these (0.46 unsmoothed).
 */
const GAZE_SMOOTHING = { minCutoff: 1, beta: 20, derivativeCutoff: 8 };

/** Lids closed past this share of the photo's gap start being drawn shut (shutLids), fully once they meet. */
const SHUT_FROM = 0.55;

/** Where the lids meet as an eye closes, from the upper lid (0) to the lower (1). */
const LIDS_MEET = 0.75;

/**
 * How much of its height the band between the upper lid and the fold above it (the lash line and
 * the lid margin) loses as the eye shuts, the fold coming down with the lid all the way and then
 * this much further. Moved down whole (0) that band kept the open eye's thick dark almond of
 * lashes over the shut eye, which read as a narrowed eye (the detector, too, read the output's
 * shut eyes on driving-eyes.mp4 as 0.21-0.25 eye widths open against the real 0.04-0.12); squeezed,
 * the lashes close to a thin line and the skin above the fold stretches over the eye. Only a lid
 * closing past LINEAR_EYE_GAP squeezes it: squinting and the noise of the driver's lids behind
 * glasses (driving-head-turns.mp4) leave it whole (eye opening ratio there 1.13, against 1.15 when
 * any narrowing squeezed).
 */
const LASH_BAND_SQUEEZE = 0.7;

/**
 * Farthest the iris moves from its place in the photo: sideways until its edge is `corner` iris
 * radii past the eye's corner (half the eye's width from its centre; the lids narrowing there hide
 * it, as they do a real eye's looking far aside), up and down by `across` of the lid gap.
 */
const MAX_GAZE = { corner: 0.2, across: 0.3 };

/**
 * The `mesh` motion model: animates a photo by warping it with a dense piecewise-affine field
 * over the Face Mesh landmarks and a head proxy around them, driven by the landmarks of a driving
 * video. The head is one 3D body: the landmarks with their depth (Face Mesh z), and rings of
 * anchors over forehead, crown, hair, ears and jaw placed on the head's surface behind the face
 * outline. The driver's head pose (rotation, scale, translation, fitted on rigid landmarks against
 * the 3D reference face) turns all of it together, foreshortened, the far side drawn under the
 * near; the expression (the driver's landmark offsets once that pose is undone) is added in the
 * head's frame, scaled to the source face. Eyelids move by ratio, each eye on its own, and the
 * iris follows the driver's gaze inside the lids. Both are relative to a reference frame of the
 * driving video.
 */
export class MeshAnimator {
  private readonly image: RgbImage;
  /** Mesh vertices on the source photo: the 468 landmarks, the iris centres, then the anchors (interleaved x, y). */
  private readonly from: Float64Array;
  private readonly to: Float64Array;
  /** Posed depth of every vertex, for the drawing order. */
  private readonly toDepth: Float64Array;
  private readonly fixedTriangles: Uint32Array;
  private readonly faceTriangles: Uint32Array;
  private readonly faceOrder: Uint32Array;
  private readonly faceKeys: Float64Array;
  private readonly triangles: Uint32Array;
  /** The rotation the face triangles were last sorted for (see drawingOrder). */
  private sortedFor: Rotation | undefined;
  /** Per anchor: how much of the head motion it follows. */
  private readonly anchorFollow: Float64Array;
  /** The reference driving landmarks in 3D (x, y, z px; all 478) and the similarity taking its x, y onto the source face. */
  private readonly reference: Float64Array;
  private readonly referenceToSource: Affine;
  /** Every mesh vertex of the source (landmarks, irises, anchors) in the reference frame's coordinates, 3D. */
  private readonly sourceInReference: Float64Array;
  /** Per landmark: which part of the face it moves with (see faceParts). */
  private readonly part: Uint8Array;
  private readonly partScale: Float64Array;
  private readonly takePose: boolean;
  private readonly expressionScale: number;
  private readonly takeEyes: boolean;
  /** Per eye: the source's iris, its eye's frame on the photo, and the gaze shift of this frame (photo px). */
  private readonly irises: SourceIris[];
  private readonly sourceEyes: (EyeFrame & { gap: number; reach: number })[];
  private readonly gazeShift: [number, number][] = [
    [0, 0],
    [0, 0],
  ];
  /** Per eye: how far its lids are closed this frame (0 as in the photo, 1 shut), and its lash colour on the photo. */
  private readonly closing = [0, 0];
  private readonly lashes: [number, number, number][];
  /** Per eye: where its lids meet, corner to corner (target px), for shutLids. */
  private readonly meet = EYES.map(() => new Float64Array((EYE_LID_PAIRS[0].length + 2) * 2));
  private readonly sourceColours: ColourStats;
  private readonly sourceMouthArea: number;
  /** Smoothing of `unposed` (the expression) and of the pose, each on its own. */
  private readonly expressionFilter: OneEuroFilter | undefined;
  private readonly poseFilter: OneEuroFilter | undefined;
  private readonly poseValues = new Float64Array(6);
  /** Coordinates are filtered divided by this (the reference face size), so the filter's units are faces. */
  private readonly referenceSize: number;
  private readonly mouthFill: boolean;
  /** The driving landmarks (x, y), as detected. */
  private readonly driving = new Float64Array(LANDMARK_COUNT * 2);
  /** The driving landmarks unposed before the smoothing: the lids are measured on these (see gapFilter). */
  private readonly rawUnposed = new Float64Array(LANDMARK_COUNT * 3);
  /**
   * Per eye, the driver's lid gap over the reference's, smoothed on its own: smoothed as landmark
   * coordinates (in face units, where a lid's travel is small and slow) a blink arrived a frame late
   * and half deep (driving-talking.mp4's at frame 161: lids closed 0.32 of the way while the driver's
   * gap read 0.34 of open). As a ratio a blink is fast and passes; the detector's jitter of a few
   * hundredths at rest is smoothed.
   */
  private readonly gapFilter: OneEuroFilter | undefined;
  private readonly lidGaps = new Float64Array(2);
  /**
   * Per eye, the driver's gaze against the reference's (along and across the eye, in eye widths),
   * smoothed on its own (GAZE_SMOOTHING).
   */
  private readonly gazeFilter: OneEuroFilter | undefined;
  private readonly gazes = new Float64Array(4);
  /** The driver's landmarks with its pose undone, in the reference's 3D coordinates, smoothed. */
  private readonly unposed = new Float64Array(LANDMARK_COUNT * 3);
  /** This frame's mean offset of the four eye corners from the reference's (the brows move relative to it). */
  private readonly eyeCornerOffset = new Float64Array(3);
  /** Target vertices in the reference's 3D coordinates, before the pose. */
  private readonly target: Float64Array;
  /** Per output pixel, which layer drew it (BEHIND, FACING, SIDEWAYS), and per triangle in drawing order, its layer. */
  private readonly layerMask: Uint8Array;
  private readonly layerValues: Uint8Array;
  /** Per face triangle (in `faceTriangles` order): twice its signed area on the photo. */
  private readonly faceAreas: Float64Array;
  /** The photo's face size (px between the outer eye corners). */
  private readonly sourceSize: number;
  /**
   * For the motion blur (see blurMotion): the mesh's target vertices and the time of the frame
   * before, and buffers. Undefined with `motionBlur: false`.
   */
  private readonly motion:
    | {
        previous: Float64Array;
        velocity: Float64Array;
        time?: number;
        at: Float64Array;
        sum?: Uint16Array;
        frame?: Uint8Array;
      }
    | undefined;
  /** The last rendered frame, kept for frames without a face (callers may change what they were given). */
  private held: Uint8Array | undefined;

  constructor(source: { image: RgbImage; face: Face }, reference: Face, options: MeshAnimatorOptions = {}) {
    this.image = source.image;
    const sourcePoints = planar(source.face);
    this.reference = landmarks3d(reference.landmarks, LANDMARK_COUNT);
    this.referenceSize = faceSize(planar(reference));
    this.sourceSize = faceSize(sourcePoints);
    this.referenceToSource = fitSimilarity(planar(reference), sourcePoints, RIGID_POINTS);
    const toReference = invert(this.referenceToSource);
    const scale = scaleOf(this.referenceToSource);

    const mesh = warpMesh(source.face, this.image);
    this.anchorFollow = mesh.follow;
    this.from = mesh.vertices;
    this.fixedTriangles = mesh.fixed;
    this.faceTriangles = mesh.face;
    this.triangles = mesh.triangles.slice();
    this.faceOrder = new Uint32Array(mesh.face.length / 3);
    this.faceKeys = new Float64Array(mesh.face.length / 3);
    this.layerMask = new Uint8Array(this.image.width * this.image.height);
    this.layerValues = new Uint8Array(mesh.triangles.length / 3);
    this.faceAreas = new Float64Array(mesh.face.length / 3);
    for (let t = 0; t < this.faceAreas.length; t++)
      this.faceAreas[t] = doubleArea(this.from, mesh.face[3 * t]!, mesh.face[3 * t + 1]!, mesh.face[3 * t + 2]!);
    this.to = Float64Array.from(this.from);
    if (options.motionBlur !== false)
      this.motion = {
        previous: Float64Array.from(this.from),
        velocity: new Float64Array(this.from.length),
        at: new Float64Array(this.from.length),
      };
    this.toDepth = Float64Array.from(mesh.depth);
    const vertexCount = this.from.length / 2;
    this.sourceInReference = new Float64Array(vertexCount * 3);
    this.target = new Float64Array(vertexCount * 3);
    for (let v = 0; v < vertexCount; v++) {
      const x = this.from[2 * v]!,
        y = this.from[2 * v + 1]!;
      this.sourceInReference[3 * v] = toReference.a * x + toReference.b * y + toReference.c;
      this.sourceInReference[3 * v + 1] = toReference.d * x + toReference.e * y + toReference.f;
      this.sourceInReference[3 * v + 2] = mesh.depth[v]! / scale;
    }

    const parts = new Set(options.animate ?? ANIMATE_PARTS);
    this.takePose = parts.has('pose');
    this.takeEyes = parts.has('eyes');
    this.expressionScale = options.expressionScale ?? 1;
    this.part = faceParts(this.reference);
    this.partScale = Float64Array.from(
      [
        parts.has('expression'),
        parts.has('eyes'),
        parts.has('mouth'),
        parts.has('mouth'),
        false,
        parts.has('expression'),
      ].map((on) => (on ? this.expressionScale : 0)),
    );

    const source3d = landmarks3d(source.face.landmarks, LANDMARK_COUNT);
    this.irises = EYES.map((eye) => sourceIris(source.image, source.face.landmarks, eye.contour, eye.iris));
    this.sourceEyes = EYES.map((eye, e) => {
      const frame = eyeFrame(source3d, eye.contour, eye.contour[0]!, eye.contour[eye.contour.length / 2]!);
      let gap = 0;
      for (const [upper, lower] of EYE_LID_PAIRS[e]!)
        gap += distance3(source3d, upper, lower) / EYE_LID_PAIRS[e]!.length;
      const radius = this.irises[e]!.radius / frame.width;
      return { ...frame, gap: gap / frame.width, reach: Math.max(0, 0.5 - (1 - MAX_GAZE.corner) * radius) };
    });
    this.lashes = EYE_LID_PAIRS.map((pairs, e) =>
      lashColour(
        this.image,
        sourcePoints,
        pairs.map(([upper]) => upper),
        EYE_FOLDS[e]!,
      ),
    );
    this.sourceColours = faceColourStats(this.image, sourcePoints);
    this.sourceMouthArea = mouthOpeningArea(sourcePoints);
    this.mouthFill = (options.mouthFill ?? true) && parts.has('mouth');
    const smoothing = options.smoothing !== false;
    // A quick speed estimate (4 Hz) and a high beta let fast expression through (a blink's lids
    // are measured before it, see gapFilter).
    this.expressionFilter = smoothing
      ? new OneEuroFilter(LANDMARK_COUNT * 3, {
          minCutoff: options.minCutoff ?? 1,
          beta: options.beta ?? 8,
          derivativeCutoff: 4,
        })
      : undefined;
    this.poseFilter = smoothing ? new OneEuroFilter(6, POSE_SMOOTHING) : undefined;
    this.gapFilter = smoothing
      ? new OneEuroFilter(2, { minCutoff: 1, beta: LID_GAP_BETA, derivativeCutoff: 4 })
      : undefined;
    this.gazeFilter = smoothing ? new OneEuroFilter(4, GAZE_SMOOTHING) : undefined;
  }

  /**
   * The source animated to follow `driving` (landmarks of the driving frame, in the driving
   * frame's px), at the source photo's size. A null face holds the last pose. `time` is the
   * frame's time in seconds, for the smoothing; a time at or before the previous one (a seek)
   * restarts the smoothing. The returned image is a fresh copy the caller may keep or change.
   */
  render(driving: { face: Face | null; frame: RgbImage; time: number }): RgbImage {
    if (!driving.face)
      return { width: this.image.width, height: this.image.height, data: (this.held ?? this.image.data).slice() };
    const points = this.driving;
    const landmarks = driving.face.landmarks;
    for (let i = 0; i < LANDMARK_COUNT; i++) {
      points[2 * i] = landmarks[3 * i]!;
      points[2 * i + 1] = landmarks[3 * i + 1]!;
    }
    // The pose and the expression (the landmarks with the pose undone) are smoothed apart: a turn
    // is never smoothed as an expression, nor the expression's jitter as a turn.
    const detected = fitHeadPose(this.reference, points, RIGID_POINTS) ?? IDENTITY_POSE;
    this.unpose(points, detected, this.rawUnposed);
    this.unposed.set(this.rawUnposed);
    const size = this.referenceSize;
    if (this.expressionFilter) {
      const unposed = this.unposed;
      for (let i = 0; i < unposed.length; i++) unposed[i]! /= size;
      this.expressionFilter.filter(unposed, driving.time);
      for (let i = 0; i < unposed.length; i++) unposed[i]! *= size;
    }
    const pose = this.poseFilter ? this.smoothPose(detected, driving.time) : detected;
    const reference = this.reference;
    const unposed = this.unposed;
    const inReference = this.sourceInReference;
    const target = this.target;
    target.set(inReference);
    // Expression: the driver's offset from the reference in the head's frame, per part of the face.
    // The brows' is taken relative to the eye corners' (the brows raised above the eyes): what the
    // pose leaves unexplained moves the whole upper face alike, and taken as it is, a nod's leftover
    // read as a brow raise. bench:quality --step 3 on driving-eyes.mp4, ratios: face box L1 0.405 ->
    // 0.395, brow error 0.72 -> 0.66 (talking 0.85 -> 0.80, head-turns 0.93 -> 0.95).
    const eyes = this.eyeCornerOffset;
    eyes.fill(0);
    for (const i of EYE_CORNERS)
      for (let c = 0; c < 3; c++) eyes[c]! += (unposed[3 * i + c]! - reference[3 * i + c]!) / EYE_CORNERS.length;
    for (let i = 0; i < MESH_POINTS; i++) {
      const part = this.part[i]!;
      const k = this.partScale[part]!;
      if (k === 0) continue;
      if (part === JAW_OUTLINE) {
        target[3 * i + 1]! += k * (unposed[3 * i + 1]! - reference[3 * i + 1]!);
        continue;
      }
      if (part === MIDFACE) {
        for (let c = 0; c < 2; c++) target[3 * i + c]! += k * (unposed[3 * i + c]! - reference[3 * i + c]!);
        continue;
      }
      const common = part === BROW ? eyes : NO_OFFSET;
      for (let c = 0; c < 3; c++) target[3 * i + c]! += k * (unposed[3 * i + c]! - reference[3 * i + c]! - common[c]!);
    }
    if (this.takeEyes) this.transferEyes(driving.time);

    // The pose, about the source face (the reference's frame mapped onto the source by a similarity).
    const shown = this.takePose ? easeTurn(pose, TURN.knee, TURN.limit) : IDENTITY_POSE;
    const R = shown.rotation;
    const s = shown.scale;
    const m = this.referenceToSource;
    const to = this.to;
    const from = this.from;
    const depth = this.toDepth;
    const sourceScale = scaleOf(m);
    for (let v = 0; v < from.length / 2; v++) {
      const x = target[3 * v]!,
        y = target[3 * v + 1]!,
        z = target[3 * v + 2]!;
      const px = s * (R[0] * x + R[1] * y + R[2] * z) + shown.tx;
      const py = s * (R[3] * x + R[4] * y + R[5] * z) + shown.ty;
      to[2 * v] = m.a * px + m.b * py + m.c;
      to[2 * v + 1] = m.d * px + m.e * py + m.f;
      depth[v] = s * sourceScale * (R[6] * x + R[7] * y + R[8] * z);
    }
    // Anchors that follow the head weakly (neck, shoulders, beside the head) take a share of its motion.
    for (let k = 0; k < this.anchorFollow.length; k++) {
      const v = FACE_VERTICES + k;
      const w = this.anchorFollow[k]!;
      if (w === 1) continue;
      to[2 * v] = from[2 * v]! + w * (to[2 * v]! - from[2 * v]!);
      to[2 * v + 1] = from[2 * v + 1]! + w * (to[2 * v + 1]! - from[2 * v + 1]!);
    }

    const out = copy(this.image);
    const triangles = this.drawingOrder(R);
    // Most frames see no face triangle sideways (no turn): nothing to mark or soften.
    if (this.markLayers(s)) {
      this.layerMask.fill(BEHIND);
      warpPiecewiseAffine(this.image, from, to, triangles, out.data, {
        mask: this.layerMask,
        values: this.layerValues,
      });
      featherOutline(out, this.layerMask, to);
    } else warpPiecewiseAffine(this.image, from, to, triangles, out.data);
    this.blurMotion(out, triangles, driving.time);
    if (this.takeEyes)
      for (let e = 0; e < EYES.length; e++) {
        shiftIris(out, this.image, from, to, this.irises[e]!, this.gazeShift[e]!);
        const t = Math.min(1, Math.max(0, (this.closing[e]! - SHUT_FROM) / (1 - SHUT_FROM)));
        if (t > 0) shutLids(out, this.meetLine(e), this.lashes[e]!, t * t * (3 - 2 * t));
      }
    if (this.mouthFill) {
      const targetArea = mouthOpeningArea(to);
      // How far the target opening outgrows the (posed) source's own mouth interior.
      const available = this.sourceMouthArea * s * s * Math.abs(R[0] * R[4] - R[1] * R[3]);
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

  /** `pose` through poseFilter (see POSE_SMOOTHING); its fitted centre stays the same point of the reference. */
  private smoothPose(pose: HeadPose, time: number): HeadPose {
    const size = this.referenceSize;
    const values = this.poseValues;
    const turn = rotationVector(pose.rotation);
    values[0] = pose.image[0] / size;
    values[1] = pose.image[1] / size;
    values[2] = Math.log(pose.scale);
    values.set(turn, 3);
    this.poseFilter!.filter(values, time);
    const rotation = rotationFromVector(values[3]!, values[4]!, values[5]!);
    const scale = Math.exp(values[2]!);
    const image: [number, number] = [values[0]! * size, values[1]! * size];
    const [mx, my, mz] = pose.centre;
    return {
      rotation,
      scale,
      image,
      centre: pose.centre,
      tx: image[0] - scale * (rotation[0] * mx + rotation[1] * my + rotation[2] * mz),
      ty: image[1] - scale * (rotation[3] * mx + rotation[4] * my + rotation[5] * mz),
    };
  }

  /**
   * The driver's landmarks in the reference's 3D frame with `pose` undone: the reference point
   * plus what the pose leaves unexplained in the image, turned back into the head's frame.
   */
  private unpose(points: Float64Array, pose: HeadPose, unposed: Float64Array): void {
    const R = pose.rotation;
    const s = pose.scale;
    const reference = this.reference;
    for (let i = 0; i < LANDMARK_COUNT; i++) {
      const x = reference[3 * i]!,
        y = reference[3 * i + 1]!,
        z = reference[3 * i + 2]!;
      const rx = (points[2 * i]! - (s * (R[0] * x + R[1] * y + R[2] * z) + pose.tx)) / s;
      const ry = (points[2 * i + 1]! - (s * (R[3] * x + R[4] * y + R[5] * z) + pose.ty)) / s;
      // R transposed times (rx, ry, 0).
      unposed[3 * i] = x + R[0] * rx + R[3] * ry;
      unposed[3 * i + 1] = y + R[1] * rx + R[4] * ry;
      unposed[3 * i + 2] = z + R[2] * rx + R[5] * ry;
    }
  }

  /**
   * Eyelids move by ratio, not by offset: the lid gaps on the target are the source's gaps times
   * how far the driver's eye is open relative to the reference, each eye on its own, so a wink
   * stays a wink. An added offset would leave a wide-eyed source half open when a narrow-eyed
   * driver blinks. The iris centre keeps its place between the lids as they open and close; the
   * driver's gaze (its iris against its eye, in eye widths) is kept in `gazeShift` for shiftIris.
   */
  private transferEyes(time: number): void {
    const target = this.target;
    const inReference = this.sourceInReference;
    const reference = this.reference;
    const scale = this.expressionScale;
    const gaps = this.lidGaps;
    EYE_LID_PAIRS.forEach((pairs, e) => {
      let driverGap = 0;
      let referenceGap = 0;
      for (const [upper, lower] of pairs) {
        driverGap += distance3(this.rawUnposed, upper, lower);
        referenceGap += distance3(reference, upper, lower);
      }
      gaps[e] = driverGap / Math.max(referenceGap, 1e-6);
    });
    this.gapFilter?.filter(gaps, time);
    // The gaze is measured before the expression's smoothing too, and smoothed on its own (see gazeFilter).
    const gazes = this.gazes;
    EYES.forEach((eye, e) => {
      const [a, b] = [eye.contour[0]!, eye.contour[eye.contour.length / 2]!];
      const driverGaze = gazeOf(this.rawUnposed, eye.contour, eye.iris, a, b);
      const referenceGaze = gazeOf(reference, eye.contour, eye.iris, a, b);
      gazes[2 * e] = driverGaze.along - referenceGaze.along;
      gazes[2 * e + 1] = driverGaze.across - referenceGaze.across;
    });
    this.gazeFilter?.filter(gazes, time);
    const closing = EYE_LID_PAIRS.map((_, e) => {
      const relative = 1 + scale * (gaps[e]! - 1);
      if (relative >= LINEAR_EYE_GAP) return 1 - Math.min(MAX_EYE_OPENING, relative);
      // Below LINEAR_EYE_GAP the lids close faster, to shut at CLOSED_EYE_GAP.
      return 1 - LINEAR_EYE_GAP * Math.max(0, (relative - CLOSED_EYE_GAP) / (LINEAR_EYE_GAP - CLOSED_EYE_GAP));
    });
    // Face Mesh often sees one eye of a blink stay half open: when the other eye closes at least
    // about half as far, both close as far as the more closed one. A wink leaves the other eye
    // open or barely narrowed, and each keeps its own.
    const most = Math.max(...closing);
    if (most > 0) {
      const least = Math.min(...closing);
      const t = Math.min(1, Math.max(0, (least / most - 0.3) / 0.3));
      const together = t * t * (3 - 2 * t);
      for (let e = 0; e < closing.length; e++)
        if (closing[e]! > 0) closing[e] = closing[e]! + together * (most - closing[e]!);
    }
    EYE_LID_PAIRS.forEach((pairs, e) => {
      this.closing[e] = closing[e]!;
      const ratio = 1 - closing[e]!;
      const eye = EYES[e]!;
      const v = IRIS_VERTICES[e]!;
      // The iris centre's offset from the eye's centre in the source, squeezed across the eye with the lids.
      const sourceCentre = [0, 0, 0];
      for (const i of eye.contour)
        for (let c = 0; c < 3; c++) sourceCentre[c]! += inReference[3 * i + c]! / eye.contour.length;
      const offset = [0, 1, 2].map((c) => inReference[3 * v + c]! - sourceCentre[c]!);
      const gap = [0, 0, 0];
      for (const [upper, lower] of pairs)
        for (let c = 0; c < 3; c++) gap[c]! += inReference[3 * lower + c]! - inReference[3 * upper + c]!;
      const gapLength = Math.max(1e-9, Math.hypot(gap[0]!, gap[1]!, gap[2]!));
      const across = (offset[0]! * gap[0]! + offset[1]! * gap[1]! + offset[2]! * gap[2]!) / gapLength;
      pairs.forEach(([upper, lower], k) => {
        const fold = EYE_FOLDS[e]![k]!;
        for (let c = 0; c < 3; c++) {
          // A closing eye is mostly the upper lid coming down: the lids meet a quarter of the
          // gap above the lower lid, and the fold above the upper lid comes down with it, the
          // band between them squeezed (LASH_BAND_SQUEEZE) so the lid's skin covers the eye.
          const u = target[3 * upper + c]!,
            l = target[3 * lower + c]!;
          const meet = u + LIDS_MEET * (l - u);
          const gap = ratio * (inReference[3 * lower + c]! - inReference[3 * upper + c]!);
          const newUpper = meet - LIDS_MEET * gap;
          target[3 * lower + c] = meet + (1 - LIDS_MEET) * gap;
          const band = 1 - LASH_BAND_SQUEEZE * Math.max(0, 1 - ratio / LINEAR_EYE_GAP);
          target[3 * fold + c] = newUpper + band * (target[3 * fold + c]! - u);
          target[3 * upper + c] = newUpper;
        }
      });
      const centre = [0, 0, 0];
      for (const i of eye.contour) for (let c = 0; c < 3; c++) centre[c]! += target[3 * i + c]! / eye.contour.length;
      for (let c = 0; c < 3; c++)
        target[3 * v + c] = centre[c]! + offset[c]! + ((ratio - 1) * across * gap[c]!) / gapLength;

      // Gaze: how far the driver's iris moved from the reference's, along and across the eye.
      const frame = this.sourceEyes[e]!;
      const along = clamp(scale * gazes[2 * e]!, frame.reach) * frame.width;
      const up = clamp(scale * gazes[2 * e + 1]!, MAX_GAZE.across * frame.gap) * frame.width * ratio;
      this.gazeShift[e]![0] = along * frame.u[0] + up * frame.n[0];
      this.gazeShift[e]![1] = along * frame.u[1] + up * frame.n[1];
    });
  }

  /** Where the lids of eye `e` meet on the target (`to`): its corners and, between them, LIDS_MEET down each lid pair. */
  private meetLine(e: number): Float64Array {
    const line = this.meet[e]!;
    const to = this.to;
    const contour = EYES[e]!.contour;
    const pairs = EYE_LID_PAIRS[e]!;
    const corners = [contour[0]!, contour[contour.length / 2]!];
    line[0] = to[2 * corners[0]!]!;
    line[1] = to[2 * corners[0]! + 1]!;
    pairs.forEach(([upper, lower], k) => {
      for (let c = 0; c < 2; c++)
        line[2 * (k + 1) + c] = to[2 * upper + c]! + LIDS_MEET * (to[2 * lower + c]! - to[2 * upper + c]!);
    });
    line[line.length - 2] = to[2 * corners[1]!]!;
    line[line.length - 1] = to[2 * corners[1]! + 1]!;
    return line;
  }

  /**
   * A camera's shutter stays open for part of each frame, and real frames of a fast move are
   * blurred along it (driving-head-turns.mp4's turns are soft); warped from a still photo they
   * came out sharp, and strobed. Where the face moves more than MOTION_BLUR.from face sizes a
   * frame, the frame becomes the mean of the warp at its place and at places up to
   * MOTION_BLUR.reach of that move either way (ahead too, from the move so far: no frame is waited
   * for), but no farther than MOTION_BLUR.longest face sizes, as blurred as the real frames look.
   * The move is each vertex's step from the frame before, carried over by MOTION_BLUR.carry: that
   * clip repeats a frame every 5 to 7, and a repeated frame, not moving, came out sharp between
   * blurred ones, a flicker of sharpness the real frames do not have.
   */
  private blurMotion(out: RgbImage, triangles: Uint32Array, time: number): void {
    const motion = this.motion;
    if (!motion) return;
    const { to } = this;
    const { previous, velocity, at } = motion;
    if (motion.time === undefined || time <= motion.time) velocity.fill(0);
    else
      for (let i = 0; i < to.length; i++)
        velocity[i] = MOTION_BLUR.carry * velocity[i]! + (1 - MOTION_BLUR.carry) * (to[i]! - previous[i]!);
    motion.time = time;
    previous.set(to);
    let moved = 0;
    for (let v = 0; v < FACE_VERTICES; v++) moved += Math.hypot(velocity[2 * v]!, velocity[2 * v + 1]!) / FACE_VERTICES;
    if (moved < MOTION_BLUR.from * this.sourceSize) return;
    const sum = (motion.sum ??= new Uint16Array(out.data.length));
    const frame = (motion.frame ??= new Uint8Array(out.data.length));
    sum.set(out.data);
    // As many draws each side as keep them MOTION_BLUR.spacing px apart (a few copies far apart
    // read as a double image, not as blur), up to MOTION_BLUR.most.
    const reach = Math.min(MOTION_BLUR.reach, (MOTION_BLUR.longest * this.sourceSize) / moved);
    const side = Math.min(MOTION_BLUR.most, Math.max(1, Math.ceil((reach * moved) / MOTION_BLUR.spacing)));
    for (let j = -side; j <= side; j++) {
      if (j === 0) continue;
      const share = (reach * j) / side;
      for (let i = 0; i < to.length; i++) at[i] = to[i]! - share * velocity[i]!;
      frame.set(this.image.data);
      warpPiecewiseAffine(this.image, this.from, at, triangles, frame);
      for (let i = 0; i < sum.length; i++) sum[i]! += frame[i]!;
    }
    const n = 2 * side + 1;
    for (let i = 0; i < sum.length; i++) out.data[i] = (sum[i]! + (n >> 1)) / n;
  }

  /**
   * The layer of every triangle in drawing order (layerValues): the fixed ones BEHIND, the face's
   * FACING or, drawn at under OBLIQUE of their photo's area (`scale`: the head's scale against the
   * reference frame), SIDEWAYS. faceOrder holds the drawing order of the face triangles (drawingOrder).
   * True when any is SIDEWAYS.
   */
  private markLayers(scale: number): boolean {
    const values = this.layerValues;
    const fixed = this.fixedTriangles.length / 3;
    values.fill(BEHIND, 0, fixed);
    const face = this.faceTriangles;
    const least = OBLIQUE * scale * scale;
    let sideways = false;
    for (let k = 0; k < this.faceOrder.length; k++) {
      const t = this.faceOrder[k]!;
      const drawn = doubleArea(this.to, face[3 * t]!, face[3 * t + 1]!, face[3 * t + 2]!);
      const photo = this.faceAreas[t]!;
      const oblique = drawn * Math.sign(photo) < least * Math.abs(photo);
      values[fixed + k] = oblique ? SIDEWAYS : FACING;
      sideways ||= oblique;
    }
    return sideways;
  }

  /**
   * Triangles in drawing order: the fixed ones, then the face's from the farthest posed depth to
   * the nearest. Sorted again only once the head has turned by more than about half a degree
   * since the last sort (`rotation`): the order changes with the turn, not with each frame.
   */
  private drawingOrder(rotation: Rotation): Uint32Array {
    const sorted = this.sortedFor;
    if (sorted && rotation.every((v, k) => Math.abs(v - sorted[k]!) < RESORT_TURN)) return this.triangles;
    this.sortedFor = [...rotation] as Rotation;
    const face = this.faceTriangles;
    const depth = this.toDepth;
    const order = this.faceOrder;
    const keys = this.faceKeys;
    for (let t = 0; t < order.length; t++) {
      order[t] = t;
      keys[t] = depth[face[3 * t]!]! + depth[face[3 * t + 1]!]! + depth[face[3 * t + 2]!]!;
    }
    order.sort((s, t) => keys[t]! - keys[s]! || s - t);
    const triangles = this.triangles;
    let o = this.fixedTriangles.length;
    for (let k = 0; k < order.length; k++, o += 3) {
      const t = order[k]!;
      triangles[o] = face[3 * t]!;
      triangles[o + 1] = face[3 * t + 1]!;
      triangles[o + 2] = face[3 * t + 2]!;
    }
    return triangles;
  }
}

/**
 * Per landmark, which part of the face moves it: 0 the brows (the expression), 1 the eyelids,
 * 2 the mouth and jaw (below the nose), 3 the outline of the jaw (with the mouth, but only up and
 * down in the head's frame), 4 nothing but the head: the outline above the jaw, and the rigid
 * points the pose is fitted on. The driver's offsets on the outline are mostly where Face Mesh
 * puts the far side of a turned face on its silhouette: moved, it would tear the face from the
 * hair and ears around it. 5 the rest above the mouth (cheeks, nose, forehead) with the
 * expression, in the head's image plane only: a smile lifts the cheeks, a frown pulls the nose,
 * while the depth offsets there are mostly where the reference's depth differs from the driver's
 * real face; the skin around the eyes is left with the head (EYE_SURROUND). Held with the head,
 * these parts lost every such move: bench:quality --step 3, face box L1 ratios talking 0.479 ->
 * 0.472, head-turns 0.503 -> 0.498, eyes 0.395 -> 0.387.
 */
function faceParts(reference: Float64Array): Uint8Array {
  const part = new Uint8Array(MESH_POINTS).fill(4);
  const { x: nx, y: ny, eyes: length } = faceDown(reference, 3);
  const below = (i: number) =>
    (reference[3 * i]! - reference[3 * NOSE_BASE]!) * nx + (reference[3 * i + 1]! - reference[3 * NOSE_BASE + 1]!) * ny;
  for (let i = 0; i < MESH_POINTS; i++) if (below(i) > 0) part[i] = 2;
  for (const i of FACE_OVAL) if (part[i] === 2) part[i] = 3;
  // The outline and the rigid points stay with the head, and so does the skin around the eyes:
  // moved by its offsets while the lids move by ratio (transferEyes), it pulled the lids out of shape.
  const head = new Set<number>([...FACE_OVAL, ...RIGID_POINTS]);
  const nearEye = (i: number) =>
    EYES.some((eye) =>
      eye.contour.some(
        (j) =>
          Math.hypot(reference[3 * i]! - reference[3 * j]!, reference[3 * i + 1]! - reference[3 * j + 1]!) <
          EYE_SURROUND * length,
      ),
    );
  for (let i = 0; i < MESH_POINTS; i++) if (part[i] === 4 && !head.has(i) && !nearEye(i)) part[i] = MIDFACE;
  for (const brow of BROWS) for (const i of brow) part[i] = 0;
  for (const eye of EYES) for (const i of eye.contour) part[i] = 1;
  return part;
}

/**
 * Within this distance of an eye's contour (in distances between the outer eye corners) the face
 * moves with the head only (see faceParts): moved with the expression, the lids the detector read
 * on the output came out further from the driver's (eye opening ratio on driving-head-turns.mp4
 * 1.02, against 0.85 held; 0.86 at this distance).
 */
const EYE_SURROUND = 0.32;

/** The brows, the jaw's outline and the cheeks, nose and forehead in faceParts. */
const BROW = 0,
  JAW_OUTLINE = 3,
  MIDFACE = 5;

/** The outer and inner corners of both eyes. */
const EYE_CORNERS = [
  LANDMARKS.imageLeftEyeOuter,
  LANDMARKS.imageLeftEyeInner,
  LANDMARKS.imageRightEyeInner,
  LANDMARKS.imageRightEyeOuter,
] as const;
const NO_OFFSET = new Float64Array(3);

/** Under the nose (subnasale): the mouth's part of the face starts below it. */
const NOSE_BASE = 2;

interface EyeFrame {
  centre: [number, number, number];
  /** Unit vectors along the eye (from contour[0] to the opposite corner) and across it, in the image plane (z 0). */
  u: [number, number, number];
  n: [number, number, number];
  /** The eye's width in the image plane. */
  width: number;
}

/**
 * The eye's frame in the head's image plane (x, y only). Gaze is measured and put back in this
 * plane: measured along the eye's 3D axis (its outer corner lies deeper than its inner) while the
 * iris landmark's depth says little, and put back through that axis's image, a sideways glance lost
 * a fifth of its travel (12.7 px for the driver's 15.8 at frame 84 of driving-eyes.mp4).
 */
function eyeFrame(points: Float64Array, contour: readonly number[], a: number, b: number): EyeFrame {
  const centre: [number, number, number] = [0, 0, 0];
  for (const i of contour) for (let c = 0; c < 3; c++) centre[c]! += points[3 * i + c]! / contour.length;
  const dx = points[3 * b]! - points[3 * a]!,
    dy = points[3 * b + 1]! - points[3 * a + 1]!;
  const width = Math.max(1e-6, Math.hypot(dx, dy));
  const u: [number, number, number] = [dx / width, dy / width, 0];
  const n: [number, number, number] = [-u[1], u[0], 0];
  return { centre, u, n, width };
}

function gazeOf(
  points: Float64Array,
  contour: readonly number[],
  iris: number,
  a: number,
  b: number,
): { along: number; across: number; width: number } {
  const frame = eyeFrame(points, contour, a, b);
  const dx = points[3 * iris]! - frame.centre[0],
    dy = points[3 * iris + 1]! - frame.centre[1];
  return {
    along: (dx * frame.u[0] + dy * frame.u[1]) / frame.width,
    across: (dx * frame.n[0] + dy * frame.n[1]) / frame.width,
    width: frame.width,
  };
}

function distance3(points: Float64Array, i: number, j: number): number {
  return Math.hypot(
    points[3 * j]! - points[3 * i]!,
    points[3 * j + 1]! - points[3 * i + 1]!,
    points[3 * j + 2]! - points[3 * i + 2]!,
  );
}

function clamp(value: number, limit: number): number {
  return Math.max(-limit, Math.min(limit, value));
}

/** Twice the signed area of triangle (a, b, c) of interleaved x, y points. */
function doubleArea(points: ArrayLike<number>, a: number, b: number, c: number): number {
  return (
    (points[2 * b]! - points[2 * a]!) * (points[2 * c + 1]! - points[2 * a + 1]!) -
    (points[2 * c]! - points[2 * a]!) * (points[2 * b + 1]! - points[2 * a + 1]!)
  );
}

/**
 * Softens the cut where obliquely seen face triangles (SIDEWAYS: the far side of a turn) meet
 * pixels no face triangle drew: each pixel on either side of that boundary becomes the mean of
 * its 3x3 neighbourhood, a two-pixel ramp like the photo's own edges. Only the face's box (from
 * the posed landmarks in `to`) is scanned.
 */
function featherOutline(out: RgbImage, mask: Uint8Array, to: Float64Array): void {
  const { width, height, data } = out;
  const [x0, y0, x1, y1] = pointBounds(to, MESH_POINTS);
  const left = Math.max(1, Math.floor(x0) - 2),
    right = Math.min(width - 2, Math.ceil(x1) + 2);
  const top = Math.max(1, Math.floor(y0) - 2),
    bottom = Math.min(height - 2, Math.ceil(y1) + 2);
  const edge: number[] = [];
  for (let y = top; y <= bottom; y++) {
    for (let x = left; x <= right; x++) {
      const p = y * width + x;
      const m = mask[p]!;
      if (m === FACING) continue;
      const other = m === SIDEWAYS ? BEHIND : SIDEWAYS;
      if (mask[p - 1] === other || mask[p + 1] === other || mask[p - width] === other || mask[p + width] === other)
        edge.push(p);
    }
  }
  const blended = new Uint8Array(edge.length * 3);
  edge.forEach((p, k) => {
    for (let c = 0; c < 3; c++) {
      let sum = 0;
      for (let dy = -width; dy <= width; dy += width)
        for (let dx = -1; dx <= 1; dx++) sum += data[(p + dy + dx) * 3 + c]!;
      blended[3 * k + c] = (sum + 4.5) / 9;
    }
  });
  edge.forEach((p, k) => data.set(blended.subarray(3 * k, 3 * k + 3), p * 3));
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
  return Math.max(1, Math.hypot(points[2 * b]! - points[2 * a]!, points[2 * b + 1]! - points[2 * a + 1]!));
}
