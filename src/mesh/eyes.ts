import type { RgbImage } from '../types.js';
import { fitAffine } from '../align/affine.js';
import { forEachInside, insidePolygon, pointBounds, sampleBilinear } from './polygon.js';

/**
 * The iris landmarks' radius sits inside the visible iris on some faces and on or past its edge on
 * others (1.5 and 0.9 times on the studio portrait and driving-eyes.mp4's face): the edge is found
 * on the photo instead (see irisEdge), within these shares of the landmarks' radius, and this one
 * where the photo shows none (a shut or very dark eye).
 */
const IRIS_EDGE = { least: 0.8, most: 1.6, fallback: 1.2 };

/**
 * What moves with the gaze (the iris with its dark limbal ring and the ring's blur into the
 * sclera), from the centre: the found edge plus this share of it and half a pixel.
 */
const LIMBUS = { share: 0.1, px: 0.5 };

/**
 * Radius of what a moved iris leaves, per limbus radius, plus a pixel: the limbal ring's blur on
 * the photo reaches past LIMBUS, and the mesh warp puts the iris a little off the lids' affine, so
 * a hole of just the limbus leaves a grey arc of the old ring.
 */
const HOLE = 1.2;

/** Inside the lids, the vacated disc reaches the eye's white this share of the hole's radius in from the lids. */
const SCLERA_RAMP = 0.25;

/** The iris of one eye of the source photo, and the colour of the eye's white. */
export interface SourceIris {
  /** Lid contour landmarks of the eye, a closed polygon. */
  contour: readonly number[];
  /** Iris centre and the radius of its landmarks on the photo (px). */
  x: number;
  y: number;
  radius: number;
  /** Radius of the disc that moves with the gaze: the iris, its limbal ring and the ring's blur (px). */
  limbus: number;
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
 * triples) and the eye's white: the mean of the brightest tenth of the photo's pixels inside the
 * lids and outside the iris's limbus (the rest is lashes, lid margins, their shadow and the eye's
 * shaded corners; beside a large iris the white shows in only a few pixels).
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
  const edge = irisEdge(photo, poly, x, y, radius);
  const limbus = edge * (1 + LIMBUS.share) + LIMBUS.px;
  const pixels: [number, number, number][] = [];
  forEachInside(poly, photo, (px, py, o) => {
    if (Math.hypot(px - x, py - y) > limbus) pixels.push([photo.data[o]!, photo.data[o + 1]!, photo.data[o + 2]!]);
  });
  pixels.sort((a, b) => b[0] + b[1] + b[2] - (a[0] + a[1] + a[2]));
  const bright = pixels.slice(0, Math.max(3, Math.round(pixels.length / 30)));
  const white: [number, number, number] = [0, 0, 0];
  for (const p of bright) for (let c = 0; c < 3; c++) white[c]! += (p[c] ?? 255) / bright.length;
  const hole = limbus * HOLE + 1;
  const x0 = Math.max(0, Math.floor(x - hole - 2)),
    y0 = Math.max(0, Math.floor(y - hole - 2));
  const x1 = Math.min(photo.width, Math.ceil(x + hole + 2)),
    y1 = Math.min(photo.height, Math.ceil(y + hole + 2));
  const irisless = irislessEye(photo, poly, { x, y, hole, white }, x0, y0, Math.max(1, x1 - x0), Math.max(1, y1 - y0));
  return { contour, x, y, radius, limbus, white, irisless, hole, x0, y0 };
}

/**
 * Radius (px) of the visible iris about (x, y): along three rows through its centre, to the left
 * and to the right (the lids hide its top and bottom), where the brightness first climbs halfway
 * from the iris's (the darker half of the samples within half the landmarks' `radius`, below any
 * catchlight) to the brightest the row reaches inside the lids (the sclera). The mean over the rows
 * that show both, within IRIS_EDGE of `radius`.
 */
function irisEdge(photo: RgbImage, lids: Float64Array, x: number, y: number, radius: number): number {
  const sample = new Float64Array(3);
  const brightness = (px: number, py: number) => {
    sampleBilinear(photo, px, py, sample);
    return sample[0]! + sample[1]! + sample[2]!;
  };
  const step = 0.5;
  const edges: number[] = [];
  for (const dy of [-0.25, 0, 0.25])
    for (const side of [-1, 1]) {
      const py = y + dy * radius;
      const profile: number[] = [];
      for (let r = 0; r <= IRIS_EDGE.most * radius + 3; r += step) {
        const px = x + side * r;
        if (!insidePolygon(lids, px, py)) break;
        profile.push(brightness(px, py));
      }
      const inner = profile.slice(0, Math.max(1, Math.floor((0.5 * radius) / step) + 1)).sort((a, b) => a - b);
      const iris =
        inner.slice(0, Math.max(1, inner.length >> 1)).reduce((a, b) => a + b, 0) / Math.max(1, inner.length >> 1);
      const sclera = Math.max(...profile);
      if (!(sclera - iris > 60)) continue;
      const half = (iris + sclera) / 2;
      const from = Math.ceil((IRIS_EDGE.least * radius) / step);
      for (let k = Math.max(1, from); k < profile.length; k++)
        if (profile[k]! >= half) {
          // Between the samples either side of the crossing.
          const t = (half - profile[k - 1]!) / Math.max(1e-9, profile[k]! - profile[k - 1]!);
          edges.push((k - 1 + Math.min(1, Math.max(0, t))) * step);
          break;
        }
    }
  if (edges.length === 0) return IRIS_EDGE.fallback * radius;
  const mean = edges.reduce((a, b) => a + b, 0) / edges.length;
  return Math.min(IRIS_EDGE.most * radius, Math.max(IRIS_EDGE.least * radius, mean));
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
  // Inside the lids the vacated disc is the eye's white, shaded only near the lids: rows sampled
  // beside a large iris reach the eye's shadowed corners and would fill it grey.
  const ramp = SCLERA_RAMP * iris.hole;
  const whiteSum = iris.white[0]! + iris.white[1]! + iris.white[2]!;
  for (let j = 0; j < height; j++)
    for (let i = 0; i < width; i++) {
      const k = j * width + i;
      if (!inHole[k]) continue;
      const px = x0 + i + 0.5,
        py = y0 + j + 0.5;
      if (!insidePolygon(lids, px, py)) continue;
      if (data[3 * k]! + data[3 * k + 1]! + data[3 * k + 2]! >= whiteSum) continue;
      const t = Math.min(1, distanceToOutline(lids, px, py) / ramp);
      const w = t * t * (3 - 2 * t);
      for (let c = 0; c < 3; c++) data[3 * k + c]! += w * (iris.white[c]! - data[3 * k + c]!);
    }
  const bytes = new Uint8Array(data.length);
  for (let k = 0; k < data.length; k++) bytes[k] = Math.round(data[k]!);
  return { width, height, data: bytes };
}

/** Distance from (x, y) to the nearest edge of a closed polygon. */
function distanceToOutline(poly: Float64Array, x: number, y: number): number {
  let best = Infinity;
  for (let i = 0, j = poly.length - 2; i < poly.length; j = i, i += 2) {
    const ax = poly[j]!,
      ay = poly[j + 1]!;
    const ex = poly[i]! - ax,
      ey = poly[i + 1]! - ay;
    const t = Math.min(1, Math.max(0, ((x - ax) * ex + (y - ay) * ey) / Math.max(1e-12, ex * ex + ey * ey)));
    best = Math.min(best, Math.hypot(x - ax - t * ex, y - ay - t * ey));
  }
  return best;
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
  const limbus = iris.limbus;
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

/**
 * Shares of the eye's width by which a shut eye is drawn: how far the lash line's darkness spreads
 * above the line where the lids meet and below it (a shut eye's lashes point down: on
 * driving-eyes.mp4 its dark band reaches about twice as far below the line as above), and how far
 * above and below the line the lid's skin is redrawn.
 */
const SHUT = { lashAbove: 0.035, lashBelow: 0.07, above: 0.12, below: 0.2 };

/** Per eye of the photo: the colour of its upper lash line (the darkest tenth between the upper lid and its fold). */
export function lashColour(
  photo: RgbImage,
  points: ArrayLike<number>,
  upper: readonly number[],
  fold: readonly number[],
): [number, number, number] {
  const poly = new Float64Array((upper.length + fold.length) * 2);
  upper.forEach((i, k) => {
    poly[2 * k] = points[2 * i]!;
    poly[2 * k + 1] = points[2 * i + 1]!;
  });
  [...fold].reverse().forEach((i, k) => {
    poly[2 * (upper.length + k)] = points[2 * i]!;
    poly[2 * (upper.length + k) + 1] = points[2 * i + 1]!;
  });
  const pixels: [number, number, number][] = [];
  forEachInside(poly, photo, (_x, _y, o) => pixels.push([photo.data[o]!, photo.data[o + 1]!, photo.data[o + 2]!]));
  pixels.sort((a, b) => a[0] + a[1] + a[2] - (b[0] + b[1] + b[2]));
  const dark = pixels.slice(0, Math.max(1, Math.round(pixels.length / 10)));
  const colour: [number, number, number] = [0, 0, 0];
  for (const p of dark) for (let c = 0; c < 3; c++) colour[c]! += (p[c] ?? 0) / dark.length;
  return colour;
}

/**
 * Draws a shut (or nearly shut) eye over the warp, `amount` 0 (leave the warp) to 1 (all drawn):
 * squeezed shut, the warp pinches the open eye's lashes, iris and lid margins into a one-pixel,
 * stair-stepped dark line with a grey band of the lower lid's rim under it, which reads as a slit
 * of an open eye. A shut eye shows skin down to a soft, thick lash line where the lids meet. So
 * along the line where the lids meet (`meet`: target px, corner to corner), the band from
 * SHUT.above to SHUT.below eye widths about it is redrawn, column by column, as the skin just
 * beyond it (linearly between the warp's pixels above and below the band), darkened towards the
 * lash colour by a flat-topped profile across the line that thins towards the corners.
 */
export function shutLids(out: RgbImage, meet: Float64Array, lash: readonly number[], amount: number): void {
  const n = meet.length / 2;
  const ax = meet[0]!,
    ay = meet[1]!;
  const dx = meet[2 * n - 2]! - ax,
    dy = meet[2 * n - 1]! - ay;
  const width = Math.hypot(dx, dy);
  if (!(width > 2) || amount <= 0) return;
  const ux = dx / width,
    uy = dy / width;
  // Across the eye, pointing down the face (the image's y down for an upright eye).
  const nx = -uy,
    ny = ux;
  const sign = ny >= 0 ? 1 : -1;
  // The line where the lids meet as a height over the eye's axis, at increasing positions along it.
  const along = new Float64Array(n),
    height = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    const px = meet[2 * k]! - ax,
      py = meet[2 * k + 1]! - ay;
    along[k] = px * ux + py * uy;
    height[k] = sign * (px * nx + py * ny);
  }
  const lineAt = (s: number) => {
    if (s <= along[0]!) return height[0]!;
    for (let k = 1; k < n; k++)
      if (s <= along[k]!) {
        const t = (s - along[k - 1]!) / Math.max(1e-9, along[k]! - along[k - 1]!);
        return height[k - 1]! + t * (height[k]! - height[k - 1]!);
      }
    return height[n - 1]!;
  };
  const above = SHUT.above * width,
    below = SHUT.below * width;
  const [x0, y0, x1, y1] = pointBounds(meet, n);
  const reach = below + 2;
  const left = Math.max(0, Math.floor(x0 - reach)),
    right = Math.min(out.width - 1, Math.ceil(x1 + reach));
  const top = Math.max(0, Math.floor(y0 - reach)),
    bottom = Math.min(out.height - 1, Math.ceil(y1 + reach));
  if (left > right || top > bottom) return;
  // The warp's pixels, read before any are redrawn.
  const bw = right - left + 1,
    bh = bottom - top + 1;
  const patch: RgbImage = { width: bw, height: bh, data: new Uint8Array(bw * bh * 3) };
  for (let y = 0; y < bh; y++)
    patch.data.set(
      out.data.subarray(((top + y) * out.width + left) * 3, ((top + y) * out.width + right + 1) * 3),
      y * bw * 3,
    );
  const upperSkin = new Float64Array(3),
    lowerSkin = new Float64Array(3);
  for (let y = top; y <= bottom; y++)
    for (let x = left; x <= right; x++) {
      const px = x + 0.5 - ax,
        py = y + 0.5 - ay;
      const s = px * ux + py * uy;
      // Faded out over the last tenth of the eye's width beyond each corner.
      const ends = Math.min(1, Math.max(0, (Math.min(s, width - s) + 0.1 * width) / (0.1 * width)));
      if (ends <= 0) continue;
      const line = lineAt(s);
      const d = sign * (px * nx + py * ny) - line;
      if (d < -above || d > below) continue;
      // The skin just above and below the band, in this column.
      const bx = ax + s * ux - left,
        by = ay + s * uy - top;
      sampleBilinear(patch, bx + sign * nx * (line - above), by + sign * ny * (line - above), upperSkin);
      sampleBilinear(patch, bx + sign * nx * (line + below), by + sign * ny * (line + below), lowerSkin);
      const t = (d + above) / (above + below);
      // Thinner towards the corners, as the lash line of a shut eye is.
      const centred = 1 - Math.abs((2 * s) / width - 1);
      const spread =
        (d < 0 ? SHUT.lashAbove : SHUT.lashBelow) * width * (0.5 + 0.5 * Math.min(1, Math.max(0, centred * 2)));
      // Flat across the line's middle, soft at its edges, as a band of lashes is.
      const dark = 0.9 * Math.exp(-0.5 * (d / spread) ** 4);
      const o = (y * out.width + x) * 3;
      const alpha = amount * ends;
      for (let c = 0; c < 3; c++) {
        const skin = upperSkin[c]! + t * (lowerSkin[c]! - upperSkin[c]!);
        const shut = skin + dark * (lash[c]! - skin);
        out.data[o + c] = out.data[o + c]! + alpha * (shut - out.data[o + c]!) + 0.5;
      }
    }
}
