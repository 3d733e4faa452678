import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { resBlock } from '../src/fomm/hourglass.js';
import { NativeBottleneck, nativeKernels } from '../src/fomm/native-bottleneck.js';
import { OnnxGraph } from '../src/fomm/onnx-graph.js';
import { prng } from '../src/fomm/random-weights.js';
import { winogradMatrices } from '../src/fomm/winograd.js';
import { StateDictWeights, Weights, type StateDict } from '../src/fomm/weights.js';

// CI builds the kernels (npm ci runs the install script) and sets REENACT_REQUIRE_NATIVE, so a
// build that silently failed there fails this test instead of skipping it.
const { module, reason } = nativeKernels();
const skip = module ? false : process.env.REENACT_REQUIRE_NATIVE ? false : `native kernels unavailable: ${reason}`;

/** Random ResBlock2d weights (`bottleneck.rN.*`) of `channels`, as in a trained state dict. */
function bottleneckWeights(blocks: number, channels: number, seed: number): Weights {
  const random = prng(seed);
  const dict: StateDict = new Map();
  const put = (key: string, shape: number[], lo: number, hi: number) => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = lo + (hi - lo) * random();
    dict.set(key, { dtype: 'float32', shape, data });
  };
  const bound = Math.sqrt(6 / (channels * 9));
  for (let b = 0; b < blocks; b++) {
    for (const norm of ['norm1', 'norm2']) {
      put(`bottleneck.r${b}.${norm}.weight`, [channels], 0.8, 1.2);
      put(`bottleneck.r${b}.${norm}.bias`, [channels], -0.1, 0.1);
      put(`bottleneck.r${b}.${norm}.running_mean`, [channels], -0.1, 0.1);
      put(`bottleneck.r${b}.${norm}.running_var`, [channels], 0.5, 1.5);
    }
    for (const conv of ['conv1', 'conv2']) {
      put(`bottleneck.r${b}.${conv}.weight`, [channels, channels, 3, 3], -bound, bound);
      put(`bottleneck.r${b}.${conv}.bias`, [channels], -0.05, 0.05);
    }
  }
  return new Weights(new StateDictWeights(dict, 'generator'));
}

/** The same blocks as ONNX Runtime's direct convs (no Winograd): the reference. */
async function reference(w: Weights, blocks: number, channels: number, height: number, width: number, input: Float32Array): Promise<Float32Array> {
  const g = new OnnxGraph('bottleneck', { winograd: 'never' });
  let x = g.input('x', [1, channels, height, width]);
  for (let i = 0; i < blocks; i++) x = resBlock(g, x, w.at(`bottleneck.r${i}`), channels, { height, width });
  g.output('y', x, [1, channels, height, width]);
  const session = await ort.InferenceSession.create(g.toBytes(), { intraOpNumThreads: 1 });
  try {
    return (await session.run({ x: new ort.Tensor('float32', input, [1, channels, height, width]) })).y!.data as Float32Array;
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

describe('native bottleneck kernels', { skip }, () => {
  // F(8×8) from 48×48 up, F(4×4) below; sizes that are not whole tiles exercise the edges.
  const shapes = [
    { name: 'vox-adv-256 size (256 channels, 64x64, F(8x8), 6 blocks)', channels: 256, height: 64, width: 64, blocks: 6, threads: 2 },
    { name: 'partial F(8x8) tiles (32 channels, 50x60)', channels: 32, height: 50, width: 60, blocks: 2, threads: 2 },
    { name: 'partial F(4x4) tiles (48 channels, 18x13)', channels: 48, height: 18, width: 13, blocks: 3, threads: 3 },
    { name: 'golden-tiny size (32 channels, 16x16, F(4x4))', channels: 32, height: 16, width: 16, blocks: 6, threads: 1 },
  ];
  for (const { name, channels, height, width, blocks, threads } of shapes) {
    test(`${name}: matches ONNX Runtime's direct convs`, async () => {
      const w = bottleneckWeights(blocks, channels, channels + height);
      const input = randomMap(channels * height * width, 11);
      const expected = await reference(w, blocks, channels, height, width, input);
      const actual = NativeBottleneck.build(w, blocks, channels, { height, width }, threads).run(input);
      const error = maxDiff(actual, expected) / maxAbs(expected);
      // Winograd's float32 rounding: measured ~2e-5 (F(4×4)) to ~1e-4 (F(8×8)) of the largest value.
      assert.ok(error < 3e-4, `max error ${error} of the largest value`);
      assert.ok(maxDiff(actual, input) > 0.1, 'the blocks changed the map');
    });
  }

  test('the result does not depend on the thread count (each value is computed by one thread, in one order)', () => {
    const [channels, height, width] = [64, 56, 40];
    const w = bottleneckWeights(2, channels, 5);
    const input = randomMap(channels * height * width, 3);
    const one = NativeBottleneck.build(w, 2, channels, { height, width }, 1).run(input);
    for (const threads of [2, 5]) {
      assert.deepEqual(NativeBottleneck.build(w, 2, channels, { height, width }, threads).run(input), one);
    }
  });

  test('bad arguments are refused by the module, not read out of bounds', () => {
    const { BT, AT } = winogradMatrices(8, 8);
    const shape = { channels: 16, height: 8, width: 8, m: 4, threads: 1, BT: Float32Array.from(BT.flat()), AT: Float32Array.from(AT.flat()) };
    const map = new Float32Array(16 * 64);
    assert.throws(() => module!.bottleneck(map, new Float32Array(10), shape, []), /output has 10 values, expected 1024/);
    assert.throws(() => module!.bottleneck(map, map, { ...shape, channels: 12 }, []), /multiple of 16/);
    assert.throws(() => module!.bottleneck(map, map, { ...shape, BT: new Float32Array(36).fill(1) }, []), /Cook-Toom/);
    assert.throws(() => module!.bottleneck(map, map, shape, [{ scale: new Float32Array(16), shift: new Float32Array(16), u1: new Float32Array(5), bias1: new Float32Array(16), u2: new Float32Array(5), bias2: new Float32Array(16) }]), /u1 has 5 values/);
  });
});
