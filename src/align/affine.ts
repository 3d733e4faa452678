import type { Point } from '../types.js';

/**
 * A 2D affine transform: x' = a*x + b*y + c, y' = d*x + e*y + f.
 *
 * Coordinates are continuous pixel coordinates: pixel (i, j) covers [i, i+1) x [j, j+1) and its
 * centre is (i + 0.5, j + 0.5), the same convention as face boxes and landmarks.
 */
export interface Affine {
  a: number;
  b: number;
  c: number;
  d: number;
  e: number;
  f: number;
}

export const IDENTITY: Affine = { a: 1, b: 0, c: 0, d: 0, e: 1, f: 0 };

export function translation(dx: number, dy: number): Affine {
  return { a: 1, b: 0, c: dx, d: 0, e: 1, f: dy };
}

export function scaling(sx: number, sy: number = sx): Affine {
  return { a: sx, b: 0, c: 0, d: 0, e: sy, f: 0 };
}

/** Rotation by `degrees` about the origin, clockwise on screen (image y points down). */
export function rotation(degrees: number): Affine {
  const radians = (degrees * Math.PI) / 180;
  const cos = Math.cos(radians);
  const sin = Math.sin(radians);
  return { a: cos, b: -sin, c: 0, d: sin, e: cos, f: 0 };
}

/** Rotation by `degrees` about `centre`. */
export function rotationAbout(degrees: number, centre: Point): Affine {
  return compose(translation(centre.x, centre.y), rotation(degrees), translation(-centre.x, -centre.y));
}

/** The transform that applies the last argument first: compose(p, q)(x) = p(q(x)). */
export function compose(...transforms: Affine[]): Affine {
  let result = IDENTITY;
  for (const t of transforms) {
    result = {
      a: result.a * t.a + result.b * t.d,
      b: result.a * t.b + result.b * t.e,
      c: result.a * t.c + result.b * t.f + result.c,
      d: result.d * t.a + result.e * t.d,
      e: result.d * t.b + result.e * t.e,
      f: result.d * t.c + result.e * t.f + result.f,
    };
  }
  return result;
}

export function invert(t: Affine): Affine {
  const det = t.a * t.e - t.b * t.d;
  if (!Number.isFinite(det) || Math.abs(det) < 1e-12) throw new RangeError('affine transform is not invertible');
  const a = t.e / det;
  const b = -t.b / det;
  const d = -t.d / det;
  const e = t.a / det;
  return { a, b, c: -(a * t.c + b * t.f), d, e, f: -(d * t.c + e * t.f) };
}

export function apply(t: Affine, p: Point): Point {
  return { x: t.a * p.x + t.b * p.y + t.c, y: t.d * p.x + t.e * p.y + t.f };
}

/** The mean linear scale of a transform (square root of its area factor). */
export function scaleOf(t: Affine): number {
  return Math.sqrt(Math.abs(t.a * t.e - t.b * t.d));
}

/**
 * Least-squares similarity (rotation, uniform scale, translation) taking the `indices` points
 * of `from` onto those of `to` (Umeyama's closed form in 2-D). Arrays hold interleaved x, y.
 */
export function fitSimilarity(from: ArrayLike<number>, to: ArrayLike<number>, indices: readonly number[]): Affine {
  const unitWeights = indices.map((i) => [i, 1] as const);
  const { fx, fy, gx, gy } = weightedMeans(from, to, unitWeights);
  let dot = 0,
    cross = 0,
    norm = 0;
  for (const i of indices) {
    const x = from[2 * i]! - fx;
    const y = from[2 * i + 1]! - fy;
    const u = to[2 * i]! - gx;
    const v = to[2 * i + 1]! - gy;
    dot += x * u + y * v;
    cross += x * v - y * u;
    norm += x * x + y * y;
  }
  const s = norm > 0 ? dot / norm : 1;
  const r = norm > 0 ? cross / norm : 0;
  return { a: s, b: -r, c: gx - (s * fx - r * fy), d: r, e: s, f: gy - (r * fx + s * fy) };
}

/**
 * Weighted least-squares affine transform taking the given [index, weight] points of `from`
 * onto those of `to`; undefined when the points are degenerate (collinear).
 */
export function fitAffine(
  from: ArrayLike<number>,
  to: ArrayLike<number>,
  weighted: readonly (readonly [number, number])[],
): Affine | undefined {
  // Centre both point sets first: the normal equations are then 2x2 and well conditioned.
  const { weight, fx, fy, gx, gy } = weightedMeans(from, to, weighted);
  if (!(weight > 0)) return undefined;
  let sxx = 0,
    sxy = 0,
    syy = 0,
    sxu = 0,
    syu = 0,
    sxv = 0,
    syv = 0;
  for (const [i, w] of weighted) {
    const x = from[2 * i]! - fx,
      y = from[2 * i + 1]! - fy,
      u = to[2 * i]! - gx,
      v = to[2 * i + 1]! - gy;
    sxx += w * x * x;
    sxy += w * x * y;
    syy += w * y * y;
    sxu += w * x * u;
    syu += w * y * u;
    sxv += w * x * v;
    syv += w * y * v;
  }
  const det = sxx * syy - sxy * sxy;
  if (!(Math.abs(det) > 1e-9 * (sxx * syy || 1))) return undefined;
  const a = (sxu * syy - syu * sxy) / det;
  const b = (syu * sxx - sxu * sxy) / det;
  const d = (sxv * syy - syv * sxy) / det;
  const e = (syv * sxx - sxv * sxy) / det;
  return { a, b, c: gx - a * fx - b * fy, d, e, f: gy - d * fx - e * fy };
}

/** The weighted means (fx, fy) of the listed points of `from` and (gx, gy) of `to`, and the total weight. */
function weightedMeans(
  from: ArrayLike<number>,
  to: ArrayLike<number>,
  weighted: readonly (readonly [number, number])[],
): { weight: number; fx: number; fy: number; gx: number; gy: number } {
  const sum = { weight: 0, fx: 0, fy: 0, gx: 0, gy: 0 };
  for (const [i, w] of weighted) {
    sum.weight += w;
    sum.fx += w * from[2 * i]!;
    sum.fy += w * from[2 * i + 1]!;
    sum.gx += w * to[2 * i]!;
    sum.gy += w * to[2 * i + 1]!;
  }
  const { weight } = sum;
  return { weight, fx: sum.fx / weight, fy: sum.fy / weight, gx: sum.gx / weight, gy: sum.gy / weight };
}

/** Axis-aligned bounds of the image of a width x height rectangle (from the origin) under `t`. */
export function transformedBounds(
  t: Affine,
  width: number,
  height: number,
): { x0: number; y0: number; x1: number; y1: number } {
  const corners = [
    apply(t, { x: 0, y: 0 }),
    apply(t, { x: width, y: 0 }),
    apply(t, { x: 0, y: height }),
    apply(t, { x: width, y: height }),
  ];
  return {
    x0: Math.min(...corners.map((p) => p.x)),
    y0: Math.min(...corners.map((p) => p.y)),
    x1: Math.max(...corners.map((p) => p.x)),
    y1: Math.max(...corners.map((p) => p.y)),
  };
}

/** Interleaved 8-bit pixels with any number of channels (RgbImage has 3; a mask has 1). */
export interface PixelImage {
  width: number;
  height: number;
  data: Uint8Array;
  /** Default 3. */
  channels?: number;
}

export interface WarpOptions {
  /**
   * What a sample outside the source reads: the nearest edge pixel ('replicate', the default:
   * no hard border appears) or the `fill` value ('constant').
   */
  border?: 'replicate' | 'constant';
  /** Per-channel value for border 'constant'. Default 0 in every channel. */
  fill?: readonly number[];
  /** Also return which output pixels were sampled from inside the source. */
  coverage?: boolean;
  /**
   * Samples per output pixel along each axis, averaged, so that shrinking does not alias.
   * 'auto' (the default) uses ceil(source pixels per output pixel), i.e. 1 when not shrinking.
   */
  supersample?: number | 'auto';
}

export interface WarpResult<T extends PixelImage> {
  image: T;
  /** 1 where the output pixel centre maps inside the source rectangle, else 0 (when asked). */
  coverage?: Uint8Array;
}

/**
 * Resamples `src` into a width x height image: output pixel centre p reads `src` at
 * dstToSrc(p), bilinearly interpolated. One pass over the output, no per-pixel allocation.
 */
export function warpAffine<T extends PixelImage>(
  src: T,
  dstToSrc: Affine,
  width: number,
  height: number,
  options: WarpOptions = {},
): WarpResult<T> {
  const factor =
    options.supersample === undefined || options.supersample === 'auto'
      ? Math.ceil(scaleOf(dstToSrc) - 1e-6)
      : Math.round(options.supersample);
  if (factor > 1) return warpSupersampled(src, dstToSrc, width, height, factor, options);
  const channels = src.channels ?? 3;
  const sw = src.width;
  const sh = src.height;
  const sdata = src.data;
  const out = new Uint8Array(width * height * channels);
  const coverage = options.coverage ? new Uint8Array(width * height) : undefined;
  const constant = options.border === 'constant';
  const fill = new Float64Array(channels);
  for (let ch = 0; ch < channels; ch++) fill[ch] = options.fill?.[ch] ?? 0;
  const { a, b, c, d, e, f } = dstToSrc;
  const maxX = sw - 1;
  const maxY = sh - 1;
  const rowStride = sw * channels;

  for (let oy = 0; oy < height; oy++) {
    // Source position of the output pixel centre, shifted so that integers are source pixel centres.
    let fx = a * 0.5 + b * (oy + 0.5) + c - 0.5;
    let fy = d * 0.5 + e * (oy + 0.5) + f - 0.5;
    let o = oy * width * channels;
    for (let ox = 0; ox < width; ox++, fx += a, fy += d, o += channels) {
      const inside = fx >= -0.5 && fy >= -0.5 && fx <= maxX + 0.5 && fy <= maxY + 0.5;
      if (coverage && inside) coverage[oy * width + ox] = 1;
      let x0 = Math.floor(fx);
      let y0 = Math.floor(fy);
      const wx = fx - x0;
      const wy = fy - y0;
      let x1 = x0 + 1;
      let y1 = y0 + 1;
      if (constant) {
        if (x0 >= 0 && y0 >= 0 && x1 <= maxX && y1 <= maxY) {
          const p00 = y0 * rowStride + x0 * channels;
          const p10 = p00 + channels;
          const p01 = p00 + rowStride;
          const p11 = p01 + channels;
          for (let ch = 0; ch < channels; ch++) {
            const top = sdata[p00 + ch]! + (sdata[p10 + ch]! - sdata[p00 + ch]!) * wx;
            const bottom = sdata[p01 + ch]! + (sdata[p11 + ch]! - sdata[p01 + ch]!) * wx;
            out[o + ch] = top + (bottom - top) * wy + 0.5;
          }
        } else if (x1 < 0 || y1 < 0 || x0 > maxX || y0 > maxY) {
          for (let ch = 0; ch < channels; ch++) out[o + ch] = fill[ch]!;
        } else {
          // Straddling the edge: taps outside read the fill value.
          const in00 = x0 >= 0 && y0 >= 0;
          const in10 = x1 <= maxX && y0 >= 0;
          const in01 = x0 >= 0 && y1 <= maxY;
          const in11 = x1 <= maxX && y1 <= maxY;
          for (let ch = 0; ch < channels; ch++) {
            const v00 = in00 ? sdata[y0 * rowStride + x0 * channels + ch]! : fill[ch]!;
            const v10 = in10 ? sdata[y0 * rowStride + x1 * channels + ch]! : fill[ch]!;
            const v01 = in01 ? sdata[y1 * rowStride + x0 * channels + ch]! : fill[ch]!;
            const v11 = in11 ? sdata[y1 * rowStride + x1 * channels + ch]! : fill[ch]!;
            const top = v00 + (v10 - v00) * wx;
            const bottom = v01 + (v11 - v01) * wx;
            out[o + ch] = top + (bottom - top) * wy + 0.5;
          }
        }
        continue;
      }
      // Replicate: clamp the taps to the nearest edge pixel.
      if (x0 < 0) x0 = 0;
      else if (x0 > maxX) x0 = maxX;
      if (x1 < 0) x1 = 0;
      else if (x1 > maxX) x1 = maxX;
      if (y0 < 0) y0 = 0;
      else if (y0 > maxY) y0 = maxY;
      if (y1 < 0) y1 = 0;
      else if (y1 > maxY) y1 = maxY;
      const r0 = y0 * rowStride;
      const r1 = y1 * rowStride;
      const c0 = x0 * channels;
      const c1 = x1 * channels;
      for (let ch = 0; ch < channels; ch++) {
        const v00 = sdata[r0 + c0 + ch]!;
        const v01 = sdata[r1 + c0 + ch]!;
        const top = v00 + (sdata[r0 + c1 + ch]! - v00) * wx;
        const bottom = v01 + (sdata[r1 + c1 + ch]! - v01) * wx;
        out[o + ch] = top + (bottom - top) * wy + 0.5;
      }
    }
  }
  const image = { ...src, width, height, data: out } as T;
  return coverage ? { image, coverage } : { image };
}

/**
 * Shrinking: warps at `factor` times the resolution in both axes, one row band at a time, and
 * box-averages each factor x factor block. Still a single resampling of the source.
 */
function warpSupersampled<T extends PixelImage>(
  src: T,
  dstToSrc: Affine,
  width: number,
  height: number,
  factor: number,
  options: WarpOptions,
): WarpResult<T> {
  const channels = src.channels ?? 3;
  const out = new Uint8Array(width * height * channels);
  const coverage = options.coverage ? new Uint8Array(width * height) : undefined;
  const fineWidth = width * factor;
  const sums = new Float64Array(width * channels);
  const hits = coverage ? new Uint16Array(width) : undefined;
  const area = factor * factor;
  for (let oy = 0; oy < height; oy++) {
    // Fine pixel (u, v) covers output [u/factor, (u+1)/factor): fine->output is a scaling by 1/factor.
    const fineToSrc = compose(dstToSrc, translation(0, oy), scaling(1 / factor));
    const band = warpAffine(src, fineToSrc, fineWidth, factor, { ...options, supersample: 1 });
    sums.fill(0);
    hits?.fill(0);
    const fine = band.image.data;
    for (let v = 0; v < factor; v++) {
      for (let u = 0; u < fineWidth; u++) {
        const ox = (u / factor) | 0;
        const from = (v * fineWidth + u) * channels;
        for (let ch = 0; ch < channels; ch++) sums[ox * channels + ch] = sums[ox * channels + ch]! + fine[from + ch]!;
        if (hits && band.coverage![v * fineWidth + u]) hits[ox]!++;
      }
    }
    const row = oy * width * channels;
    for (let i = 0; i < width * channels; i++) out[row + i] = sums[i]! / area + 0.5;
    if (coverage && hits) for (let ox = 0; ox < width; ox++) coverage[oy * width + ox] = hits[ox]! * 2 >= area ? 1 : 0;
  }
  const image = { ...src, width, height, data: out } as T;
  return coverage ? { image, coverage } : { image };
}
