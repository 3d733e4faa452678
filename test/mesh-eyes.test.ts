import assert from 'node:assert/strict';
import { test } from 'node:test';
import { shiftIris, sourceIris } from '../src/mesh/eyes.js';
import type { RgbImage } from '../src/types.js';

const WIDTH = 64,
  HEIGHT = 48;
const CX = 32,
  CY = 24;
/** The eye's opening, an ellipse with these half axes. */
const AX = 18,
  AY = 8;
const IRIS = 4;
const SCLERA = [230, 225, 220];
const SKIN = [200, 150, 130];
const IRIS_COLOUR = [60, 80, 110];
/** The dark iris reaches this far, then a ramp of this width blurs it into the sclera, as a photo's limbus does. */
const RING = 5.4,
  BLUR = 1.4;

/**
 * A made eye: lids as a 16-point ellipse (landmarks 0-15), the iris centre (16) and four rim points
 * (17-20), and a photo of skin around a white with an iris whose dark ring fades out over a pixel
 * and a half beyond its edge.
 */
function madeEye(): { photo: RgbImage; landmarks: Float64Array; points: Float64Array; contour: number[] } {
  const landmarks = new Float64Array(21 * 3);
  for (let k = 0; k < 16; k++) {
    landmarks[3 * k] = CX + AX * Math.cos((k * Math.PI) / 8);
    landmarks[3 * k + 1] = CY + AY * Math.sin((k * Math.PI) / 8);
  }
  landmarks[48] = CX;
  landmarks[49] = CY;
  for (let k = 0; k < 4; k++) {
    landmarks[3 * (17 + k)] = CX + IRIS * Math.cos((k * Math.PI) / 2);
    landmarks[3 * (17 + k) + 1] = CY + IRIS * Math.sin((k * Math.PI) / 2);
  }
  const points = new Float64Array(21 * 2);
  for (let v = 0; v < 21; v++) {
    points[2 * v] = landmarks[3 * v]!;
    points[2 * v + 1] = landmarks[3 * v + 1]!;
  }
  const data = new Uint8Array(WIDTH * HEIGHT * 3);
  for (let y = 0; y < HEIGHT; y++)
    for (let x = 0; x < WIDTH; x++) {
      const px = x + 0.5,
        py = y + 0.5;
      const inEye = ((px - CX) / AX) ** 2 + ((py - CY) / AY) ** 2 < 1;
      const t = Math.min(1, Math.max(0, (Math.hypot(px - CX, py - CY) - RING) / BLUR));
      for (let c = 0; c < 3; c++)
        data[(y * WIDTH + x) * 3 + c] = inEye ? IRIS_COLOUR[c]! + t * (SCLERA[c]! - IRIS_COLOUR[c]!) : SKIN[c]!;
    }
  return { photo: { width: WIDTH, height: HEIGHT, data }, landmarks, points, contour: [...Array(16).keys()] };
}

test('a moved iris leaves clean white behind, no grey arc of its old ring and no specks', () => {
  const { photo, landmarks, points, contour } = madeEye();
  const iris = sourceIris(photo, landmarks, contour, 16);
  const out: RgbImage = { width: WIDTH, height: HEIGHT, data: photo.data.slice() };
  const shift = 3;
  shiftIris(out, photo, points, points, iris, [shift, 0]);
  // Inside the white, away from the lids and clear of the moved iris with its ring and blur.
  let checked = 0;
  let worst = 0;
  for (let y = 0; y < HEIGHT; y++)
    for (let x = 0; x < WIDTH; x++) {
      const px = x + 0.5,
        py = y + 0.5;
      if (((px - CX) / AX) ** 2 + ((py - CY) / AY) ** 2 > 0.6) continue;
      if (Math.hypot(px - CX - shift, py - CY) < RING + BLUR + 0.5) continue;
      checked++;
      for (let c = 0; c < 3; c++) worst = Math.max(worst, Math.abs(out.data[(y * WIDTH + x) * 3 + c]! - SCLERA[c]!));
    }
  assert.ok(checked > 100, `${checked} pixels of white checked`);
  assert.ok(worst <= 4, `the white beside the moved iris is off by up to ${worst} levels`);
  // The iris moved: its dark centre is where the shift put it.
  const centre = ((CY * WIDTH + CX + shift) * 3) as number;
  assert.ok(out.data[centre]! < 100, `the moved iris's centre reads ${out.data[centre]}`);
});
