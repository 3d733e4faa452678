import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import sharp from 'sharp';
import { apply, scaleOf } from '../src/align/affine.js';
import { alignSource, chooseFace, measureRoll, rotateUpright, type SourceAlignment } from '../src/align/source.js';
import { FaceBlender } from '../src/compose/blend.js';
import { ReenactError } from '../src/errors.js';
import { type Face, FaceAnalyzer } from '../src/face/detector.js';
import { rollDegrees } from '../src/face/landmarks.js';
import { readImage } from '../src/media/image.js';
import type { RgbImage } from '../src/types.js';
import { shared, skipWithoutShared } from './shared.js';

async function rotated(path: string, degrees: number): Promise<RgbImage> {
  // sharp rotates clockwise for positive angles, like a positive roll.
  const { data, info } = await sharp(path)
    .removeAlpha()
    .rotate(degrees, { background: '#808080' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return {
    width: info.width,
    height: info.height,
    data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  };
}

/** PSNR in dB over the pixels where `include` is true. */
function psnr(a: RgbImage, b: RgbImage, include: (x: number, y: number) => boolean): { db: number; pixels: number } {
  let sum = 0;
  let pixels = 0;
  for (let y = 0; y < a.height; y++) {
    for (let x = 0; x < a.width; x++) {
      if (!include(x, y)) continue;
      pixels++;
      for (let ch = 0; ch < 3; ch++) {
        const d = a.data[(y * a.width + x) * 3 + ch]! - b.data[(y * a.width + x) * 3 + ch]!;
        sum += d * d;
      }
    }
  }
  return { db: 10 * Math.log10((255 * 255) / (sum / (pixels * 3))), pixels };
}

/** Whether photo pixel (x, y) lies within `radius` crop pixels of the crop's centre. */
function insideDisc(alignment: SourceAlignment, x: number, y: number, radius: number): boolean {
  const p = apply(alignment.photoToCrop, { x: x + 0.5, y: y + 0.5 });
  const centre = alignment.crop.width / 2;
  return Math.hypot(p.x - centre, p.y - centre) <= radius;
}

describe('source photo alignment', { skip: skipWithoutShared }, () => {
  let analyzer: FaceAnalyzer;
  const studio = shared('fixtures', 'portrait-studio.png');
  const outdoor = shared('fixtures', 'portrait-outdoor.jpg');
  before(async () => {
    analyzer = await FaceAnalyzer.create();
  });

  const detect = (image: RgbImage): Promise<Face[]> => analyzer.detect(image);
  async function face(image: RgbImage): Promise<Face> {
    return chooseFace(await analyzer.detect(image));
  }

  for (const [path, angle] of [
    [studio, -20],
    [outdoor, 12],
    [studio, 25],
    [outdoor, -8],
  ] as const) {
    test(`measures a ${angle} degree roll and aligns it upright (${path.split('/').pop()})`, async () => {
      // Both rolls are measured by straightening (measureRoll): one detector reading of a tilted
      // face is pulled towards level (portrait-outdoor.jpg turned by 12 degrees reads 9.9).
      const upright = await readImage(path);
      const baseline = await measureRoll(upright, await face(upright), detect);
      const photo = await rotated(path, angle);
      const found = await face(photo);
      const alignment = alignSource(photo, found, { roll: await measureRoll(photo, found, detect) });
      assert.ok(
        Math.abs(alignment.roll - (baseline + angle)) < 1.5,
        `measured ${alignment.roll.toFixed(2)}, expected ${(baseline + angle).toFixed(2)}`,
      );
      assert.equal(alignment.crop.width, 256);
      assert.equal(alignment.crop.height, 256);
      const inCrop = await face(alignment.crop);
      assert.ok(Math.abs(rollDegrees(inCrop)) < 1.5, `roll in the crop ${rollDegrees(inCrop).toFixed(2)}`);
      // The face is centred and fills a sensible share of the crop.
      const centre = inCrop.box.x + inCrop.box.width / 2;
      assert.ok(Math.abs(centre - 128) < 20, `face centre x ${centre}`);
      assert.ok(inCrop.box.width > 90 && inCrop.box.width < 200, `face width ${inCrop.box.width}`);
    });
  }

  test('the crop has no black border where the square runs outside the photo', async () => {
    const photo = await readImage(studio);
    const alignment = alignSource(photo, await face(photo), { cropScale: 2.6 });
    // At this scale the square runs past the top and sides of the 256 px portrait.
    const corner = apply(alignment.cropToPhoto, { x: 0, y: 0 });
    assert.ok(corner.x < 0 && corner.y < 0, 'the test needs a crop that runs outside the photo');
    const { crop } = alignment;
    for (let i = 0; i < crop.width; i++) {
      for (const [x, y] of [
        [i, 0],
        [i, crop.height - 1],
        [0, i],
        [crop.width - 1, i],
      ] as const) {
        const p = (y * crop.width + x) * 3;
        const brightness = crop.data[p]! + crop.data[p + 1]! + crop.data[p + 2]!;
        assert.ok(brightness > 60, `near-black border pixel at ${x},${y}`);
      }
    }
  });

  for (const path of [studio, outdoor]) {
    test(`align then blend back gives back the photo (${path.split('/').pop()})`, async (t) => {
      const photo = await rotated(path, 17);
      const found = await face(photo);
      // A crop three times as fine as the photo, so the round trip loses no detail to downscaling and
      // the two bilinear resamplings blur little (at 1:1 with rotation the outdoor photo gets ~37.5 dB, at 3x ~41 dB).
      const probe = alignSource(photo, found);
      const size = Math.ceil((3 * 256) / scaleOf(probe.photoToCrop));
      const alignment = alignSource(photo, found, { size });
      // The blender's disc: full weight within 0.7 of its radius (0.47 of the crop side), none beyond it.
      const restored = new FaceBlender(photo, alignment, { colourCorrection: false }).blend(alignment.crop);
      const inner = psnr(restored, photo, (x, y) => insideDisc(alignment, x, y, 0.47 * 0.7 * size - 3));
      t.diagnostic(`PSNR inside the disc: ${inner.db.toFixed(1)} dB over ${inner.pixels} pixels`);
      assert.ok(inner.pixels > 10_000);
      assert.ok(inner.db > 40, `PSNR inside the disc ${inner.db.toFixed(1)} dB`);
      // Outside the disc nothing changes at all.
      const outside = psnr(restored, photo, (x, y) => !insideDisc(alignment, x, y, 0.47 * size + 2));
      assert.ok(outside.pixels > 1000);
      assert.equal(outside.db, Infinity);
    });
  }

  test('rotateUpright grows the canvas so no pixel is lost', async () => {
    const photo = await readImage(outdoor);
    const { image, photoToUpright } = rotateUpright(photo, 30);
    const radians = (30 * Math.PI) / 180;
    assert.equal(image.width, Math.ceil(photo.width * Math.cos(radians) + photo.height * Math.sin(radians) - 1e-6));
    for (const corner of [
      { x: 0, y: 0 },
      { x: photo.width, y: 0 },
      { x: 0, y: photo.height },
      { x: photo.width, y: photo.height },
    ]) {
      const p = apply(photoToUpright, corner);
      assert.ok(p.x >= -1e-6 && p.y >= -1e-6 && p.x <= image.width + 1e-6 && p.y <= image.height + 1e-6);
    }
    const unrotated = rotateUpright(photo, 0);
    assert.deepEqual(unrotated.image.data, photo.data);
  });
});

describe('choosing a face', () => {
  const fake = (width: number): Face => ({
    box: { x: 0, y: 0, width, height: width },
    score: 0.9,
    landmarks: new Float32Array(478 * 3),
  });

  test('largest by default, --face picks another', () => {
    const faces = [fake(200), fake(100)];
    assert.equal(chooseFace(faces), faces[0]);
    assert.equal(chooseFace(faces, 1), faces[1]);
  });

  test('no face and a bad index are user errors with advice', () => {
    assert.throws(
      () => chooseFace([], undefined, 'cartoon.jpg'),
      (error: unknown) =>
        error instanceof ReenactError &&
        error.code === 'NO_FACE' &&
        /cartoon\.jpg/.test(error.message) &&
        /80 px/.test(error.hint!),
    );
    assert.throws(
      () => chooseFace([fake(200), fake(100)], 2),
      (error: unknown) =>
        error instanceof ReenactError &&
        error.code === 'FACE_INDEX' &&
        /2 faces; `face` must be 0\.\.1/.test(error.message),
    );
  });
});
