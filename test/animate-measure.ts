/**
 * Measurements for the animate acceptance tests: what the landmark detector sees in a video,
 * and simple statistics. Shared by test/animate-*.test.ts and the benchmark.
 */
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LANDMARK_COUNT, type Face, type FaceAnalyzer } from '../src/face/detector.js';
import { eyeCentres, landmark, LANDMARKS, rollDegrees } from '../src/face/landmarks.js';
import { decodeVideo } from '../src/media/decode.js';
import { runFfmpeg, runTool } from '../src/media/ffmpeg.js';
import { fitHeadPose, landmarks3d } from '../src/mesh/head.js';
import { MESH_POINTS, RIGID_POINTS } from '../src/mesh/regions.js';
import { FACE_MESH_TRIANGLES } from '../src/mesh/tessellation.js';
import type { RgbImage } from '../src/types.js';

export interface FrameMeasure {
  index: number;
  /** Inner-lip gap divided by the distance between the eye centres. */
  mouth: number;
  roll: number;
  face: Face;
  /** frontalFacePatch of the face in the `frontal` frame given to measureVideo (empty without one). */
  patch: Float32Array;
}

/** Mouth opening and roll of the largest face in every `step`-th frame (frames without a face are left out). */
export async function measureVideo(
  path: string,
  analyzer: FaceAnalyzer,
  step: number,
  options: { width?: number; height?: number; frontal?: FrontalFrame } = {},
): Promise<FrameMeasure[]> {
  const measures: FrameMeasure[] = [];
  for await (const frame of decodeVideo(path, options)) {
    if (frame.index % step !== 0) continue;
    const [face] = await analyzer.detect(frame);
    if (face)
      measures.push({
        index: frame.index,
        mouth: mouthOpening(face),
        roll: rollDegrees(face),
        face,
        patch: options.frontal ? frontalFacePatch(frame, face, options.frontal) : new Float32Array(0),
      });
  }
  return measures;
}

export function mouthOpening(face: Face): number {
  const upper = landmark(face, LANDMARKS.upperInnerLip);
  const lower = landmark(face, LANDMARKS.lowerInnerLip);
  const { imageLeft, imageRight } = eyeCentres(face);
  return (
    Math.hypot(lower.x - upper.x, lower.y - upper.y) /
    Math.hypot(imageRight.x - imageLeft.x, imageRight.y - imageLeft.y)
  );
}

export function correlation(a: number[], b: number[]): number {
  const n = a.length;
  const meanA = a.reduce((s, v) => s + v, 0) / n;
  const meanB = b.reduce((s, v) => s + v, 0) / n;
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < n; i++) {
    ab += (a[i]! - meanA) * (b[i]! - meanB);
    aa += (a[i]! - meanA) ** 2;
    bb += (b[i]! - meanB) ** 2;
  }
  return ab / Math.sqrt(aa * bb);
}

/** PSNR in dB of `b` against `a` over the pixels `keep(x, y)` selects (Infinity where they are identical). */
export function psnr(a: RgbImage, b: RgbImage, keep: (x: number, y: number) => boolean = () => true): number {
  let squared = 0;
  let count = 0;
  for (let y = 0; y < a.height; y++) {
    for (let x = 0; x < a.width; x++) {
      if (!keep(x, y)) continue;
      for (let ch = 0; ch < 3; ch++) {
        const d = a.data[(y * a.width + x) * 3 + ch]! - b.data[(y * b.width + x) * 3 + ch]!;
        squared += d * d;
      }
      count += 3;
    }
  }
  assert.ok(count > 0, 'empty comparison region');
  return squared === 0 ? Infinity : 10 * Math.log10((255 * 255 * count) / squared);
}

/** The frames of a video at the given indices (decoding all, keeping those). */
export async function framesAt(path: string, indices: number[]): Promise<Map<number, RgbImage>> {
  const wanted = new Set(indices);
  const frames = new Map<number, RgbImage>();
  for await (const frame of decodeVideo(path)) if (wanted.has(frame.index)) frames.set(frame.index, frame);
  return frames;
}

export async function scratchFolder(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'reenact-animate-test-'));
}

/** Runs ffmpeg to make a test clip; `args` go between the input and the output. */
export async function makeClip(input: string[], args: string[], output: string): Promise<string> {
  await runFfmpeg(['-y', ...input, ...args, output], `making the test clip ${output}`);
  return output;
}

/** Container tags and stream types as ffprobe reports them. */
export async function probeTags(path: string): Promise<{
  tags: Record<string, string>;
  streams: { codec_type: string; width?: number; height?: number; nb_frames?: string; r_frame_rate?: string }[];
}> {
  const result = await runTool('ffprobe', [
    '-v',
    'error',
    '-print_format',
    'json',
    '-show_format',
    '-show_streams',
    path,
  ]);
  const parsed = JSON.parse(result.stdout) as {
    format: { tags?: Record<string, string> };
    streams: { codec_type: string }[];
  };
  return { tags: parsed.format.tags ?? {}, streams: parsed.streams };
}

/**
 * Where faces are compared for identity: the 3D landmarks of one face (the photo's) and the
 * similarity placing that face in a size x size patch, its eye centres at (0.3, 0.35) and
 * (0.7, 0.35) of the side.
 */
export interface FrontalFrame {
  reference: Float64Array;
  toPatch: [number, number, number, number, number, number];
  size: number;
}

export function frontalFrame(face: Face, size = 64): FrontalFrame {
  const { imageLeft, imageRight } = eyeCentres(face);
  const dx = imageRight.x - imageLeft.x;
  const dy = imageRight.y - imageLeft.y;
  // Patch units per image px, along and across the eye line.
  const k = (0.4 * size) / (dx * dx + dy * dy);
  const a = k * dx,
    b = k * dy;
  return {
    reference: landmarks3d(face.landmarks, LANDMARK_COUNT),
    toPatch: [
      a,
      b,
      0.3 * size - a * imageLeft.x - b * imageLeft.y,
      -b,
      a,
      0.35 * size + b * imageLeft.x - a * imageLeft.y,
    ],
    size,
  };
}

/**
 * A grey patch of the face's texture with its head pose undone, for identity checks that a
 * turn does not sway: the pose taking the frame's reference face onto `face` is fitted (rigid
 * landmarks, 3D), each landmark is brought back to the reference's pose keeping what the pose
 * does not explain (the face's own shape and expression), and the Face Mesh triangles are mapped
 * from the image onto those frontal places. A turned face thus compares with a frontal one
 * feature on feature instead of a cheek against the background. Triangles seen much more
 * obliquely than the frame's face shows them (the far side of a turn, under 40% of their area)
 * or from behind are left out, NaN, as are pixels outside the face.
 */
export function frontalFacePatch(image: RgbImage, face: Face, frame: FrontalFrame): Float32Array {
  const { reference, toPatch: m, size } = frame;
  const points = new Float64Array(LANDMARK_COUNT * 2);
  for (let i = 0; i < LANDMARK_COUNT; i++) {
    points[2 * i] = face.landmarks[3 * i]!;
    points[2 * i + 1] = face.landmarks[3 * i + 1]!;
  }
  const patch = new Float32Array(size * size).fill(NaN);
  const pose = fitHeadPose(reference, points, RIGID_POINTS);
  if (!pose) return patch;
  const R = pose.rotation;
  const s = pose.scale;
  // Each landmark in the reference's pose and then in patch coordinates.
  const to = new Float64Array(MESH_POINTS * 2);
  for (let i = 0; i < MESH_POINTS; i++) {
    const x = reference[3 * i]!,
      y = reference[3 * i + 1]!,
      z = reference[3 * i + 2]!;
    const rx = (points[2 * i]! - (s * (R[0] * x + R[1] * y + R[2] * z) + pose.tx)) / s;
    const ry = (points[2 * i + 1]! - (s * (R[3] * x + R[4] * y + R[5] * z) + pose.ty)) / s;
    const fx = x + R[0] * rx + R[3] * ry;
    const fy = y + R[1] * rx + R[4] * ry;
    to[2 * i] = m[0] * fx + m[1] * fy + m[2];
    to[2 * i + 1] = m[3] * fx + m[4] * fy + m[5];
  }
  const area = (p: Float64Array, i: number, j: number, k: number) =>
    ((p[2 * j]! - p[2 * i]!) * (p[2 * k + 1]! - p[2 * i + 1]!) -
      (p[2 * k]! - p[2 * i]!) * (p[2 * j + 1]! - p[2 * i + 1]!)) /
    2;
  // Image px per patch px squared, as the whole face is seen.
  const faceScale = (s * s) / (m[0] * m[0] + m[1] * m[1]);
  for (let t = 0; t < FACE_MESH_TRIANGLES.length; t += 3) {
    const i = FACE_MESH_TRIANGLES[t]!,
      j = FACE_MESH_TRIANGLES[t + 1]!,
      k = FACE_MESH_TRIANGLES[t + 2]!;
    const target = area(to, i, j, k);
    if (Math.abs(target) < 1e-9) continue;
    const seen = area(points, i, j, k) / target / faceScale;
    if (!(seen > 0.4)) continue;
    const x0 = to[2 * i]!,
      y0 = to[2 * i + 1]!;
    const e1x = to[2 * j]! - x0,
      e1y = to[2 * j + 1]! - y0,
      e2x = to[2 * k]! - x0,
      e2y = to[2 * k + 1]! - y0;
    const det = e1x * e2y - e2x * e1y;
    const top = Math.max(0, Math.floor(Math.min(y0, y0 + e1y, y0 + e2y)));
    const bottom = Math.min(size - 1, Math.ceil(Math.max(y0, y0 + e1y, y0 + e2y)));
    const left = Math.max(0, Math.floor(Math.min(x0, x0 + e1x, x0 + e2x)));
    const right = Math.min(size - 1, Math.ceil(Math.max(x0, x0 + e1x, x0 + e2x)));
    for (let v = top; v <= bottom; v++) {
      for (let u = left; u <= right; u++) {
        const px = u + 0.5 - x0,
          py = v + 0.5 - y0;
        const l1 = (px * e2y - e2x * py) / det;
        const l2 = (e1x * py - px * e1y) / det;
        if (l1 < 0 || l2 < 0 || l1 + l2 > 1) continue;
        const l0 = 1 - l1 - l2;
        const sx = l0 * points[2 * i]! + l1 * points[2 * j]! + l2 * points[2 * k]!;
        const sy = l0 * points[2 * i + 1]! + l1 * points[2 * j + 1]! + l2 * points[2 * k + 1]!;
        patch[v * size + u] = grey(image, sx, sy);
      }
    }
  }
  return patch;
}

/** Bilinear grey level of `image` at (x, y), pixel centres at +0.5. */
function grey(image: RgbImage, x: number, y: number): number {
  const fx = Math.min(image.width - 1, Math.max(0, x - 0.5));
  const fy = Math.min(image.height - 1, Math.max(0, y - 0.5));
  const ix = Math.min(image.width - 2, Math.floor(fx));
  const iy = Math.min(image.height - 2, Math.floor(fy));
  const ax = fx - ix,
    ay = fy - iy;
  const at = (xx: number, yy: number) => {
    const p = (yy * image.width + xx) * 3;
    return 0.299 * image.data[p]! + 0.587 * image.data[p + 1]! + 0.114 * image.data[p + 2]!;
  };
  return (
    (1 - ay) * ((1 - ax) * at(ix, iy) + ax * at(ix + 1, iy)) +
    ay * ((1 - ax) * at(ix, iy + 1) + ax * at(ix + 1, iy + 1))
  );
}

/**
 * Normalised cross-correlation of two patches over the pixels both hold (not NaN): 1 for the
 * same picture up to brightness and contrast.
 */
export function patchSimilarity(a: Float32Array, b: Float32Array): number {
  const x: number[] = [];
  const y: number[] = [];
  for (let i = 0; i < a.length; i++)
    if (!Number.isNaN(a[i]!) && !Number.isNaN(b[i]!)) {
      x.push(a[i]!);
      y.push(b[i]!);
    }
  return x.length > 1 ? correlation(x, y) : 0;
}
