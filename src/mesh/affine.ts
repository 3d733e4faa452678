/** A 2-D affine transform: x' = a*x + b*y + tx, y' = c*x + d*y + ty. */
export interface Affine {
  a: number;
  b: number;
  c: number;
  d: number;
  tx: number;
  ty: number;
}

/**
 * Least-squares similarity (rotation, uniform scale, translation) taking the `indices` points
 * of `from` onto those of `to` (Umeyama's closed form in 2-D). Arrays hold interleaved x, y.
 */
export function fitSimilarity(from: ArrayLike<number>, to: ArrayLike<number>, indices: readonly number[]): Affine {
  let fx = 0, fy = 0, gx = 0, gy = 0;
  for (const i of indices) {
    fx += from[2 * i]!;
    fy += from[2 * i + 1]!;
    gx += to[2 * i]!;
    gy += to[2 * i + 1]!;
  }
  const n = indices.length;
  fx /= n;
  fy /= n;
  gx /= n;
  gy /= n;
  let dot = 0, cross = 0, norm = 0;
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
  return { a: s, b: -r, c: r, d: s, tx: gx - (s * fx - r * fy), ty: gy - (r * fx + s * fy) };
}

/**
 * Weighted least-squares affine transform taking the given [index, weight] points of `from`
 * onto those of `to`; undefined when the points are degenerate (collinear).
 */
export function fitAffine(from: ArrayLike<number>, to: ArrayLike<number>, weighted: readonly (readonly [number, number])[]): Affine | undefined {
  // Centre both point sets first: the normal equations are then 2x2 and well conditioned.
  let n = 0, fx = 0, fy = 0, gx = 0, gy = 0;
  for (const [i, w] of weighted) {
    n += w;
    fx += w * from[2 * i]!;
    fy += w * from[2 * i + 1]!;
    gx += w * to[2 * i]!;
    gy += w * to[2 * i + 1]!;
  }
  if (!(n > 0)) return undefined;
  fx /= n;
  fy /= n;
  gx /= n;
  gy /= n;
  let sxx = 0, sxy = 0, syy = 0, sxu = 0, syu = 0, sxv = 0, syv = 0;
  for (const [i, w] of weighted) {
    const x = from[2 * i]! - fx, y = from[2 * i + 1]! - fy, u = to[2 * i]! - gx, v = to[2 * i + 1]! - gy;
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
  const c = (sxv * syy - syv * sxy) / det;
  const d = (syv * sxx - sxv * sxy) / det;
  return { a, b, c, d, tx: gx - a * fx - b * fy, ty: gy - c * fx - d * fy };
}

export function invert(t: Affine): Affine {
  const det = t.a * t.d - t.b * t.c;
  const a = t.d / det, b = -t.b / det, c = -t.c / det, d = t.a / det;
  return { a, b, c, d, tx: -(a * t.tx + b * t.ty), ty: -(c * t.tx + d * t.ty) };
}

/** The transform applying `first`, then `second`. */
export function compose(second: Affine, first: Affine): Affine {
  return {
    a: second.a * first.a + second.b * first.c,
    b: second.a * first.b + second.b * first.d,
    c: second.c * first.a + second.d * first.c,
    d: second.c * first.b + second.d * first.d,
    tx: second.a * first.tx + second.b * first.ty + second.tx,
    ty: second.c * first.tx + second.d * first.ty + second.ty,
  };
}

/** How much the transform scales areas, as a length ratio. */
export function scaleOf(t: Affine): number {
  return Math.sqrt(Math.abs(t.a * t.d - t.b * t.c));
}
