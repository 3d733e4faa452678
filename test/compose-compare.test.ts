import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CompareComposer, compareLayout, resizeBilinear } from '../src/compose/compare.js';
import { cropToEven, evenSize } from '../src/compose/even.js';
import type { RgbImage } from '../src/types.js';

function filled(width: number, height: number, rgb: [number, number, number]): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i += 3) data.set(rgb, i);
  return { width, height, data };
}

function pixel(image: RgbImage, x: number, y: number): number[] {
  const p = (y * image.width + x) * 3;
  return [image.data[p]!, image.data[p + 1]!, image.data[p + 2]!];
}

describe('side-by-side comparison', () => {
  test('three panels at the result height, total width even', () => {
    const layout = compareLayout({ width: 586, height: 586 }, { width: 256, height: 256 }, { width: 586, height: 586 });
    assert.equal(layout.height, 586);
    assert.deepEqual(layout.panels, [
      { x: 0, width: 586 },
      { x: 586, width: 586 },
      { x: 1172, width: 586 },
    ]);
    assert.equal(layout.width, 1758);
    const odd = compareLayout({ width: 300, height: 200 }, { width: 255, height: 256 }, { width: 300, height: 200 });
    assert.equal(odd.panels[1]!.width, 199);
    assert.equal(odd.width % 2, 0);
    assert.equal(odd.width, 300 + 199 + 300 + 1);
  });

  test('places source, scaled driving and result left to right', () => {
    const source = filled(120, 100, [255, 0, 0]);
    const driving = filled(64, 64, [0, 255, 0]);
    const result = filled(120, 100, [0, 0, 255]);
    const composer = new CompareComposer(source, driving, result);
    const frame = composer.compose(driving, result);
    assert.equal(frame.width, 120 + 100 + 120);
    assert.equal(frame.height, 100);
    assert.deepEqual(pixel(frame, 10, 50), [255, 0, 0]);
    assert.deepEqual(pixel(frame, 170, 99), [0, 255, 0]);
    assert.deepEqual(pixel(frame, 339, 0), [0, 0, 255]);
    assert.throws(() => composer.compose(driving, filled(100, 100, [0, 0, 0])), RangeError);
  });

  test('bilinear resize keeps a gradient a gradient', () => {
    const gradient: RgbImage = { width: 16, height: 4, data: new Uint8Array(16 * 4 * 3) };
    for (let y = 0; y < 4; y++)
      for (let x = 0; x < 16; x++) gradient.data.fill(x * 16, (y * 16 + x) * 3, (y * 16 + x) * 3 + 3);
    const big = resizeBilinear(gradient, 64, 16);
    const row = Array.from({ length: 64 }, (_, x) => pixel(big, x, 8)[0]!);
    for (let x = 1; x < 64; x++) assert.ok(row[x]! >= row[x - 1]!, 'monotonic');
    assert.equal(row[0], 0);
    assert.equal(row[63], 240);
  });
});

describe('even output size', () => {
  test('drops an odd last column and row, keeping every other pixel in place', () => {
    assert.deepEqual(evenSize({ width: 587, height: 586 }), { width: 586, height: 586 });
    const image: RgbImage = { width: 5, height: 3, data: new Uint8Array(5 * 3 * 3) };
    for (let i = 0; i < image.data.length; i++) image.data[i] = i;
    const even = cropToEven(image);
    assert.equal(even.width, 4);
    assert.equal(even.height, 2);
    for (let y = 0; y < 2; y++) for (let x = 0; x < 4; x++) assert.deepEqual(pixel(even, x, y), pixel(image, x, y));
    const already = filled(4, 2, [1, 2, 3]);
    assert.equal(cropToEven(already), already);
  });
});
