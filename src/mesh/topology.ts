import type { Face } from '../face/detector.js';
import type { RgbImage } from '../types.js';
import { delaunay } from './delaunay.js';
import { FACE_OVAL, INNER_LIP_PAIRS, MESH_POINTS } from './regions.js';
import { FACE_MESH_TRIANGLES } from './tessellation.js';

/**
 * Rings of anchor points around the face outline (scaled from the face centre) and how much
 * of the head's motion each follows: hair, ears and neck move with the head, fading out so
 * the background beyond the last ring stays exactly still.
 */
const ANCHOR_RINGS = [
  { scale: 1.35, follow: 1 },
  { scale: 2, follow: 0.55 },
  { scale: 2.8, follow: 0 },
] as const;

/** Fixed anchors per image side, so the mesh covers the whole frame and its border never moves. */
const BORDER_STEPS = 8;

export interface WarpMesh {
  /** Interleaved x, y on the photo: the 468 landmarks, then the anchors. */
  vertices: Float64Array;
  /** Per anchor (vertex MESH_POINTS + k): the share of the head's motion it follows. */
  follow: Float64Array;
  /** Vertex index triples in drawing order (see meshTriangles). */
  triangles: Uint32Array;
}

/** The warp mesh of a photo: its face landmarks plus anchors around the head and along the border. */
export function warpMesh(face: Face, image: RgbImage): WarpMesh {
  const points = new Float64Array(MESH_POINTS * 2);
  const depth = new Float64Array(MESH_POINTS);
  for (let i = 0; i < MESH_POINTS; i++) {
    points[2 * i] = face.landmarks[3 * i]!;
    points[2 * i + 1] = face.landmarks[3 * i + 1]!;
    depth[i] = face.landmarks[3 * i + 2]!;
  }
  const anchors = anchorPoints(points, image);
  const vertices = new Float64Array(points.length + anchors.points.length);
  vertices.set(points);
  vertices.set(anchors.points, points.length);
  return { vertices, follow: anchors.follow, triangles: meshTriangles(vertices, depth) };
}

/**
 * Triangles of the warp mesh over `vertices` (interleaved x, y: the 468 landmarks, then anchor
 * points outside the face), in drawing order: a Delaunay triangulation of the face outline and
 * the anchors outside it, a strip across the mouth opening from upper to lower inner lip, then
 * the Face Mesh tessellation inside the outline from the farthest triangle to the nearest by
 * `depth` (the landmarks' z, smaller is nearer). When the driver turns its head far, the far
 * cheek folds under the nose: drawn in this order the nearer surface covers it, as it would.
 */
function meshTriangles(vertices: Float64Array, depth: ArrayLike<number>): Uint32Array {
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

/** Anchor rings around the face outline and fixed points along the image border. */
function anchorPoints(points: Float64Array, image: RgbImage): { points: Float64Array; follow: Float64Array } {
  let cx = 0;
  let cy = 0;
  for (const i of FACE_OVAL) {
    cx += points[2 * i]!;
    cy += points[2 * i + 1]!;
  }
  cx /= FACE_OVAL.length;
  cy /= FACE_OVAL.length;
  const xy: number[] = [];
  const follow: number[] = [];
  // Ring points must stay clear of the border anchors, or triangles there degenerate.
  const margin = 2;
  for (const ring of ANCHOR_RINGS) {
    for (const i of FACE_OVAL) {
      const x = cx + (points[2 * i]! - cx) * ring.scale;
      const y = cy + (points[2 * i + 1]! - cy) * ring.scale;
      if (x < margin || y < margin || x > image.width - margin || y > image.height - margin) continue;
      xy.push(x, y);
      follow.push(ring.follow);
    }
  }
  for (let k = 0; k < BORDER_STEPS; k++) {
    const t = k / BORDER_STEPS;
    xy.push(t * image.width, 0, image.width, t * image.height, (1 - t) * image.width, image.height, 0, (1 - t) * image.height);
    follow.push(0, 0, 0, 0);
  }
  return { points: Float64Array.from(xy), follow: Float64Array.from(follow) };
}
