import type { RgbImage } from '../types.js';
import { fitAffine } from '../align/affine.js';
import { forEachInside, insidePolygon, sampleBilinear } from './polygon.js';

/**
 * Radius of the iris with its dark limbal ring, per radius of the iris landmarks (which sit
 * inside the ring): what moves with the gaze, and where the sclera starts.
 */
const LIMBUS = 1.35;

/**
 * Radius of what a moved iris leaves, per limbus radius, plus a pixel: the limbal ring's blur on
 * the photo reaches past LIMBUS, and the mesh warp puts the iris a little off the lids' affine, so
 * a hole of just the limbus leaves a grey arc of the old ring.
 */
const HOLE = 1.2;

/** The iris of one eye of the source photo, and the colour of the eye's white. */
export interface SourceIris {
  /** Lid contour landmarks of the eye, a closed polygon. */
  contour: readonly number[];
  /** Iris centre and radius on the photo (px). */
  x: number;
  y: number;
  radius: number;
  white: [number, number, number];
  /** The photo around the iris with the iris taken out (see `irislessEye`), placed at (x0, y0). */
  irisless: RgbImage;
  /** Radius of the disc `irisless` takes the iris out of (px). */
  hole: number;
  x0: number;
  y0: number;
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
  const hole = radius * LIMBUS * HOLE + 1;
  const x0 = Math.max(0, Math.floor(x - hole - 2)),
    y0 = Math.max(0, Math.floor(y - hole - 2));
  const x1 = Math.min(photo.width, Math.ceil(x + hole + 2)),
    y1 = Math.min(photo.height, Math.ceil(y + hole + 2));
  const irisless = irislessEye(photo, poly, { x, y, hole, white }, x0, y0, Math.max(1, x1 - x0), Math.max(1, y1 - y0));
  return { contour, x, y, radius, white, irisless, hole, x0, y0 };
}

/**
 * The photo around the eye as if it had no iris: inside the hole (a disc about the iris), each row
 * runs linearly between the photo's pixels just beyond the hole on either side (the sclera, or the
 * lid margin on the rows by the lids), or from the one side inside the lids, or the eye's white;
 * then rows are smoothed across, so that no row stands out as a bright or grey streak. Sampling
 * one point per row of the vacated area instead left specks and the ring's grey where a row's
 * point fell on the limbus blur or the lashes.
 */
function irislessEye(
  photo: RgbImage,
  lids: Float64Array,
  iris: { x: number; y: number; hole: number; white: readonly number[] },
  x0: number,
  y0: number,
  width: number,
  height: number,
): RgbImage {
  const data = new Float64Array(width * height * 3);
  const inHole = new Uint8Array(width * height);
  const left = new Float64Array(3),
    right = new Float64Array(3);
  for (let j = 0; j < height; j++) {
    const py = y0 + j + 0.5;
    const dy = py - iris.y;
    const chord = Math.sqrt(Math.max(0, iris.hole * iris.hole - dy * dy));
    const lx = iris.x - chord - 1,
      rx = iris.x + chord + 1;
    const hasLeft = chord > 0 && insidePolygon(lids, lx, py);
    const hasRight = chord > 0 && insidePolygon(lids, rx, py);
    if (hasLeft) sampleBilinear(photo, lx, py, left);
    if (hasRight) sampleBilinear(photo, rx, py, right);
    for (let i = 0; i < width; i++) {
      const px = x0 + i + 0.5;
      const k = j * width + i;
      const o = ((y0 + j) * photo.width + x0 + i) * 3;
      if (Math.abs(px - iris.x) >= chord) {
        for (let c = 0; c < 3; c++) data[3 * k + c] = photo.data[o + c]!;
        continue;
      }
      inHole[k] = 1;
      const t = (px - lx) / (rx - lx);
      for (let c = 0; c < 3; c++)
        data[3 * k + c] =
          hasLeft && hasRight
            ? left[c]! + t * (right[c]! - left[c]!)
            : hasLeft
              ? left[c]!
              : hasRight
                ? right[c]!
                : iris.white[c]!;
    }
  }
  // Across the rows, [1 2 1] twice, inside the hole only.
  for (let pass = 0; pass < 2; pass++) {
    const before = data.slice();
    for (let j = 0; j < height; j++)
      for (let i = 0; i < width; i++) {
        const k = j * width + i;
        if (!inHole[k]) continue;
        const up = j > 0 ? k - width : k,
          down = j < height - 1 ? k + width : k;
        for (let c = 0; c < 3; c++)
          data[3 * k + c] = (before[3 * up + c]! + 2 * before[3 * k + c]! + before[3 * down + c]!) / 4;
      }
  }
  const bytes = new Uint8Array(data.length);
  for (let k = 0; k < data.length; k++) bytes[k] = Math.round(data[k]!);
  return { width, height, data: bytes };
}

/**
 * Moves the iris of a warped eye by `shift` (photo px, in the photo's frame: the gaze change):
 * inside the eye's lid polygon on `out` (target positions `to`), each pixel is mapped back to the
 * photo by the affine of the lids (target to photo); within the hole about the old iris it shows
 * the irisless eye, and where the shifted iris disc covers it, the photo's iris over that. Elsewhere
 * the warped pixel stays. Both rims are blended over a pixel and a half, so no hard edge shows.
 * Lids drawn over the polygon's edge keep covering the iris as they close.
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
  iris.contour.forEach((i, k) => {
    poly[2 * k] = to[2 * i]!;
    poly[2 * k + 1] = to[2 * i + 1]!;
  });
  const limbus = iris.radius * LIMBUS;
  // The hole reaches past the moved disc: a small shift takes out the old ring's blur by degrees, so
  // the eye does not flicker between gazes near zero.
  const fade = Math.min(1, length);
  const cx = iris.x + shift[0],
    cy = iris.y + shift[1];
  const sample = new Float64Array(3);
  const data = out.data;
  forEachInside(poly, out, (px, py, o) => {
    // The point of the photo this pixel shows.
    const qx = map.a * px + map.b * py + map.c;
    const qy = map.d * px + map.e * py + map.f;
    // Faded in beyond the hole, where the irisless eye is the photo, so none of the ring's blur stays.
    const inHole = iris.hole + 1.5 - Math.hypot(qx - iris.x, qy - iris.y);
    const inNew = limbus + 0.75 - Math.hypot(qx - cx, qy - cy);
    if (inHole > 0) {
      sampleBilinear(iris.irisless, qx - iris.x0, qy - iris.y0, sample);
      blend(data, o, sample, fade * Math.min(1, inHole / 1.5));
    }
    if (inNew > 0) {
      sampleBilinear(photo, qx - shift[0], qy - shift[1], sample);
      blend(data, o, sample, Math.min(1, inNew / 1.5));
    }
  });
}

function blend(data: Uint8Array, o: number, sample: ArrayLike<number>, alpha: number): void {
  for (let c = 0; c < 3; c++) data[o + c] = data[o + c]! + alpha * (sample[c]! - data[o + c]!) + 0.5;
}
