import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ReenactError, throwIfAborted } from '../../errors.js';
import { readImage } from '../../media/image.js';
import {
  ABSOLUTE,
  RELATIVE,
  RELATIVE_ADAPT,
  flattenKeypoints,
  normalizeKeypoints,
  type Keypoints,
  type NormalizationOptions,
} from '../keypoints.js';
import type { FommModel } from '../model.js';
import { readNpy, writeNpy, type NpyArray } from './npy.js';

/** Which golden file each output came from, and its tolerance (max |difference|). */
export const CONFORMANCE_TOLERANCES: Record<string, number> = {
  'kp_source.npy': 1e-4,
  'kp_driving.npy': 1e-4,
  'kp_norm_relative_adapt.npy': 1e-4,
  'kp_norm_relative.npy': 1e-4,
  'prediction_relative_adapt.npy': 1e-3,
  'prediction_relative.npy': 1e-3,
  'prediction_absolute.npy': 1e-3,
  'deformed_relative_adapt.npy': 1e-3,
  'mask_relative_adapt.npy': 1e-3,
  'occlusion_relative_adapt.npy': 1e-3,
};

/** Stacks equally shaped rows into one array with a leading frame axis. */
function stack(rows: Float32Array[], shape: number[]): NpyArray {
  const size = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(rows.length * size);
  rows.forEach((row, i) => data.set(row, i * size));
  return { shape: [rows.length, ...shape], data };
}

/**
 * Runs the model on `framesDir` (source.png and driving_*.png, sorted; the first driving frame is
 * the initial one) and writes the conformance files the golden sets hold (see
 * golden-tiny/README.md) into `outDir`. Returns the names written. Aborting `signal` stops it
 * with CANCELLED between frames; each file is written atomically, so none is left half-written.
 */
export async function writeConformance(
  model: FommModel,
  framesDir: string,
  outDir: string,
  options: { signal?: AbortSignal } = {},
): Promise<string[]> {
  const { signal } = options;
  const names = (await readdir(framesDir)).filter((n) => /^driving_.*\.png$/.test(n)).sort();
  if (names.length === 0) {
    throw new ReenactError(
      'NO_FRAMES',
      `${framesDir} has no driving_*.png frames.`,
      'Point `framesDir` at a folder with source.png and driving_001.png, driving_002.png, ...',
    );
  }
  const source = await model.encodeSource(await readImage(join(framesDir, 'source.png')));
  const driving: Keypoints[] = [];
  for (const name of names) {
    throwIfAborted(signal);
    driving.push(await model.detectKeypoints(await readImage(join(framesDir, name))));
  }
  const initial = driving[0]!;
  const kpLength = flattenKeypoints(source.keypoints).length;
  const { height, width } = model.frameSize;
  const written: string[] = [];
  const write = async (name: string, array: NpyArray) => {
    await writeNpy(join(outDir, name), array, { signal });
    written.push(name);
  };
  await write('kp_source.npy', { shape: [kpLength], data: flattenKeypoints(source.keypoints) });
  await write('kp_driving.npy', stack(driving.map(flattenKeypoints), [kpLength]));
  const modes: [string, NormalizationOptions][] = [
    ['relative_adapt', RELATIVE_ADAPT],
    ['relative', RELATIVE],
    ['absolute', ABSOLUTE],
  ];
  for (const [mode, options] of modes) {
    const normalized = driving.map((kp) => normalizeKeypoints(source.keypoints, kp, initial, options));
    if (mode !== 'absolute') await write(`kp_norm_${mode}.npy`, stack(normalized.map(flattenKeypoints), [kpLength]));
    const debug = mode === 'relative_adapt';
    const predictions: Float32Array[] = [];
    const deformed: Float32Array[] = [];
    const masks: Float32Array[] = [];
    const occlusions: Float32Array[] = [];
    let maskShape: number[] = [];
    for (const kp of normalized) {
      throwIfAborted(signal);
      const frame = await model.generate(source, kp, { debug });
      predictions.push(frame.image.data);
      if (frame.debug) {
        deformed.push(frame.debug.deformed.data);
        masks.push(frame.debug.mask.data);
        maskShape = frame.debug.mask.shape;
        if (frame.debug.occlusion) occlusions.push(frame.debug.occlusion.data);
      }
    }
    await write(`prediction_${mode}.npy`, stack(predictions, [height, width, 3]));
    if (debug) {
      await write('deformed_relative_adapt.npy', stack(deformed, [height, width, 3]));
      await write('mask_relative_adapt.npy', stack(masks, maskShape));
      if (occlusions.length) await write('occlusion_relative_adapt.npy', stack(occlusions, maskShape.slice(1)));
    }
  }
  return written;
}

export interface ConformanceResult {
  file: string;
  maxAbsDiff: number;
  tolerance: number;
  pass: boolean;
}

/** Compares every conformance file in `outDir` with the same-named file in `goldenDir`. */
export async function compareConformance(
  outDir: string,
  goldenDir: string,
  files: string[],
): Promise<ConformanceResult[]> {
  const results: ConformanceResult[] = [];
  for (const file of files) {
    const [ours, golden] = [await readNpy(join(outDir, file)), await readNpy(join(goldenDir, file))];
    const tolerance = CONFORMANCE_TOLERANCES[file] ?? 1e-3;
    let maxAbsDiff = ours.shape.join() === golden.shape.join() ? 0 : Infinity;
    for (let i = 0; i < ours.data.length && maxAbsDiff !== Infinity; i++) {
      const diff = Math.abs(ours.data[i]! - golden.data[i]!);
      if (!(diff <= maxAbsDiff)) maxAbsDiff = Number.isNaN(diff) ? Infinity : diff;
    }
    results.push({ file, maxAbsDiff, tolerance, pass: maxAbsDiff <= tolerance });
  }
  return results;
}
