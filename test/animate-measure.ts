/**
 * Measurements for the animate acceptance tests: what the landmark detector sees in a video,
 * and simple statistics. Shared by test/animate-*.test.ts and the benchmark.
 */
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Face, FaceAnalyzer } from '../src/face/detector.js';
import { eyeCentres, landmark, LANDMARKS, rollDegrees } from '../src/face/landmarks.js';
import { decodeVideo } from '../src/media/decode.js';
import { runFfmpeg, runTool } from '../src/media/ffmpeg.js';
import type { RgbImage } from '../src/types.js';

export interface FrameMeasure {
  index: number;
  /** Inner-lip gap divided by the distance between the eye centres. */
  mouth: number;
  roll: number;
  face: Face;
  /** alignedFacePatch of the face. */
  patch: Float32Array;
}

/** Mouth opening and roll of the largest face in every `step`-th frame (frames without a face are left out). */
export async function measureVideo(
  path: string,
  analyzer: FaceAnalyzer,
  step: number,
  options: { width?: number; height?: number } = {},
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
        patch: alignedFacePatch(frame, face),
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
 * A size x size grey patch of the face, rotated and scaled so the eye centres land on fixed
 * points: faces of one person compare alike whatever the pose, for identity checks.
 */
export function alignedFacePatch(image: RgbImage, face: Face, size = 64): Float32Array {
  const { imageLeft, imageRight } = eyeCentres(face);
  // Patch eye positions: (0.3, 0.35) and (0.7, 0.35) of the side.
  const dx = imageRight.x - imageLeft.x;
  const dy = imageRight.y - imageLeft.y;
  const scale = Math.hypot(dx, dy) / (0.4 * size);
  const cos = (dx / Math.hypot(dx, dy)) * scale;
  const sin = (dy / Math.hypot(dx, dy)) * scale;
  const patch = new Float32Array(size * size);
  for (let v = 0; v < size; v++) {
    for (let u = 0; u < size; u++) {
      const pu = u + 0.5 - 0.3 * size;
      const pv = v + 0.5 - 0.35 * size;
      const x = Math.min(image.width - 1, Math.max(0, Math.round(imageLeft.x + cos * pu - sin * pv - 0.5)));
      const y = Math.min(image.height - 1, Math.max(0, Math.round(imageLeft.y + sin * pu + cos * pv - 0.5)));
      const p = (y * image.width + x) * 3;
      patch[v * size + u] = 0.299 * image.data[p]! + 0.587 * image.data[p + 1]! + 0.114 * image.data[p + 2]!;
    }
  }
  return patch;
}

/** Normalised cross-correlation of two patches: 1 for the same picture up to brightness and contrast. */
export function patchSimilarity(a: Float32Array, b: Float32Array): number {
  return correlation(Array.from(a), Array.from(b));
}
