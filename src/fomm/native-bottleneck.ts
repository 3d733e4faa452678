import { createRequire } from 'node:module';
import type { MapSize } from './hourglass.js';
import { foldAffine, type Weights } from './weights.js';
import { transformedKernels, winogradMatrices } from './winograd.js';

/**
 * The generator's residual bottleneck run by the native kernels in native/bottleneck.cc
 * (Winograd with fused transforms, AVX2/FMA), built by `npm install` where a C++ compiler is
 * available. Where it is not (or the CPU lacks AVX2/FMA), the bottleneck stays in the ONNX graph.
 */

interface NativeBlock {
  scale: Float32Array;
  shift: Float32Array;
  u1: Float32Array;
  bias1: Float32Array;
  u2: Float32Array;
  bias2: Float32Array;
}

interface NativeShape {
  channels: number;
  height: number;
  width: number;
  m: number;
  threads: number;
  BT: Float32Array;
  AT: Float32Array;
}

interface NativeModule {
  bottleneck(input: Float32Array, output: Float32Array, shape: NativeShape, blocks: NativeBlock[]): void;
  supported(): boolean;
}

let loaded: { module?: NativeModule; reason?: string } | undefined;

/** The native module, or why it cannot be used here. */
export function nativeKernels(): { module?: NativeModule; reason?: string } {
  if (!loaded) {
    try {
      const module = createRequire(import.meta.url)('../../build/Release/fomm_bottleneck.node') as NativeModule;
      loaded = module.supported() ? { module } : { reason: 'this CPU has no AVX2/FMA' };
    } catch (error) {
      loaded = { reason: `the native module is not built (${(error as Error).message.split('\n')[0]}); run npm install with a C++ compiler (g++, make, python3)` };
    }
  }
  return loaded;
}

/** Whether a bottleneck of this width runs natively (16 channels a register block). */
export function nativeBottleneckFits(channels: number): boolean {
  return channels % 16 === 0 && nativeKernels().module !== undefined;
}

/** The ResBlock2d stack `bottleneck.r0 …` of `count` blocks, ready to run natively on [C, H, W] maps. */
export class NativeBottleneck {
  private constructor(
    private readonly module: NativeModule,
    private readonly shape: NativeShape,
    private readonly blocks: NativeBlock[],
  ) {}

  static build(w: Weights, count: number, channels: number, size: MapSize, threads: number): NativeBottleneck {
    const { module, reason } = nativeKernels();
    if (!module) throw new Error(`Native bottleneck unavailable: ${reason}`);
    const { m, BT, G, AT } = winogradMatrices(size.height, size.width);
    const pack = (weight: Parameters<typeof transformedKernels>[0]) => packKernels(transformedKernels(weight, G), m + 2, channels);
    const blocks: NativeBlock[] = [];
    for (let i = 0; i < count; i++) {
      const block = w.at(`bottleneck.r${i}`);
      const norm1 = block.at('norm1').batchNorm(channels);
      const conv1 = block.at('conv1');
      const norm2 = block.at('norm2').batchNorm(channels);
      const folded = foldAffine(conv1.get('weight', [channels, channels, 3, 3]), conv1.get('bias', [channels]), norm2.scale, norm2.shift);
      const conv2 = block.at('conv2');
      blocks.push({
        scale: norm1.scale, shift: norm1.shift,
        u1: pack(folded.weight), bias1: Float32Array.from(folded.bias.data),
        u2: pack(conv2.get('weight', [channels, channels, 3, 3])), bias2: Float32Array.from(conv2.get('bias', [channels]).data),
      });
    }
    const shape = { channels, height: size.height, width: size.width, m, threads, BT: Float32Array.from(BT.flat()), AT: Float32Array.from(AT.flat()) };
    return new NativeBottleneck(module, shape, blocks);
  }

  /** The bottleneck's output for a [C, H, W] input (batch 1). */
  run(input: Float32Array): Float32Array {
    const output = new Float32Array(input.length);
    this.module.bottleneck(input, output, this.shape, this.blocks);
    return output;
  }
}

/** U [f][o][c] → [f][o / 16][c][16]: the 16 output channels of a register block side by side. */
function packKernels(u: Float32Array, n: number, channels: number): Float32Array {
  const packed = new Float32Array(u.length);
  const blocks = channels / 16;
  for (let f = 0; f < n * n; f++) {
    for (let o = 0; o < channels; o++) {
      const [kb, lane] = [Math.floor(o / 16), o % 16];
      for (let c = 0; c < channels; c++) packed[((f * blocks + kb) * channels + c) * 16 + lane] = u[(f * channels + o) * channels + c]!;
    }
  }
  return packed;
}
