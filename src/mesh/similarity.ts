/**
 * A 2-D similarity transform (rotation, uniform scale, translation):
 * x' = a*x - b*y + tx, y' = b*x + a*y + ty. Scale is hypot(a, b), rotation atan2(b, a).
 */
export interface Similarity {
  a: number;
  b: number;
  tx: number;
  ty: number;
}

export const IDENTITY: Similarity = { a: 1, b: 0, tx: 0, ty: 0 };

/**
 * Least-squares similarity taking the `indices` points of `from` onto those of `to`
 * (Umeyama's closed form in 2-D). Both arrays hold interleaved x, y.
 */
export function fitSimilarity(from: ArrayLike<number>, to: ArrayLike<number>, indices: readonly number[]): Similarity {
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
  const a = norm > 0 ? dot / norm : 1;
  const b = norm > 0 ? cross / norm : 0;
  return { a, b, tx: gx - (a * fx - b * fy), ty: gy - (b * fx + a * fy) };
}

export function invert(s: Similarity): Similarity {
  const d = s.a * s.a + s.b * s.b;
  const a = s.a / d;
  const b = -s.b / d;
  return { a, b, tx: -(a * s.tx - b * s.ty), ty: -(b * s.tx + a * s.ty) };
}

/** The transform applying `first`, then `second`. */
export function compose(second: Similarity, first: Similarity): Similarity {
  return {
    a: second.a * first.a - second.b * first.b,
    b: second.b * first.a + second.a * first.b,
    tx: second.a * first.tx - second.b * first.ty + second.tx,
    ty: second.b * first.tx + second.a * first.ty + second.ty,
  };
}

export function scaleOf(s: Similarity): number {
  return Math.hypot(s.a, s.b);
}
