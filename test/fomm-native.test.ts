import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { resBlock, upBlock, upBlockPhases } from '../src/fomm/graph/blocks.js';
import { NativeDecoder, nativeKernels, type DecoderLayout } from '../src/fomm/native/decoder.js';
import { OnnxGraph } from '../src/fomm/onnx/builder.js';
import { prng } from '../src/fomm/tools/random-weights.js';
import { winogradMatrices } from '../src/fomm/onnx/winograd.js';
import { StateDictWeights, Weights, type StateDict } from '../src/fomm/checkpoint/tensors.js';

// CI builds the kernels (npm ci runs the install script) and sets REENACT_REQUIRE_NATIVE, so a
// build that silently failed there fails this test instead of skipping it.
const { module, reason } = nativeKernels();
const skip = module ? false : process.env.REENACT_REQUIRE_NATIVE ? false : `native kernels unavailable: ${reason}`;

/** Random ResBlock2d (`bottleneck.rN.*`) and UpBlock2d (`up_blocks.N.*`) weights, as in a trained state dict. */
function decoderWeights(layout: DecoderLayout, seed: number): Weights {
  const { bottleneckBlocks: blocks, channels } = layout;
  const random = prng(seed);
  const dict: StateDict = new Map();
  const put = (key: string, shape: number[], lo: number, hi: number) => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = lo + (hi - lo) * random();
    dict.set(key, { dtype: 'float32', shape, data });
  };
  const norm = (prefix: string, width: number) => {
    put(`${prefix}.weight`, [width], 0.8, 1.2);
    put(`${prefix}.bias`, [width], -0.1, 0.1);
    put(`${prefix}.running_mean`, [width], -0.1, 0.1);
    put(`${prefix}.running_var`, [width], 0.5, 1.5);
  };
  const conv = (prefix: string, inChannels: number, outChannels: number) => {
    const bound = Math.sqrt(6 / (inChannels * 9));
    put(`${prefix}.weight`, [outChannels, inChannels, 3, 3], -bound, bound);
    put(`${prefix}.bias`, [outChannels], -0.05, 0.05);
  };
  for (let b = 0; b < blocks; b++) {
    norm(`bottleneck.r${b}.norm1`, channels);
    norm(`bottleneck.r${b}.norm2`, channels);
    conv(`bottleneck.r${b}.conv1`, channels, channels);
    conv(`bottleneck.r${b}.conv2`, channels, channels);
  }
  layout.upBlocks.forEach(([inChannels, outChannels], i) => {
    conv(`up_blocks.${i}.conv`, inChannels, outChannels);
    norm(`up_blocks.${i}.norm`, outChannels);
  });
  return new Weights(new StateDictWeights(dict, 'generator'));
}

/** The same blocks in ONNX Runtime with direct convs (no Winograd), as the generator graph has them: the reference. */
async function reference(w: Weights, layout: DecoderLayout, input: Float32Array): Promise<Float32Array> {
  const {
    channels,
    size: { height, width },
  } = layout;
  const g = new OnnxGraph('decoder', { winograd: 'never' });
  let x = g.input('x', [1, channels, height, width]);
  for (let i = 0; i < layout.bottleneckBlocks; i++)
    x = resBlock(g, x, w.at(`bottleneck.r${i}`), channels, { height, width });
  let size = { height, width };
  layout.upBlocks.forEach(([inChannels, outChannels], i) => {
    if (i > 0) size = { height: size.height * 2, width: size.width * 2 };
    const last = i === layout.upBlocks.length - 1;
    x = (last ? upBlockPhases : upBlock)(g, x, w.at(`up_blocks.${i}`), inChannels, outChannels, size);
  });
  const last = layout.upBlocks.at(-1);
  g.output('y', x, last ? [1, 4 * last[1], size.height, size.width] : [1, channels, height, width]);
  const session = await ort.InferenceSession.create(g.toBytes(), { intraOpNumThreads: 1 });
  try {
    return (await session.run({ x: new ort.Tensor('float32', input, [1, channels, height, width]) })).y!
      .data as Float32Array;
  } finally {
    await session.release();
  }
}

function randomMap(length: number, seed: number): Float32Array {
  const random = prng(seed);
  return Float32Array.from({ length }, () => 2 * random() - 1);
}

function maxAbs(values: Float32Array): number {
  return values.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

describe('native decoder kernels', { skip }, () => {
  // F(8×8) from 48×48 up, F(4×4) below; sizes that are not whole tiles exercise the edges.
  const layouts: [string, DecoderLayout, number][] = [
    [
      'vox-adv-256 size (bottleneck 256 x 64x64, F(8x8), up blocks 256->128->64)',
      {
        channels: 256,
        size: { height: 64, width: 64 },
        bottleneckBlocks: 6,
        upBlocks: [
          [256, 128],
          [128, 64],
        ],
      },
      2,
    ],
    [
      'partial F(8x8) tiles (32 channels, 50x60, one up block)',
      { channels: 32, size: { height: 50, width: 60 }, bottleneckBlocks: 2, upBlocks: [[32, 16]] },
      2,
    ],
    [
      'partial F(4x4) tiles (48 channels, 18x13), no up blocks',
      { channels: 48, size: { height: 18, width: 13 }, bottleneckBlocks: 3, upBlocks: [] },
      3,
    ],
    [
      'golden-tiny size (32 channels, 16x16, F(4x4); up blocks 32->16->8)',
      {
        channels: 32,
        size: { height: 16, width: 16 },
        bottleneckBlocks: 6,
        upBlocks: [
          [32, 16],
          [16, 8],
        ],
      },
      1,
    ],
    [
      'up blocks only (no bottleneck blocks)',
      {
        channels: 16,
        size: { height: 24, width: 20 },
        bottleneckBlocks: 0,
        upBlocks: [
          [16, 8],
          [8, 8],
          [8, 8],
        ],
      },
      2,
    ],
  ];
  for (const [name, layout, threads] of layouts) {
    test(`${name}: matches ONNX Runtime's direct convs`, async () => {
      const w = decoderWeights(layout, layout.channels + layout.size.height);
      const input = randomMap(layout.channels * layout.size.height * layout.size.width, 11);
      const expected = await reference(w, layout, input);
      const actual = NativeDecoder.build(w, layout, threads).run(input);
      const error = maxDiff(actual, expected) / maxAbs(expected);
      // Winograd's float32 rounding: measured ~3e-6 (F(4×4)) to ~1e-4 (F(8×8)) of the largest value.
      assert.ok(error < 3e-4, `max error ${error} of the largest value`);
      assert.ok(maxAbs(actual) > 0.1, 'not all zero');
    });
  }

  test('the result does not depend on the thread count (each value is computed by one thread, in one order)', () => {
    const layout: DecoderLayout = {
      channels: 64,
      size: { height: 56, width: 40 },
      bottleneckBlocks: 2,
      upBlocks: [[64, 32]],
    };
    const w = decoderWeights(layout, 5);
    const input = randomMap(64 * 56 * 40, 3);
    const one = NativeDecoder.build(w, layout, 1).run(input).slice();
    for (const threads of [2, 5]) assert.deepEqual(NativeDecoder.build(w, layout, threads).run(input), one);
    const decoder = NativeDecoder.build(w, layout, 2);
    decoder.run(randomMap(input.length, 9));
    assert.deepEqual(decoder.run(input), one, 'a second run on the same workspace gives the same result');
  });

  test('decode() runs off the JavaScript thread, one at a time, bit-identical to run()', async () => {
    const layout: DecoderLayout = {
      channels: 128,
      size: { height: 64, width: 64 },
      bottleneckBlocks: 4,
      upBlocks: [[128, 64]],
    };
    const w = decoderWeights(layout, 7);
    const inputs = [randomMap(128 * 64 * 64, 1), randomMap(128 * 64 * 64, 2)];
    const expected = inputs.map((input) => NativeDecoder.build(w, layout, 1).run(input).slice());
    const decoder = NativeDecoder.build(w, layout, 2);
    // The event loop turns while a decode runs: a timer set after it started fires before it ends.
    let timerFired = false;
    const decoding = decoder.decode(inputs[0]!, (output) => ({ output: output.slice(), timerFiredFirst: timerFired }));
    setTimeout(() => (timerFired = true), 0);
    assert.equal((await decoding).timerFiredFirst, true);
    assert.deepEqual((await decoding).output, expected[0]);
    // Two at once share the output buffer and workspace: the second waits until the first's use is done.
    const both = await Promise.all(
      inputs.map((input) =>
        decoder.decode(input, async (output) => {
          const copy = output.slice();
          await new Promise((resolve) => setTimeout(resolve, 20));
          assert.deepEqual(output, copy, 'output unchanged while in use');
          return copy;
        }),
      ),
    );
    assert.deepEqual(both, expected);
  });

  test('a workspace in use by a decode on the thread pool is refused to another decode', async () => {
    const layout: DecoderLayout = { channels: 64, size: { height: 32, width: 32 }, bottleneckBlocks: 2, upBlocks: [] };
    const w = decoderWeights(layout, 3);
    const { module: native } = nativeKernels();
    const decoder = NativeDecoder.build(w, layout, 1) as unknown as Record<string, unknown>;
    const args = [
      randomMap(64 * 32 * 32, 4),
      decoder.output,
      decoder.workspace,
      decoder.shape,
      decoder.bottleneck,
      decoder.upBlocks,
    ] as Parameters<NonNullable<typeof native>['decode']>;
    const running = native!.decodeAsync(...args);
    assert.throws(() => native!.decode(...args), /workspace is in use/);
    await running;
    native!.decode(...args);
  });

  test('bad arguments are refused by the module, not read out of bounds', () => {
    const { m, BT, AT } = winogradMatrices(8, 8);
    const matrices = { m, BT: Float32Array.from(BT.flat()), AT: Float32Array.from(AT.flat()) };
    const shape = { channels: 16, height: 8, width: 8, threads: 1 };
    const map = new Float32Array(16 * 64);
    const workspace = new Float32Array(module!.workspaceLength(shape, { ...matrices, blocks: [] }, []));
    const decode = (
      input: Float32Array,
      output: Float32Array,
      ...rest: Parameters<NonNullable<typeof module>['workspaceLength']>
    ) => module!.decode(input, output, workspace, ...rest);
    assert.throws(
      () => decode(map, new Float32Array(10), shape, { ...matrices, blocks: [] }, []),
      /output has 10 values, expected 1024/,
    );
    assert.throws(
      () => decode(map, map, { ...shape, channels: 12 }, { ...matrices, blocks: [] }, []),
      /multiple of 16/,
    );
    assert.throws(
      () => decode(map, map, shape, { ...matrices, BT: new Float32Array(36).fill(1), blocks: [] }, []),
      /Cook-Toom/,
    );
    const block = {
      scale: new Float32Array(16),
      shift: new Float32Array(16),
      u1: new Float32Array(5),
      bias1: new Float32Array(16),
      u2: new Float32Array(5),
      bias2: new Float32Array(16),
    };
    assert.throws(() => decode(map, map, shape, { ...matrices, blocks: [block] }, []), /u1 has 5 values/);
    const up = { ...matrices, in: 8, out: 32, u: new Float32Array(36 * 8 * 32), bias: new Float32Array(32) };
    assert.throws(
      () => decode(map, map, shape, { ...matrices, blocks: [] }, [up]),
      /up block 0 takes 8 channels, but gets 16/,
    );
    assert.throws(
      () => decode(map, map, shape, { ...matrices, blocks: [] }, [{ ...up, in: 16, out: 24 }]),
      /multiple of 32/,
    );
    assert.throws(
      () => module!.decode(map, map, new Float32Array(3), shape, { ...matrices, blocks: [] }, []),
      /workspace has 3 values/,
    );
  });
});
