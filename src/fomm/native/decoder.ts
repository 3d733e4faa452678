import { createRequire } from 'node:module';
import { resBlockKernels, upBlockPhaseKernels } from '../graph/blocks.js';
import type { FloatTensor } from '../onnx/builder.js';
import type { Weights } from '../checkpoint/tensors.js';
import { transformedKernels, winogradMatrices, type MapSize } from '../onnx/winograd.js';

/**
 * The generator's decoder (residual bottleneck and up blocks) run by the native kernels in
 * native/kernels.cc (Winograd with fused transforms, AVX2/FMA), built by `npm install` where a
 * C++ compiler is available. Where it is not (or the CPU lacks AVX2/FMA), it stays in the ONNX graph.
 */

interface NativeMatrices {
  m: number;
  BT: Float32Array;
  AT: Float32Array;
}

interface NativeResBlock {
  scale: Float32Array;
  shift: Float32Array;
  u1: Float32Array;
  bias1: Float32Array;
  u2: Float32Array;
  bias2: Float32Array;
}

type NativeBottleneck = NativeMatrices & { blocks: NativeResBlock[] };

interface NativeUpBlock extends NativeMatrices {
  in: number;
  out: number;
  u: Float32Array;
  bias: Float32Array;
}

interface NativeShape {
  channels: number;
  height: number;
  width: number;
  threads: number;
}

/** native/binding.cc's kInterfaceVersion: a module built from older sources is not used. */
const INTERFACE_VERSION = 2;

/** What decode and decodeAsync take. */
type DecodeArguments = [
  input: Float32Array,
  output: Float32Array,
  workspace: Float32Array,
  shape: NativeShape,
  bottleneck: NativeBottleneck,
  upBlocks: NativeUpBlock[],
];

interface NativeModule {
  interfaceVersion: number;
  /** On the calling thread. */
  decode(...args: DecodeArguments): void;
  /** On the libuv thread pool; settles when output is written. Bad arguments throw at once. */
  decodeAsync(...args: DecodeArguments): Promise<void>;
  workspaceLength(shape: NativeShape, bottleneck: NativeBottleneck, upBlocks: NativeUpBlock[]): number;
  supported(): boolean;
}

let loaded: { module?: NativeModule; reason?: string } | undefined;

/** The native module, or why it cannot be used here. */
export function nativeKernels(): { module?: NativeModule; reason?: string } {
  if (!loaded) {
    try {
      const module = createRequire(import.meta.url)('../../../build/Release/fomm_decoder.node') as NativeModule;
      if (module.interfaceVersion !== INTERFACE_VERSION) {
        loaded = {
          reason: `the native module was built from other sources (interface ${module.interfaceVersion}, expected ${INTERFACE_VERSION}); run npm install to rebuild it`,
        };
      } else {
        loaded = module.supported() ? { module } : { reason: 'this CPU has no AVX2/FMA' };
      }
    } catch (error) {
      loaded = {
        reason: `the native module is not built (${(error as Error).message.split('\n')[0]}); run npm install with a C++ compiler (g++, make, python3)`,
      };
    }
  }
  return loaded;
}

/** The decoder's layer widths, bottleneck first, then each up block's output channels. */
export interface DecoderLayout {
  /** Bottleneck channels and map size. */
  channels: number;
  size: MapSize;
  bottleneckBlocks: number;
  /** [in, out] channels of each up block (`up_blocks.N`). */
  upBlocks: [number, number][];
}

/** Whether the native kernels are here and fit these widths (16 bottleneck channels, 8 per up block output, a register block). */
export function nativeDecoderFits(layout: DecoderLayout): boolean {
  return (
    layout.channels % 16 === 0 &&
    layout.upBlocks.every(([, out]) => out % 8 === 0) &&
    nativeKernels().module !== undefined
  );
}

/**
 * The bottleneck (`bottleneck.rN`) and up blocks (`up_blocks.N`), ready to run natively on
 * [C, H, W] maps: decode() off the JavaScript thread (a whole frame takes a few hundred ms, which
 * a server's event loop must not wait through), run() on it.
 */
export class NativeDecoder {
  /** Settles when the decode in progress and its caller's use of the output are done: one at a time. */
  private turn: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly module: NativeModule,
    private readonly shape: NativeShape,
    private readonly bottleneck: NativeBottleneck,
    private readonly upBlocks: NativeUpBlock[],
    /** Reused by every run: allocating and first touching ~60 MB a frame cost more than some layers. */
    private readonly output: Float32Array,
    private readonly workspace: Float32Array,
  ) {}

  static build(w: Weights, layout: DecoderLayout, threads: number): NativeDecoder {
    const { module, reason } = nativeKernels();
    if (!module) throw new Error(`Native decoder unavailable: ${reason}`);
    const { channels, size } = layout;
    const bottleneckMatrices = matricesFor(size);
    const blocks: NativeResBlock[] = [];
    for (let i = 0; i < layout.bottleneckBlocks; i++) {
      const { norm1, conv1, conv2 } = resBlockKernels(w.at(`bottleneck.r${i}`), channels);
      blocks.push({
        scale: norm1.scale,
        shift: norm1.shift,
        u1: packKernels(conv1.weight, bottleneckMatrices.G),
        bias1: Float32Array.from(conv1.bias.data),
        u2: packKernels(conv2.weight, bottleneckMatrices.G),
        bias2: Float32Array.from(conv2.bias.data),
      });
    }
    const upBlocks: NativeUpBlock[] = [];
    let upSize = size;
    layout.upBlocks.forEach(([inChannels, outChannels], i) => {
      if (i > 0) upSize = { height: upSize.height * 2, width: upSize.width * 2 };
      const matrices = matricesFor(upSize);
      const { weight, bias } = upBlockPhaseKernels(w.at(`up_blocks.${i}`), inChannels, outChannels);
      upBlocks.push({
        ...matrices.native,
        in: inChannels,
        out: 4 * outChannels,
        u: packKernels(weight, matrices.G),
        bias: Float32Array.from(bias.data),
      });
    });
    const last = layout.upBlocks.at(-1);
    const output = new Float32Array(
      last ? 4 * last[1] * upSize.height * upSize.width : channels * size.height * size.width,
    );
    const shape = { channels, ...size, threads: Math.min(threads, 256) };
    const bottleneck = { ...bottleneckMatrices.native, blocks };
    const workspace = new Float32Array(module.workspaceLength(shape, bottleneck, upBlocks));
    return new NativeDecoder(module, shape, bottleneck, upBlocks, output, workspace);
  }

  /**
   * The decoder's output (see generator.ts decodedShape) for a [C, H, W] input (batch 1), given
   * to `use`, on the libuv thread pool. The output buffer and the workspace are reused by the
   * next decode, so calls wait for the previous one and its `use` to finish; `input` must not
   * change until `use` is called. Bit-identical to run().
   */
  async decode<T>(input: Float32Array, use: (output: Float32Array) => Promise<T> | T): Promise<T> {
    const previous = this.turn;
    const mine = previous.then(async () => {
      await this.module.decodeAsync(input, this.output, this.workspace, this.shape, this.bottleneck, this.upBlocks);
      return use(this.output);
    });
    this.turn = mine.catch(() => {});
    return mine;
  }

  /**
   * The same decode on the calling thread, which it blocks for the whole frame: one buffer,
   * overwritten by the next run.
   */
  run(input: Float32Array): Float32Array {
    this.module.decode(input, this.output, this.workspace, this.shape, this.bottleneck, this.upBlocks);
    return this.output;
  }
}

function matricesFor(size: MapSize): { native: NativeMatrices; G: number[][] } {
  const { m, BT, G, AT } = winogradMatrices(size.height, size.width);
  return { native: { m, BT: Float32Array.from(BT.flat()), AT: Float32Array.from(AT.flat()) }, G };
}

/** U [f][o][c] of a [o, c, 3, 3] kernel, stored [f][o / 16][c][16]: the 16 output channels of a register block side by side. */
function packKernels(weight: FloatTensor, G: number[][]): Float32Array {
  const [outChannels, inChannels] = weight.dims as [number, number];
  const blocks = outChannels / 16;
  return transformedKernels(weight, G, (f, o, c) => (((f * blocks + (o >> 4)) * inChannels + c) << 4) + (o & 15));
}
