import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { apply } from '../src/align/affine.js';
import { alignSource, type SourceAlignment } from '../src/align/source.js';
import { FaceBlender } from '../src/compose/blend.js';
import { cropToEven } from '../src/compose/even.js';
import { FaceAnalyzer } from '../src/face/detector.js';
import { readImage } from '../src/media/image.js';
import type { RgbImage } from '../src/types.js';
import { shared, skipWithoutShared } from './shared.js';

/** Photo pixels by distance from the disc centre (in crop units), for region statistics. */
function regionError(
  out: RgbImage,
  photo: RgbImage,
  alignment: SourceAlignment,
  from: number,
  to: number,
): { mean: number; psnr: number; count: number } {
  let absolute = 0;
  let squared = 0;
  let count = 0;
  const t = alignment.photoToCrop;
  const centre = alignment.crop.width / 2;
  for (let y = 0; y < out.height; y++) {
    for (let x = 0; x < out.width; x++) {
      const c = apply(t, { x: x + 0.5, y: y + 0.5 });
      const r = Math.hypot(c.x - centre, c.y - centre) / alignment.crop.width;
      if (r < from || r >= to) continue;
      for (let ch = 0; ch < 3; ch++) {
        const d = out.data[(y * out.width + x) * 3 + ch]! - photo.data[(y * photo.width + x) * 3 + ch]!;
        absolute += Math.abs(d);
        squared += d * d;
      }
      count++;
    }
  }
  const mse = squared / (count * 3);
  return { mean: absolute / (count * 3), psnr: 10 * Math.log10((255 * 255) / Math.max(mse, 1e-9)), count };
}

describe('face blend', { skip: skipWithoutShared }, () => {
  let photo: RgbImage;
  let alignment: SourceAlignment;
  before(async () => {
    const image = await readImage(shared('fixtures', 'portrait-outdoor.jpg'));
    const analyzer = await FaceAnalyzer.create();
    const [face] = await analyzer.detect(image);
    alignment = alignSource(image, face!);
    photo = cropToEven(image);
  });

  test("pasting the photo's own crop back gives the photo: exact outside the disc, close inside", () => {
    const out = new FaceBlender(photo, alignment).blend(alignment.crop);
    assert.equal(out.width, 586);
    assert.equal(out.height, 586);
    const outside = regionError(out, photo, alignment, 0.47, Infinity);
    assert.ok(outside.count > 100_000);
    assert.equal(outside.mean, 0, 'pixels outside the disc are untouched');
    const inside = regionError(out, photo, alignment, 0, 0.47);
    // Down to the 256 crop and back up loses fine detail (the face is ~340 px wide in the photo).
    assert.ok(inside.psnr > 30, `resampled twice, still close: ${inside.psnr.toFixed(1)} dB`);
  });

  test('a colour cast in the generated face is corrected, so no seam shows', () => {
    const tinted: RgbImage = { ...alignment.crop, data: new Uint8Array(alignment.crop.data) };
    for (let i = 0; i < tinted.data.length; i += 3) {
      tinted.data[i] = Math.min(255, tinted.data[i]! + 30);
      tinted.data[i + 2] = Math.max(0, tinted.data[i + 2]! - 20);
    }
    const corrected = new FaceBlender(photo, alignment).blend(tinted);
    const raw = new FaceBlender(photo, alignment, { colourCorrection: false }).blend(tinted);
    // In the feather band (where a seam would show) and across the face.
    const bandCorrected = regionError(corrected, photo, alignment, 0.33, 0.47);
    const bandRaw = regionError(raw, photo, alignment, 0.33, 0.47);
    const faceCorrected = regionError(corrected, photo, alignment, 0, 0.33);
    const faceRaw = regionError(raw, photo, alignment, 0, 0.33);
    const faceUntinted = regionError(
      new FaceBlender(photo, alignment).blend(alignment.crop),
      photo,
      alignment,
      0,
      0.33,
    );
    assert.ok(faceRaw.mean > 12, `the cast is there without correction: ${faceRaw.mean.toFixed(1)}`);
    // Resampling alone leaves some error; the cast must add little to it (clipping at 255 adds a bit).
    assert.ok(
      faceCorrected.mean < faceUntinted.mean + 2.5,
      `face after correction: ${faceCorrected.mean.toFixed(1)} levels off (${faceUntinted.mean.toFixed(1)} untinted)`,
    );
    assert.ok(
      bandCorrected.mean < bandRaw.mean / 2,
      `band: ${bandCorrected.mean.toFixed(1)} vs ${bandRaw.mean.toFixed(1)}`,
    );
  });

  test('takes a generated face of another size in the same crop space', () => {
    const half: RgbImage = { width: 128, height: 128, data: new Uint8Array(128 * 128 * 3) };
    for (let y = 0; y < 128; y++)
      for (let x = 0; x < 128; x++)
        for (let ch = 0; ch < 3; ch++)
          half.data[(y * 128 + x) * 3 + ch] = alignment.crop.data[(2 * y * 256 + 2 * x) * 3 + ch]!;
    const out = new FaceBlender(photo, alignment).blend(half);
    assert.ok(regionError(out, photo, alignment, 0, 0.47).psnr > 25);
  });
});
