import type { RgbImage } from '../types.js';

/** The bounds [minX, minY, maxX, maxY] of the first `count` points of interleaved x, y coordinates. */
export function pointBounds(xy: ArrayLike<number>, count = xy.length / 2): [number, number, number, number] {
  let minX = Infinity,
    minY = Infinity,
    maxX = -Infinity,
    maxY = -Infinity;
  for (let i = 0; i < count; i++) {
    minX = Math.min(minX, xy[2 * i]!);
    maxX = Math.max(maxX, xy[2 * i]!);
    minY = Math.min(minY, xy[2 * i + 1]!);
    maxY = Math.max(maxY, xy[2 * i + 1]!);
  }
  return [minX, minY, maxX, maxY];
}

/** Pixel bounds [x0, y0, x1, y1] of a polygon, clipped to the image. */
export function polygonBounds(poly: Float64Array, image: RgbImage): [number, number, number, number] {
  const [minX, minY, maxX, maxY] = pointBounds(poly);
  return [
    Math.max(0, Math.floor(minX)),
    Math.max(0, Math.floor(minY)),
    Math.min(image.width - 1, Math.ceil(maxX)),
    Math.min(image.height - 1, Math.ceil(maxY)),
  ];
}

/**
 * Where the edges of a polygon cross the row y, sorted, into `out`; returns how many. A point
 * (x, y) is inside (even-odd) when an odd number of crossings lie strictly right of x: the same
 * test as a per-point ray cast, done once per row.
 */
export function rowCrossings(poly: Float64Array, y: number, out: Float64Array): number {
  let count = 0;
  for (let i = 0, j = poly.length - 2; i < poly.length; j = i, i += 2) {
    const yi = poly[i + 1]!,
      yj = poly[j + 1]!;
    if (yi > y === yj > y) continue;
    const crossing = ((poly[j]! - poly[i]!) * (y - yi)) / (yj - yi) + poly[i]!;
    let k = count++;
    for (; k > 0 && out[k - 1]! > crossing; k--) out[k] = out[k - 1]!;
    out[k] = crossing;
  }
  return count;
}

/** Whether (x, y) lies inside the polygon (even-odd ray cast). */
export function insidePolygon(poly: ArrayLike<number>, x: number, y: number): boolean {
  let result = false;
  for (let i = 0, j = poly.length - 2; i < poly.length; j = i, i += 2) {
    const yi = poly[i + 1]!,
      yj = poly[j + 1]!;
    if (yi > y !== yj > y && x < ((poly[j]! - poly[i]!) * (y - yi)) / (yj - yi) + poly[i]!) result = !result;
  }
  return result;
}

/** Calls `visit` with the centre and byte offset of every pixel of `image` inside the polygon. */
export function forEachInside(
  poly: Float64Array,
  image: RgbImage,
  visit: (x: number, y: number, offset: number) => void,
): void {
  const [x0, y0, x1, y1] = polygonBounds(poly, image);
  const crossings = new Float64Array(poly.length / 2);
  for (let y = y0; y <= y1; y++) {
    const py = y + 0.5;
    const count = rowCrossings(poly, py, crossings);
    if (count === 0) continue;
    let k = 0;
    for (let x = x0; x <= x1; x++) {
      const px = x + 0.5;
      while (k < count && crossings[k]! <= px) k++;
      if (((count - k) & 1) === 1) visit(px, py, (y * image.width + x) * 3);
    }
  }
}

/** Bilinear sample of an image at (x, y) (pixel centres at +0.5) into `out`, clamped to its edges. */
export function sampleBilinear(image: RgbImage, x: number, y: number, out: Float64Array): void {
  const maxX = image.width - 1,
    maxY = image.height - 1;
  const sx = Math.min(maxX, Math.max(0, x - 0.5)),
    sy = Math.min(maxY, Math.max(0, y - 0.5));
  const ix = Math.min(maxX - 1, sx | 0),
    iy = Math.min(maxY - 1, sy | 0);
  const fx = sx - ix,
    fy = sy - iy;
  const p = (iy * image.width + ix) * 3,
    q = p + image.width * 3;
  const d = image.data;
  for (let c = 0; c < 3; c++)
    out[c] = (1 - fy) * ((1 - fx) * d[p + c]! + fx * d[p + 3 + c]!) + fy * ((1 - fx) * d[q + c]! + fx * d[q + 3 + c]!);
}
