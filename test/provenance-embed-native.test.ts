import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { addPatternInJs, blockSumsInJs, nativeEmbed } from '../src/provenance/embed.js';
import { random } from './shared.js';

// CI builds the native embedder (npm ci runs the install script) and sets REENACT_REQUIRE_NATIVE,
// so there these tests run; elsewhere they skip where no compiler built it.
const noNativeEmbed = nativeEmbed.module
  ? false
  : process.env.REENACT_REQUIRE_NATIVE
    ? false
    : `native watermark embedder unavailable: ${nativeEmbed.reason}`;

/** A frame of noise with flat and saturated patches, so the clamping at 0 and 255 is exercised. */
function frame(width: number, height: number, next: () => number): Uint8Array {
  const data = Uint8Array.from({ length: width * height * 3 }, () => next() * 256);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      if (x < width / 4) data.fill(y < height / 2 ? 0 : 255, o, o + 3);
    }
  return data;
}

describe('native watermark embedder', () => {
  test("adds the JavaScript loop's pattern and sums the same blocks, byte for byte", { skip: noNativeEmbed }, () => {
    assert.ok(nativeEmbed.module, nativeEmbed.reason);
    const next = random(7);
    let compared = 0;
    // Sizes that are not multiples of the 8-pixel block, and one that is.
    for (const [width, height] of [
      [301, 217],
      [64, 48],
      [13, 9],
    ] as const) {
      const blocks = Math.ceil(width / 8) * Math.ceil(height / 8);
      const data = frame(width, height, next);
      const jsSums = new Float64Array(3 * blocks);
      const nativeSums = new Float64Array(3 * blocks);
      blockSumsInJs(data, width, height, jsSums);
      nativeEmbed.module.blockSums(data, width, height, nativeSums);
      assert.deepEqual(nativeSums, jsSums, `${width}x${height}: the block sums differ`);
      assert.ok(
        jsSums.some((v, i) => i % 3 === 1 && v > 0),
        'the sums were written',
      );
      // Strong enough that the pattern saturates on the black and white patches.
      const pattern = Int16Array.from({ length: width * height }, () => Math.round((next() - 0.5) * 2 * 4000));
      const gains = Float32Array.from({ length: blocks }, () => next() * 2.5);
      // Small scales round most offsets to zero: compared too, but they need not change a pixel.
      for (const scale of [256, 97.3, -256, -3.7, 0]) {
        const js = data.slice();
        const native = data.slice();
        addPatternInJs(js, width, height, pattern, gains, scale);
        nativeEmbed.module.addPattern(native, width, height, pattern, gains, scale);
        let differing = 0;
        for (let i = 0; i < js.length; i++) if (js[i] !== native[i]) differing++;
        assert.equal(differing, 0, `${width}x${height} at scale ${scale}: ${differing} values differ`);
        if (Math.abs(scale) > 50) assert.ok(!js.every((v, i) => v === data[i]), 'the pattern changed pixels');
        compared++;
      }
    }
    assert.equal(compared, 15);
  });

  test('refuses arguments that do not fit, by name, instead of writing past them', { skip: noNativeEmbed }, () => {
    const { addPattern, blockSums } = nativeEmbed.module!;
    const data = new Uint8Array(16 * 8 * 3);
    const pattern = new Int16Array(16 * 8);
    const gains = new Float32Array(2);
    assert.throws(() => blockSums(data, 16, 8, new Float64Array(3)), /3 values per 8x8 block/);
    assert.throws(() => blockSums(data, 17, 8, new Float64Array(6)), /width x height/);
    assert.throws(() => addPattern(data, 16, 8, pattern.subarray(1), gains, 1), /a value per pixel/);
    assert.throws(() => addPattern(data, 16, 8, pattern, new Float32Array(1), 1), /a value per 8x8 block/);
    assert.throws(
      () => addPattern(data, 16, 8, pattern, Float32Array.of(1, Number.NaN), 1),
      /gains must be from 0 to 4/,
    );
    assert.throws(() => addPattern(data, 16, 8, pattern, gains, 300), /scale must be from -256 to 256/);
    assert.throws(() => addPattern(data, 16, 8, Float32Array.from(pattern) as never, gains, 1), /Int16Array/);
  });
});
