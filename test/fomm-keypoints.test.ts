import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { BestFrameSearch, normalizeLandmarks } from '../src/pipeline/best-frame.js';
import {
  ABSOLUTE,
  RELATIVE,
  RELATIVE_ADAPT,
  convexHullArea,
  flattenKeypoints,
  normalizeKeypoints,
  type Keypoints,
} from '../src/fomm/keypoints.js';
import { formatNpy, parseNpy, readNpy, writeNpy } from '../src/fomm/tools/npy.js';
import { shared, skipWithoutShared } from './shared.js';

function fromRow(row: Float32Array, k: number): Keypoints {
  return { numKp: k, value: row.slice(0, 2 * k), jacobian: row.slice(2 * k, 6 * k) };
}

describe('FOMM keypoint normalisation', () => {
  test('convex hull area: square with interior and collinear points, triangle, degenerate', () => {
    assert.equal(convexHullArea([0, 0, 1, 0, 1, 1, 0, 1, 0.5, 0.5, 0.5, 0]), 1);
    assert.equal(convexHullArea([0, 0, 4, 0, 0, 3]), 6);
    assert.equal(convexHullArea([0, 0, 1, 1, 2, 2]), 0);
  });

  test('the golden normalised keypoints from the golden raw keypoints', { skip: skipWithoutShared }, async () => {
    const dir = shared('fomm', 'golden-tiny');
    const source = fromRow((await readNpy(join(dir, 'kp_source.npy'))).data, 10);
    const driving = await readNpy(join(dir, 'kp_driving.npy'));
    const rows = (i: number) => fromRow(driving.data.subarray(i * 60, (i + 1) * 60), 10);
    for (const [file, options] of [
      ['kp_norm_relative_adapt.npy', RELATIVE_ADAPT],
      ['kp_norm_relative.npy', RELATIVE],
    ] as const) {
      const expected = await readNpy(join(dir, file));
      for (let i = 0; i < 6; i++) {
        const ours = flattenKeypoints(normalizeKeypoints(source, rows(i), rows(0), options));
        ours.forEach((v, j) =>
          assert.ok(Math.abs(v - expected.data[i * 60 + j]!) < 1e-5, `${file} frame ${i} entry ${j}`),
        );
      }
    }
  });

  test('relative mode on the initial frame gives the source; absolute mode gives the driving keypoints', () => {
    const source: Keypoints = {
      numKp: 3,
      value: Float32Array.from([0, 0, 0.5, 0, 0, 0.5]),
      jacobian: Float32Array.from([1, 0, 0, 1, 2, 0, 0, 2, 1, 0.5, 0, 1]),
    };
    const initial: Keypoints = {
      numKp: 3,
      value: Float32Array.from([0.1, 0.1, 0.3, 0.1, 0.1, 0.3]),
      jacobian: Float32Array.from([2, 0, 0, 2, 1, 1, 0, 1, 0.5, 0, 0, 0.5]),
    };
    const same = normalizeKeypoints(source, initial, initial, RELATIVE_ADAPT);
    same.value.forEach((v, i) => assert.ok(Math.abs(v - source.value[i]!) < 1e-6));
    same.jacobian!.forEach((v, i) => assert.ok(Math.abs(v - source.jacobian![i]!) < 1e-6));
    const moved: Keypoints = { ...initial, value: initial.value.map((v, i) => v + (i % 2 ? 0 : 0.1)) };
    // Source hull area 0.125, initial 0.02: the motion is scaled by sqrt(0.125 / 0.02) = 2.5.
    const scaled = normalizeKeypoints(source, moved, initial, RELATIVE_ADAPT);
    assert.ok(Math.abs(scaled.value[0]! - 0.25) < 1e-6);
    assert.ok(Math.abs(normalizeKeypoints(source, moved, initial, RELATIVE).value[0]! - 0.1) < 1e-6);
    assert.deepEqual(normalizeKeypoints(source, moved, initial, ABSOLUTE).value, moved.value);
  });
});

describe('FOMM best start frame', () => {
  const face = [0, 0, 10, 0, 12, 8, 5, 14, -2, 8, 5, 6];
  test('normalised landmarks are centred and of unit hull area', () => {
    const n = normalizeLandmarks({ points: face, stride: 2 });
    let mx = 0;
    for (let i = 0; i < n.length; i += 2) mx += n[i]!;
    assert.ok(Math.abs(mx) < 1e-12);
    assert.ok(Math.abs(convexHullArea(n) - 1) < 1e-12);
  });

  test('picks the frame that matches the source up to position and scale; skips frames without a face', () => {
    const moved = face.map((v, i) => v * 3 + (i % 2 ? 40 : -7));
    const distorted = face.map((v, i) => (i === 4 ? v + 6 : v));
    const search = new BestFrameSearch<string>({ points: face, stride: 2 });
    assert.equal(search.best, undefined);
    const frames = [distorted, undefined, moved, face.map((v) => -v)];
    frames.forEach((points, index) => {
      if (points) search.offer(index, { points, stride: 2 }, `frame ${index}`);
    });
    assert.deepEqual(search.best, { index: 2, item: 'frame 2' });
    assert.throws(
      () => search.offer(4, { points: face.slice(2), stride: 2 }, 'short'),
      /has 10 numbers; the source has 12/,
    );
  });
});

describe('npy files', () => {
  test('golden file parses; write then read round-trips', { skip: skipWithoutShared }, async () => {
    const kp = await readNpy(shared('fomm', 'golden-tiny', 'kp_driving.npy'));
    assert.deepEqual(kp.shape, [6, 60]);
    const dir = await mkdtemp(join(tmpdir(), 'reenact-npy-'));
    try {
      await writeNpy(join(dir, 'a.npy'), kp);
      const back = await readNpy(join(dir, 'a.npy'));
      assert.deepEqual(back, kp);
      const bytes = new Uint8Array(await readFile(join(dir, 'a.npy')));
      assert.equal((bytes.length - kp.data.length * 4) % 64, 0, 'header padded to 64 bytes');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('1-D shape and refusing other dtypes', () => {
    const one = parseNpy(formatNpy({ shape: [3], data: Float32Array.from([1, 2, 3]) }));
    assert.deepEqual(one.shape, [3]);
    const bytes = formatNpy({ shape: [1], data: Float32Array.from([1]) });
    const text = new TextDecoder().decode(bytes).replace('<f4', '<f8');
    assert.throws(() => parseNpy(new TextEncoder().encode(text)), /float32/);
  });
});
