import { availableParallelism } from 'node:os';
import type { RgbImage } from '../../types.js';
import { loadConfig, type FommConfig } from '../config.js';
import { RELATIVE_ADAPT, normalizeKeypoints } from '../keypoints.js';
import { FommModel } from '../model.js';
import type { WinogradPolicy } from '../onnx/builder.js';
import type { FommWeights } from '../checkpoint/tensors.js';
import { randomWeights } from './random-weights.js';

export interface FommBenchOptions {
  config: FommConfig | string;
  /** A checkpoint path or loaded weights; without one, seeded random weights of the config's shapes (timing does not depend on the values). */
  checkpoint?: FommWeights | string;
  /** Driving frames to time (after one warm-up frame). */
  frames?: number;
  threads?: number;
  cacheDir?: string;
  winograd?: WinogradPolicy;
  spinning?: boolean;
  /** Native decoder kernels where available (default true); see FommModelOptions.nativeKernels. */
  nativeKernels?: boolean;
}

export interface FommBenchResult {
  /** Median ms per driving frame: keypoints of the frame + per-frame generator. */
  medianMsPerFrame: number;
  medianKeypointsMs: number;
  medianGeneratorMs: number;
  minMsPerFrame: number;
  maxMsPerFrame: number;
  /** Median CPU time (all threads) per frame: less sensitive than wall time to other processes on the machine. */
  medianCpuMsPerFrame: number;
  /** Once per video, not in the per-frame figures. */
  sourceEncodingMs: number;
  loadMs: number;
  frames: number;
  threads: number;
  weights: 'checkpoint' | 'random';
  winograd: WinogradPolicy;
  spinning: boolean;
  /** Whether the decoder (bottleneck and up blocks) ran on the native kernels. */
  nativeKernels: boolean;
}

function median(values: number[]): number {
  const sorted = values.slice().sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** A smooth synthetic frame that moves with `t`, so keypoints and motion differ per frame. */
function syntheticFrame(width: number, height: number, t: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      const dx = x - width / 2 - 10 * Math.sin(t);
      const dy = y - height / 2 - 10 * Math.cos(t);
      const face = Math.exp(-(dx * dx + dy * dy) / (2 * 60 * 60));
      data[i] = Math.round(255 * face);
      data[i + 1] = Math.round(128 + 100 * Math.sin((x + 5 * t) / 17));
      data[i + 2] = Math.round(128 + 100 * Math.cos((y - 3 * t) / 23));
    }
  }
  return { width, height, data };
}

/** Times the per-frame work of FOMM (keypoints of the driving frame + generator), median over frames. */
export async function benchmarkFomm(options: FommBenchOptions): Promise<FommBenchResult> {
  const threads = options.threads ?? availableParallelism();
  const frames = options.frames ?? 10;
  const loadStart = performance.now();
  let checkpoint = options.checkpoint;
  if (!checkpoint) {
    const params = typeof options.config === 'string' ? await loadConfig(options.config) : options.config;
    checkpoint = randomWeights(params, { height: 256, width: 256 });
  }
  const winograd = options.winograd ?? 'auto';
  const model = await FommModel.load({
    config: options.config,
    checkpoint,
    threads,
    cacheDir: options.cacheDir,
    winograd,
    spinning: options.spinning,
    nativeKernels: options.nativeKernels,
  });
  const loadMs = performance.now() - loadStart;
  try {
    const { width, height } = model.frameSize;
    const encodeStart = performance.now();
    const source = await model.encodeSource(syntheticFrame(width, height, 0));
    const sourceEncodingMs = performance.now() - encodeStart;
    const initial = await model.detectKeypoints(syntheticFrame(width, height, 0.5));
    const totals: number[] = [];
    const keypointTimes: number[] = [];
    const generatorTimes: number[] = [];
    const cpuTimes: number[] = [];
    for (let i = 0; i <= frames; i++) {
      const frame = syntheticFrame(width, height, 1 + i);
      const cpuStart = process.cpuUsage();
      const start = performance.now();
      const kp = await model.detectKeypoints(frame);
      const middle = performance.now();
      await model.generate(source, normalizeKeypoints(source.keypoints, kp, initial, RELATIVE_ADAPT));
      const end = performance.now();
      const cpu = process.cpuUsage(cpuStart);
      if (i === 0) continue; // warm-up
      keypointTimes.push(middle - start);
      generatorTimes.push(end - middle);
      totals.push(end - start);
      cpuTimes.push((cpu.user + cpu.system) / 1000);
    }
    const round = (ms: number) => Math.round(ms * 10) / 10;
    return {
      medianMsPerFrame: round(median(totals)),
      medianKeypointsMs: round(median(keypointTimes)),
      medianGeneratorMs: round(median(generatorTimes)),
      minMsPerFrame: round(Math.min(...totals)),
      medianCpuMsPerFrame: round(median(cpuTimes)),
      maxMsPerFrame: round(Math.max(...totals)),
      sourceEncodingMs: round(sourceEncodingMs),
      loadMs: round(loadMs),
      frames,
      threads,
      weights: options.checkpoint ? 'checkpoint' : 'random',
      winograd,
      spinning: options.spinning ?? false,
      nativeKernels: model.usesNativeKernels,
    };
  } finally {
    await model.dispose();
  }
}
