import { loadAddon, type Addon } from '../native/addon.js';
import type { RgbImage } from '../types.js';

/** Vertices moving less than this (px) count as fixed: their triangles keep the copied pixels. */
const STILL = 1e-3;

interface NativeWarp {
  warp(
    source: Uint8Array,
    width: number,
    height: number,
    from: Float64Array,
    to: Float64Array,
    triangles: Uint32Array,
    out: Uint8Array,
    mask?: Uint8Array,
    values?: Uint8Array,
  ): void;
}

/**
 * The warp's loop in C++ (native/warp.cc, built by `npm install` where a compiler is present):
 * the same pixels, byte for byte, in a fraction of the time (about half of a 586x586 frame moves).
 * Without it (no compiler, not x86-64) the JavaScript loop below runs.
 */
export const nativeWarp: Addon<NativeWarp> = loadAddon('mesh_warp', 'the native warp');

/**
 * Piecewise-affine warp by inverse mapping. `out` must already hold a copy of `source` (same
 * size): every triangle of the mesh whose vertices move is rasterised at its `to` position, and
 * each covered output pixel samples `source` bilinearly at the matching point of the same
 * triangle at its `from` position (to 1/256 of a pixel, blended in integers). Triangles that do
 * not move are skipped, so pixels there stay exact copies. Coordinates are interleaved x, y in pixel units with pixel centres at +0.5.
 * Triangles are drawn in order: a later one covers an earlier one.
 * With `layers`, every pixel a triangle writes gets that triangle's value (values[t], t counting
 * triangles) in `mask` (one byte per pixel), so the caller knows which part of the mesh drew it;
 * triangles of value 0 leave the mask as it was (the caller clears it to 0).
 */
export function warpPiecewiseAffine(
  source: RgbImage,
  from: Float64Array,
  to: Float64Array,
  triangles: Uint32Array,
  out: Uint8Array,
  layers?: Layers,
): void {
  const { width, height, data } = source;
  if (!nativeWarp.module) warpPiecewiseAffineInJs(source, from, to, triangles, out, layers);
  else if (layers) nativeWarp.module.warp(data, width, height, from, to, triangles, out, layers.mask, layers.values);
  else nativeWarp.module.warp(data, width, height, from, to, triangles, out);
}

/** Which triangle drew each pixel: see warpPiecewiseAffine. */
export interface Layers {
  mask: Uint8Array;
  values: Uint8Array;
}

/** warpPiecewiseAffine's loop in JavaScript (native/warp.cc is its copy). */
export function warpPiecewiseAffineInJs(
  source: RgbImage,
  from: Float64Array,
  to: Float64Array,
  triangles: Uint32Array,
  out: Uint8Array,
  layers?: Layers,
): void {
  const { width, height, data } = source;
  const maxX = width - 1;
  const maxY = height - 1;
  const rowStride = width * 3;
  const mask = layers?.mask;
  // The hot loop, kept in the compact layout its unpacking reads best in.
  // prettier-ignore
  for (let t = 0; t < triangles.length; t += 3) {
    const i0 = triangles[t]! * 2, i1 = triangles[t + 1]! * 2, i2 = triangles[t + 2]! * 2;
    const layer = layers ? layers.values[t / 3]! : 0;
    const x0 = to[i0]!, y0 = to[i0 + 1]!, x1 = to[i1]!, y1 = to[i1 + 1]!, x2 = to[i2]!, y2 = to[i2 + 1]!;
    const u0 = from[i0]!, v0 = from[i0 + 1]!, u1 = from[i1]!, v1 = from[i1 + 1]!, u2 = from[i2]!, v2 = from[i2 + 1]!;
    if (
      Math.abs(x0 - u0) < STILL && Math.abs(y0 - v0) < STILL &&
      Math.abs(x1 - u1) < STILL && Math.abs(y1 - v1) < STILL &&
      Math.abs(x2 - u2) < STILL && Math.abs(y2 - v2) < STILL
    ) continue;
    // A vertex that is not a finite number draws nothing (as in native/warp.cc, where NaN would index the image at random).
    if (!Number.isFinite(x0 + y0 + x1 + y1 + x2 + y2 + u0 + v0 + u1 + v1 + u2 + v2)) continue;
    const dx1 = x1 - x0, dy1 = y1 - y0, dx2 = x2 - x0, dy2 = y2 - y0;
    const det = dx1 * dy2 - dx2 * dy1;
    if (Math.abs(det) < 1e-9) continue;
    const inv = 1 / det;
    // Barycentric l1, l2 of output point (x, y) are affine in x and y: l = ex*x + ey*y + e0.
    const l1x = dy2 * inv, l1y = -dx2 * inv, l1c = -(l1x * x0 + l1y * y0);
    const l2x = -dy1 * inv, l2y = dx1 * inv, l2c = -(l2x * x0 + l2y * y0);
    const du1 = u1 - u0, du2 = u2 - u0, dv1 = v1 - v0, dv2 = v2 - v0;
    // Source point minus the half-pixel, so it indexes the source grid directly.
    const ux = l1x * du1 + l2x * du2, uy = l1y * du1 + l2y * du2, uc = u0 - 0.5 + l1c * du1 + l2c * du2;
    const vx = l1x * dv1 + l2x * dv2, vy = l1y * dv1 + l2y * dv2, vc = v0 - 0.5 + l1c * dv1 + l2c * dv2;
    // Pixels whose centre lies inside (with a sliver of tolerance so shared edges leave no gaps).
    const eps = 1e-6;
    const rowStart = Math.max(0, Math.ceil(Math.min(y0, y1, y2) - 0.5 - eps));
    const rowEnd = Math.min(maxY, Math.floor(Math.max(y0, y1, y2) - 0.5 + eps));
    const colStart = Math.max(0, Math.ceil(Math.min(x0, x1, x2) - 0.5 - eps));
    const colEnd = Math.min(maxX, Math.floor(Math.max(x0, x1, x2) - 0.5 + eps));
    for (let row = rowStart; row <= rowEnd; row++) {
      const cy = row + 0.5;
      // The row's span inside the triangle, solved from the three barycentric bounds (each
      // linear in x) and widened by a pixel: the per-pixel test below still decides, but no
      // longer walks the empty corners of the bounding box.
      const r1 = l1y * cy + l1c;
      const r2 = l2y * cy + l2c;
      let xMin = colStart + 0.5;
      let xMax = colEnd + 0.5;
      if (l1x > 0) xMin = Math.max(xMin, (-eps - r1) / l1x);
      else if (l1x < 0) xMax = Math.min(xMax, (-eps - r1) / l1x);
      if (l2x > 0) xMin = Math.max(xMin, (-eps - r2) / l2x);
      else if (l2x < 0) xMax = Math.min(xMax, (-eps - r2) / l2x);
      const l12x = l1x + l2x;
      if (l12x > 0) xMax = Math.min(xMax, (1 + eps - r1 - r2) / l12x);
      else if (l12x < 0) xMin = Math.max(xMin, (1 + eps - r1 - r2) / l12x);
      if (!(xMin <= xMax + 2)) continue;
      const first = Math.max(colStart, Math.ceil(xMin - 0.5) - 1);
      const last = Math.min(colEnd, Math.floor(xMax - 0.5) + 1);
      const cx = first + 0.5;
      let l1 = l1x * cx + r1;
      let l2 = l2x * cx + r2;
      let u = ux * cx + uy * cy + uc;
      let v = vx * cx + vy * cy + vc;
      let o = (row * width + first) * 3;
      for (let col = first; col <= last; col++, l1 += l1x, l2 += l2x, u += ux, v += vx, o += 3) {
        if (l1 < -eps || l2 < -eps || l1 + l2 > 1 + eps) continue;
        const sx = u < 0 ? 0 : u > maxX ? maxX : u;
        const sy = v < 0 ? 0 : v > maxY ? maxY : v;
        const ix = sx | 0;
        const iy = sy | 0;
        // The sample's position within its pixel to the nearest 1/256 px (256: the next pixel), so
        // the blend is integer arithmetic and a whole-pixel shift copies pixels exactly.
        const fx = ((sx - ix) * 256 + 0.5) | 0;
        const fy = ((sy - iy) * 256 + 0.5) | 0;
        const p00 = (iy * width + ix) * 3;
        const p01 = ix < maxX ? p00 + 3 : p00;
        const p10 = iy < maxY ? p00 + rowStride : p00;
        const p11 = ix < maxX ? p10 + 3 : p10;
        // Weights summing to 65536, rounded half up.
        const w00 = (256 - fx) * (256 - fy),
          w01 = fx * (256 - fy),
          w10 = (256 - fx) * fy,
          w11 = fx * fy;
        out[o] = (w00 * data[p00]! + w01 * data[p01]! + w10 * data[p10]! + w11 * data[p11]! + 32768) >> 16;
        out[o + 1] = (w00 * data[p00 + 1]! + w01 * data[p01 + 1]! + w10 * data[p10 + 1]! + w11 * data[p11 + 1]! + 32768) >> 16;
        out[o + 2] = (w00 * data[p00 + 2]! + w01 * data[p01 + 2]! + w10 * data[p10 + 2]! + w11 * data[p11 + 2]! + 32768) >> 16;
        if (layer) mask![o / 3] = layer;
      }
    }
  }
}
