import type { RgbImage } from '../types.js';
import { fitAffine } from '../align/affine.js';
import { forEachInside, insidePolygon, sampleBilinear } from './polygon.js';

/**
 * Radius of the iris with its dark limbal ring, per radius of the iris landmarks (which sit
 * inside the ring): what moves with the gaze, and where the sclera starts.
 */
const LIMBUS = 1.35;

/** How far beyond the limbus, per its radius, the sclera is sampled to fill where the iris was. */
const SCLERA_GAP = 0.25;

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
 * lids and outside the iris's limbus (the rest is lashes, lid margins and their shadow).
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
    if (Math.hypot(px - x, py - y) > radius * LIMBUS)
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
 * shows the photo's iris; where the iris was and is no longer, the photo's own sclera of the same
 * row (along the shift) just beyond the old iris's edge on the side it moved away from, so the
 * white keeps the photo's shading from lid to lid, or the eye's mean white where that point falls
 * outside the photo's eye. Elsewhere the warped pixel stays. Both rims
 * are blended over a pixel and a half, so no hard edge shows. Lids drawn over the polygon's edge
 * keep covering the iris as they close.
 */
export function shiftIris(
  out: RgbImage,
  photo: RgbImage,
  from: ArrayLike<number>,
  to: ArrayLike<number>,
  iris: SourceIris,
  shift: [number, number],
): void {
  const length = Math.hypot(shift[0], shift[1]);
  if (length < 0.05) return;
  const map = fitAffine(
    to,
    from,
    iris.contour.map((i) => [i, 1] as const),
  );
  if (!map) return;
  const poly = new Float64Array(iris.contour.length * 2);
  const sourcePoly = new Float64Array(iris.contour.length * 2);
  iris.contour.forEach((i, k) => {
    poly[2 * k] = to[2 * i]!;
    poly[2 * k + 1] = to[2 * i + 1]!;
    sourcePoly[2 * k] = from[2 * i]!;
    sourcePoly[2 * k + 1] = from[2 * i + 1]!;
  });
  const limbus = iris.radius * LIMBUS;
  const cx = iris.x + shift[0],
    cy = iris.y + shift[1];
  // Along the shift and across it.
  const ux = shift[0] / length,
    uy = shift[1] / length;
  const sample = new Float64Array(3);
  const data = out.data;
  forEachInside(poly, out, (px, py, o) => {
    // The point of the photo this pixel shows.
    const qx = map.a * px + map.b * py + map.c;
    const qy = map.d * px + map.e * py + map.f;
    const inNew = limbus + 0.75 - Math.hypot(qx - cx, qy - cy);
    const inOld = limbus + 0.75 - Math.hypot(qx - iris.x, qy - iris.y);
    if (inNew > 0) {
      sampleBilinear(photo, qx - shift[0], qy - shift[1], sample);
      blend(data, o, sample, Math.min(1, inNew / 1.5));
    } else if (inOld > 0) {
      const across = -(qx - iris.x) * uy + (qy - iris.y) * ux;
      const chord = Math.sqrt(Math.max(0, limbus * limbus - across * across));
      // The sclera of the same row just beyond the trailing edge of the old disc (along = -chord),
      // clear of the limbal ring's blur, or nearer where the eye's corner is.
      let found = false;
      for (const beyond of [SCLERA_GAP * limbus, 1]) {
        const sx = iris.x - (chord + beyond) * ux - across * uy,
          sy = iris.y - (chord + beyond) * uy + across * ux;
        if (!insidePolygon(sourcePoly, sx, sy)) continue;
        sampleBilinear(photo, sx, sy, sample);
        found = true;
        break;
      }
      if (!found) sample.set(iris.white);
      blend(data, o, sample, Math.min(1, inOld / 1.5, -inNew / 1.5));
    }
  });
}

function blend(data: Uint8Array, o: number, sample: ArrayLike<number>, alpha: number): void {
  for (let c = 0; c < 3; c++) data[o + c] = data[o + c]! + alpha * (sample[c]! - data[o + c]!) + 0.5;
}
