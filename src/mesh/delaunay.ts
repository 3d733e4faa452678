/**
 * Delaunay triangulation (Bowyer-Watson) of 2-D points given as interleaved x, y. Returns
 * vertex index triples. Meant for a few hundred points built once per source photo: each
 * insertion scans all triangles, O(n^2), which is a few milliseconds at that size.
 * Coincident points (closer than 1e-9 px) are left out of the result.
 */
export function delaunay(xy: ArrayLike<number>): Uint32Array {
  const count = xy.length / 2;
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  for (let i = 0; i < count; i++) {
    minX = Math.min(minX, xy[2 * i]!);
    maxX = Math.max(maxX, xy[2 * i]!);
    minY = Math.min(minY, xy[2 * i + 1]!);
    maxY = Math.max(maxY, xy[2 * i + 1]!);
  }
  const span = Math.max(maxX - minX, maxY - minY, 1);
  const midX = (minX + maxX) / 2;
  const midY = (minY + maxY) / 2;
  // Points plus a super-triangle far enough out that it never touches a circumcircle of real points.
  const px = new Float64Array(count + 3);
  const py = new Float64Array(count + 3);
  for (let i = 0; i < count; i++) {
    px[i] = xy[2 * i]!;
    py[i] = xy[2 * i + 1]!;
  }
  px[count] = midX - 1000 * span;
  py[count] = midY - 600 * span;
  px[count + 1] = midX + 1000 * span;
  py[count + 1] = midY - 600 * span;
  px[count + 2] = midX;
  py[count + 2] = midY + 1000 * span;

  interface Triangle {
    a: number;
    b: number;
    c: number;
    cx: number;
    cy: number;
    r2: number;
  }
  const make = (a: number, b: number, c: number): Triangle => {
    const ax = px[a]!,
      ay = py[a]!,
      bx = px[b]!,
      by = py[b]!,
      cx = px[c]!,
      cy = py[c]!;
    const d = 2 * (ax * (by - cy) + bx * (cy - ay) + cx * (ay - by));
    if (d === 0) return { a, b, c, cx: 0, cy: 0, r2: Infinity };
    const a2 = ax * ax + ay * ay,
      b2 = bx * bx + by * by,
      c2 = cx * cx + cy * cy;
    const ux = (a2 * (by - cy) + b2 * (cy - ay) + c2 * (ay - by)) / d;
    const uy = (a2 * (cx - bx) + b2 * (ax - cx) + c2 * (bx - ax)) / d;
    return { a, b, c, cx: ux, cy: uy, r2: (ax - ux) ** 2 + (ay - uy) ** 2 };
  };

  let triangles: Triangle[] = [make(count, count + 1, count + 2)];
  for (let p = 0; p < count; p++) {
    const x = px[p]!;
    const y = py[p]!;
    let duplicate = false;
    for (let q = 0; q < p && !duplicate; q++) duplicate = Math.abs(px[q]! - x) < 1e-9 && Math.abs(py[q]! - y) < 1e-9;
    if (duplicate) continue;
    const kept: Triangle[] = [];
    const edges = new Map<number, [number, number]>();
    const stride = count + 3;
    for (const t of triangles) {
      if ((x - t.cx) ** 2 + (y - t.cy) ** 2 < t.r2) {
        for (const [u, v] of [
          [t.a, t.b],
          [t.b, t.c],
          [t.c, t.a],
        ] as const) {
          const key = Math.min(u, v) * stride + Math.max(u, v);
          if (edges.has(key)) edges.delete(key);
          else edges.set(key, [u, v]);
        }
      } else {
        kept.push(t);
      }
    }
    for (const [u, v] of edges.values()) kept.push(make(u, v, p));
    triangles = kept;
  }
  const real = triangles.filter((t) => t.a < count && t.b < count && t.c < count);
  const out = new Uint32Array(real.length * 3);
  real.forEach((t, i) => {
    out[3 * i] = t.a;
    out[3 * i + 1] = t.b;
    out[3 * i + 2] = t.c;
  });
  return out;
}
