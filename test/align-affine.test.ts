import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { random } from './shared.js';
import {
  apply,
  compose,
  fitAffine,
  fitSimilarity,
  invert,
  rotationAbout,
  scaling,
  translation,
  warpAffine,
} from '../src/align/affine.js';
import type { RgbImage } from '../src/types.js';

function gradient(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      data[i] = x * 3;
      data[i + 1] = y * 5;
      data[i + 2] = (x * 7 + y * 11) % 256;
    }
  }
  return { width, height, data };
}

describe('affine transforms', () => {
  test('compose applies right to left and invert undoes', () => {
    const t = compose(translation(10, -4), rotationAbout(33, { x: 5, y: 7 }), scaling(1.7, 0.6));
    const p = { x: 12.5, y: -3.25 };
    const q = apply(t, p);
    const manual = apply(translation(10, -4), apply(rotationAbout(33, { x: 5, y: 7 }), apply(scaling(1.7, 0.6), p)));
    assert.ok(Math.abs(q.x - manual.x) < 1e-9 && Math.abs(q.y - manual.y) < 1e-9);
    const back = apply(invert(t), q);
    assert.ok(Math.abs(back.x - p.x) < 1e-9 && Math.abs(back.y - p.y) < 1e-9);
  });

  test('rotation is clockwise on screen (y down)', () => {
    const p = apply(rotationAbout(90, { x: 0, y: 0 }), { x: 1, y: 0 });
    assert.ok(Math.abs(p.x) < 1e-12 && Math.abs(p.y - 1) < 1e-12);
  });

  test('a singular transform is refused', () => {
    assert.throws(() => invert(scaling(0, 1)), RangeError);
  });
});

describe('warpAffine', () => {
  const src = gradient(40, 30);

  test('the identity and whole-pixel shifts copy pixels exactly', () => {
    assert.deepEqual(warpAffine(src, translation(0, 0), 40, 30).image.data, src.data);
    const shifted = warpAffine(src, translation(3, 2), 10, 10).image;
    for (let y = 0; y < 10; y++) {
      for (let x = 0; x < 10; x++) {
        for (let ch = 0; ch < 3; ch++)
          assert.equal(shifted.data[(y * 10 + x) * 3 + ch], src.data[((y + 2) * 40 + x + 3) * 3 + ch]);
      }
    }
  });

  test('half-pixel shifts interpolate linearly', () => {
    const out = warpAffine(src, translation(0.5, 0), 39, 30, { supersample: 1 }).image;
    // Red is 3x: halfway between x=4 (12) and x=5 (15) is 13.5, rounded to 14.
    assert.equal(out.data[(0 * 39 + 4) * 3], 14);
  });

  test('replicate border repeats edge pixels; constant border fills; coverage marks the inside', () => {
    const outside = translation(-5, 0);
    const replicated = warpAffine(src, outside, 10, 1, { coverage: true });
    for (let x = 0; x < 5; x++) assert.equal(replicated.image.data[x * 3 + 1], src.data[1]);
    assert.deepEqual(Array.from(replicated.coverage!), [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
    const filled = warpAffine(src, outside, 10, 1, { border: 'constant', fill: [9, 8, 7] });
    assert.deepEqual(Array.from(filled.image.data.subarray(0, 3)), [9, 8, 7]);
    assert.deepEqual(Array.from(filled.image.data.subarray(15, 18)), Array.from(src.data.subarray(0, 3)));
  });

  test('shrinking averages instead of skipping pixels', () => {
    // A one-pixel checkerboard shrunk 4x must come out mid-grey, not black or white.
    const size = 64;
    const data = new Uint8Array(size * size * 3);
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++) data.fill((x + y) % 2 ? 255 : 0, (y * size + x) * 3, (y * size + x) * 3 + 3);
    const out = warpAffine({ width: size, height: size, data }, scaling(4), 16, 16).image;
    for (const v of out.data) assert.ok(Math.abs(v - 128) <= 1, `value ${v}`);
  });

  test('one-channel masks warp too', () => {
    const mask = { width: 4, height: 4, channels: 1, data: new Uint8Array(16).fill(200) };
    const out = warpAffine(mask, scaling(0.5), 8, 8).image;
    assert.equal(out.data.length, 64);
    assert.ok(out.data.every((v) => v === 200));
  });
});

describe('affine fits', () => {
  test('fits recover a known similarity and a known affine map; invert and compose undo them', () => {
    const next = random(3);
    const from = Float64Array.from({ length: 40 }, () => next() * 200);
    const angle = 0.3;
    const similarity = {
      a: 1.7 * Math.cos(angle),
      b: -1.7 * Math.sin(angle),
      c: 12,
      d: 1.7 * Math.sin(angle),
      e: 1.7 * Math.cos(angle),
      f: -5,
    };
    const sheared = { a: 1.2, b: 0.3, c: -7, d: -0.1, e: 0.8, f: 20 };
    const indices = [...Array(20).keys()];
    for (const [truth, fit] of [
      [similarity, (to: Float64Array) => fitSimilarity(from, to, indices)],
      [
        sheared,
        (to: Float64Array) =>
          fitAffine(
            from,
            to,
            indices.map((i) => [i, 1] as const),
          )!,
      ],
    ] as const) {
      const to = new Float64Array(40);
      for (let i = 0; i < 20; i++) {
        to[2 * i] = truth.a * from[2 * i]! + truth.b * from[2 * i + 1]! + truth.c;
        to[2 * i + 1] = truth.d * from[2 * i]! + truth.e * from[2 * i + 1]! + truth.f;
      }
      const found = fit(to);
      for (const key of ['a', 'b', 'c', 'd', 'e', 'f'] as const)
        assert.ok(Math.abs(found[key] - truth[key]) < 1e-9, key);
      const identity = compose(invert(found), found);
      for (const [key, value] of Object.entries({ a: 1, b: 0, c: 0, d: 0, e: 1, f: 0 }))
        assert.ok(Math.abs(identity[key as keyof typeof identity] - value) < 1e-9, key);
    }
  });
});
