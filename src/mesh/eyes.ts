import type { RgbImage } from '../types.js';
import { fitAffine } from '../align/affine.js';
import { forEachInside, sampleBilinear } from './polygon.js';

/** The iris of one eye of the source photo, and the colour of the eye's white. */
export interface SourceIris {
  /** Lid contour landmarks of the eye, a closed polygon. */
  contour: readonly number[];
  /** Iris centre and radius on the photo (px). */
  x: number;
  y: number;
  radius: number;
  white: [number, number, number];
}

/**
 * The iris of one eye (its centre landmark, then four rim landmarks, in `landmarks`: x, y, z
 * triples) and the eye's white: the mean of the brightest quarter of the photo's pixels inside the
 * lids and outside the iris (the rest is lashes, lid margins and their shadow).
 */
export function sourceIris(
  photo: RgbImage,
  landmarks: ArrayLike<number>,
  contour: readonly number[],
  iris: number,
): SourceIris {
  const x = landmarks[3 * iris]!,
    y = landmarks[3 * iris + 1]!;
  let radius = 0;
  for (let k = 1; k <= 4; k++)
    radius += Math.hypot(landmarks[3 * (iris + k)]! - x, landmarks[3 * (iris + k) + 1]! - y) / 4;
  const poly = new Float64Array(contour.length * 2);
  contour.forEach((i, k) => {
    poly[2 * k] = landmarks[3 * i]!;
    poly[2 * k + 1] = landmarks[3 * i + 1]!;
  });
  const pixels: [number, number, number][] = [];
  forEachInside(poly, photo, (px, py, o) => {
    if (Math.hypot(px - x, py - y) > radius * 1.15)
      pixels.push([photo.data[o]!, photo.data[o + 1]!, photo.data[o + 2]!]);
  });
  pixels.sort((a, b) => b[0] + b[1] + b[2] - (a[0] + a[1] + a[2]));
  const bright = pixels.slice(0, Math.max(1, pixels.length >> 2));
  const white: [number, number, number] = [0, 0, 0];
  for (const p of bright) for (let c = 0; c < 3; c++) white[c]! += (p[c] ?? 255) / bright.length;
  return { contour, x, y, radius, white };
}

/**
 * Moves the iris of a warped eye by `shift` (photo px, in the photo's frame: the gaze change):
 * inside the eye's lid polygon on `out` (target positions `to`), each pixel is mapped back to the
 * photo by the affine of the lids (target to photo); where the shifted iris disc covers it, it
 * shows the photo's iris; where the iris was and is no longer, the eye's white. Elsewhere the
 * warped pixel stays. Both rims are blended over a pixel and a half, so no hard edge shows. Lids drawn over the polygon's
 * edge keep covering the iris as they close.
 */
export function shiftIris(
  out: RgbImage,
  photo: RgbImage,
  from: ArrayLike<number>,
  to: ArrayLike<number>,
  iris: SourceIris,
  shift: [number, number],
): void {
  if (Math.hypot(shift[0], shift[1]) < 0.05) return;
  const map = fitAffine(
    to,
    from,
    iris.contour.map((i) => [i, 1] as const),
  );
  if (!map) return;
  const poly = new Float64Array(iris.contour.length * 2);
  iris.contour.forEach((i, k) => {
    poly[2 * k] = to[2 * i]!;
    poly[2 * k + 1] = to[2 * i + 1]!;
  });
  const r = iris.radius;
  const cx = iris.x + shift[0],
    cy = iris.y + shift[1];
  const sample = new Float64Array(3);
  const data = out.data;
  forEachInside(poly, out, (px, py, o) => {
    // The point of the photo this pixel shows.
    const qx = map.a * px + map.b * py + map.c;
    const qy = map.d * px + map.e * py + map.f;
    const inNew = r + 0.75 - Math.hypot(qx - cx, qy - cy);
    const inOld = r + 0.75 - Math.hypot(qx - iris.x, qy - iris.y);
    if (inNew > 0) {
      sampleBilinear(photo, qx - shift[0], qy - shift[1], sample);
      blend(data, o, sample, Math.min(1, inNew / 1.5));
    } else if (inOld > 0) {
      blend(data, o, iris.white, Math.min(1, inOld / 1.5, -inNew / 1.5));
    }
  });
}

function blend(data: Uint8Array, o: number, sample: ArrayLike<number>, alpha: number): void {
  for (let c = 0; c < 3; c++) data[o + c] = data[o + c]! + alpha * (sample[c]! - data[o + c]!) + 0.5;
}
