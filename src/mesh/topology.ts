import { delaunay } from './delaunay.js';
import { FACE_OVAL, INNER_LIP_PAIRS, MESH_POINTS } from './regions.js';
import { FACE_MESH_TRIANGLES } from './tessellation.js';

/**
 * Triangles of the warp mesh over `vertices` (interleaved x, y: the 468 landmarks, then anchor
 * points outside the face), in drawing order: a Delaunay triangulation of the face outline and
 * the anchors outside it, a strip across the mouth opening from upper to lower inner lip, then
 * the Face Mesh tessellation inside the outline from the farthest triangle to the nearest by
 * `depth` (the landmarks' z, smaller is nearer). When the driver turns its head far, the far
 * cheek folds under the nose: drawn in this order the nearer surface covers it, as it would.
 */
export function meshTriangles(vertices: Float64Array, depth: ArrayLike<number>): Uint32Array {
  const triangles: number[] = [];
  // Outside the face: Delaunay over the outline and the anchors, without the triangles that
  // fall inside the outline (the tessellation covers those).
  const outer = [...FACE_OVAL, ...Array.from({ length: vertices.length / 2 - MESH_POINTS }, (_, k) => MESH_POINTS + k)];
  const xy = new Float64Array(outer.length * 2);
  outer.forEach((vertex, k) => {
    xy[2 * k] = vertices[2 * vertex]!;
    xy[2 * k + 1] = vertices[2 * vertex + 1]!;
  });
  const outline = xy.subarray(0, FACE_OVAL.length * 2);
  const around = delaunay(xy);
  for (let t = 0; t < around.length; t += 3) {
    const [a, b, c] = [around[t]!, around[t + 1]!, around[t + 2]!];
    if (a < FACE_OVAL.length && b < FACE_OVAL.length && c < FACE_OVAL.length) {
      const cx = (xy[2 * a]! + xy[2 * b]! + xy[2 * c]!) / 3;
      const cy = (xy[2 * a + 1]! + xy[2 * b + 1]! + xy[2 * c + 1]!) / 3;
      if (insidePolygon(outline, cx, cy)) continue;
    }
    triangles.push(outer[a]!, outer[b]!, outer[c]!);
  }
  // The mouth: quads between facing inner-lip points, from corner to corner.
  const upper = [78, ...INNER_LIP_PAIRS.map(([u]) => u), 308];
  const lower = [78, ...INNER_LIP_PAIRS.map(([, l]) => l), 308];
  for (let i = 0; i + 1 < upper.length; i++) {
    if (upper[i + 1] !== lower[i + 1]) triangles.push(upper[i]!, upper[i + 1]!, lower[i + 1]!);
    if (upper[i] !== lower[i]) triangles.push(upper[i]!, lower[i + 1]!, lower[i]!);
  }
  const face = Array.from({ length: FACE_MESH_TRIANGLES.length / 3 }, (_, t) => t);
  const meanDepth = (t: number) => depth[FACE_MESH_TRIANGLES[3 * t]!]! + depth[FACE_MESH_TRIANGLES[3 * t + 1]!]! + depth[FACE_MESH_TRIANGLES[3 * t + 2]!]!;
  face.sort((s, t) => meanDepth(t) - meanDepth(s));
  for (const t of face) triangles.push(FACE_MESH_TRIANGLES[3 * t]!, FACE_MESH_TRIANGLES[3 * t + 1]!, FACE_MESH_TRIANGLES[3 * t + 2]!);
  return Uint32Array.from(triangles);
}

function insidePolygon(poly: ArrayLike<number>, x: number, y: number): boolean {
  let result = false;
  for (let i = 0, j = poly.length - 2; i < poly.length; j = i, i += 2) {
    const yi = poly[i + 1]!, yj = poly[j + 1]!;
    if (yi > y !== yj > y && x < ((poly[j]! - poly[i]!) * (y - yi)) / (yj - yi) + poly[i]!) result = !result;
  }
  return result;
}
