import { createHash } from 'node:crypto';
import { generatorSpec, keypointDetectorSpec, type FommModelParams, type FrameSize } from '../architecture.js';
import { buildFrameGenerator, buildSourceEncoder } from '../graph/generator.js';
import { buildKeypointDetector } from '../graph/keypoint-detector.js';
import { ShapeRecorder, Weights, type FommWeights, type StateDict } from '../checkpoint/tensors.js';

/** Every state-dict key and shape the architecture of `params` reads. */
export function expectedShapes(
  params: FommModelParams,
  size: FrameSize,
): { generator: Map<string, number[]>; kpDetector: Map<string, number[]> } {
  const kp = new ShapeRecorder();
  buildKeypointDetector(keypointDetectorSpec(params, size), new Weights(kp));
  const generator = new ShapeRecorder();
  const spec = generatorSpec(params, size);
  buildSourceEncoder(spec, new Weights(generator));
  buildFrameGenerator(spec, new Weights(generator));
  return { generator: generator.shapes, kpDetector: kp.shapes };
}

/** mulberry32: a small seeded generator, the same sequence on every machine (random models, fuzzing). */
export function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The reference's anti-alias Gaussian kernel, one per channel ([C, 1, k, k]). */
function gaussianKernel(shape: number[], scale: number): Float32Array {
  const [channels, , k] = shape as [number, number, number];
  const sigma = (1 / scale - 1) / 2;
  const g = Array.from({ length: k }, (_, t) => Math.exp(-((t - (k - 1) / 2) ** 2) / (2 * sigma * sigma)));
  const total = g.reduce((a, b) => a + b, 0) ** 2;
  const out = new Float32Array(channels * k * k);
  for (let c = 0; c < channels; c++)
    for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) out[(c * k + i) * k + j] = (g[i]! * g[j]!) / total;
  return out;
}

/**
 * Seeded random weights of the right shapes for `params` — for tests of config variants and
 * for timing the full-size model without its checkpoint. Batch-norm statistics are plausible
 * (positive variances), convs are He-scaled, jacobian convs start near the identity as in training.
 */
export function randomWeights(params: FommModelParams, size: FrameSize, seed = 1): FommWeights {
  const random = prng(seed);
  const uniform = (lo: number, hi: number) => lo + (hi - lo) * random();
  const shapes = expectedShapes(params, size);
  const fill = (key: string, shape: number[], scaleFactor: number) => {
    const count = shape.reduce((a, b) => a * b, 1);
    if (key.endsWith('down.weight')) return gaussianKernel(shape, scaleFactor);
    const data = new Float32Array(count);
    const leaf = key.slice(key.lastIndexOf('.') + 1);
    const isNorm = /norm\d?\.[a-z_]+$/.test(key);
    if (isNorm) {
      const [lo, hi] = leaf === 'running_var' ? [0.5, 1.5] : leaf === 'weight' ? [0.8, 1.2] : [-0.1, 0.1];
      for (let i = 0; i < count; i++) data[i] = uniform(lo, hi);
    } else if (leaf === 'bias') {
      const identity = key.startsWith('jacobian');
      for (let i = 0; i < count; i++) data[i] = identity ? [1, 0, 0, 1][i % 4]! : uniform(-0.05, 0.05);
    } else {
      const fanIn = count / shape[0]!;
      const bound = Math.sqrt(6 / fanIn) * (key.startsWith('jacobian') ? 0.05 : 1);
      for (let i = 0; i < count; i++) data[i] = uniform(-bound, bound);
    }
    return data;
  };
  const digest = createHash('sha256').update(
    `random-weights:${seed}:${JSON.stringify(params)}:${size.height}x${size.width}`,
  );
  const dict = (recorded: Map<string, number[]>, scaleOf: (key: string) => number): StateDict =>
    new Map(
      [...recorded].map(([key, shape]) => [
        key,
        { dtype: 'float32' as const, shape, data: fill(key, shape, scaleOf(key)) },
      ]),
    );
  return {
    kpDetector: dict(shapes.kpDetector, () => params.kpDetectorParams.scaleFactor),
    generator: dict(shapes.generator, () => params.generatorParams.denseMotionParams.scaleFactor),
    sha256: digest.digest('hex'),
  };
}
