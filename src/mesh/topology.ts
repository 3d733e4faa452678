import { LANDMARK_COUNT, type Face } from '../face/detector.js';
import { IMAGE_LEFT_EYE_CONTOUR, IMAGE_RIGHT_EYE_CONTOUR, LANDMARKS } from '../face/landmarks.js';
import type { RgbImage } from '../types.js';
import { delaunay } from './delaunay.js';
import { insidePolygon } from './polygon.js';
import { faceDown, landmarks3d } from './head.js';
import { FACE_OVAL, INNER_LIP_PAIRS, MESH_POINTS } from './regions.js';
import { FACE_MESH_TRIANGLES } from './tessellation.js';

/**
 * Rings of anchor points around the face outline (scaled from the face centre): the head proxy.
 * `follow` is how much of the head's motion each follows: forehead, crown, hair and ears move
 * with the head as one body, the neck below the jaw by `neckFollow` (see NECK); the outer ring
 * (neck, shoulders, what lies beside the head) follows weakly, and beyond the last ring the
 * background stays exactly still. `depth` places a ring on the head's 3D surface: from the
 * outline point's own depth (0) to the depth of the head's silhouette (1), where the skull turns
 * away from the camera, so a turn swings the face across the head, not the head's outline with
 * it. The depth grows gradually ring by ring: a jump between neighbouring rings shears the band
 * between them on a turn, and hair lying across the outline kinks there.
 */
const ANCHOR_RINGS = [
  { scale: 1.15, follow: 1, neckFollow: 1, depth: 0.3 },
  { scale: 1.4, follow: 1, neckFollow: 0.7, depth: 0.7 },
  { scale: 2, follow: 0.45, neckFollow: 0.2, depth: 1 },
  { scale: 2.8, follow: 0, neckFollow: 0, depth: 1 },
] as const;

/**
 * Below the jaw the outer rings lie on the neck and collar, and beside the chin on what is behind
 * them: these follow the head by `neckFollow`, not `follow`, as a real neck takes only part of a
 * nod or a turn. The share goes from `follow` to `neckFollow` as the ring point's direction from
 * the face centre turns downwards (the cosine of its angle to the face's down axis going from
 * `from` to `to`), so the ears and the hair beside the cheeks still move with the head. Moving
 * fully, the neck and the wall beside the chin swung with every turn: on driving-head-turns.mp4
 * the face box's lower corners differed from the real frames more than the photo held still did.
 * The ring nearest the jaw still follows it fully: held back too (0.8), the band between it and
 * the jaw stretched on a turn, and on portrait-outdoor.jpg the sky beside the jaw showed as a
 * light wedge under it where the neck's shadow was. bench:quality --step 3, face box / ring L1
 * ratios: head-turns 0.527 / 0.685 -> 0.505 / 0.672, talking 0.489 / 0.578 -> 0.489 / 0.586,
 * eyes 0.405 / 0.689 -> 0.405 / 0.665.
 */
const NECK = { from: 0.1, to: 0.6 };

/**
 * Depth of the head's silhouette behind the nose tip, per face width (the sides of the outline sit
 * at ~0.6): where the head is widest seen from the front, above and behind the ears, about 0.75 of
 * the face's width on adult heads. At 0.7 the hair and ears swung a little too little against the
 * face on a turn: bench:quality --step 3, face box / ring L1 ratios at 0.7 and 0.8: talking 0.488 /
 * 0.586 and 0.479 / 0.562, head-turns 0.504 / 0.672 and 0.503 / 0.669, eyes 0.395 / 0.665 and
 * 0.395 / 0.668 (1.0 went on improving talking, 0.470 / 0.545, but the ring on eyes rose to 0.676).
 */
const SILHOUETTE_DEPTH = 0.8;

/** Fixed anchors per image side, so the mesh covers the whole frame and its border never moves. */
const BORDER_STEPS = 8;

/**
 * Letterbox and pillarbox bars: whole columns or rows at the image's edge no brighter than `level`
 * (8-bit, every channel), at least `least` px of them (driving-eyes.mp4 has a 60 px bar on its
 * left). The picture's edge along a bar is held still by a fixed anchor every 1/`steps` of it, and
 * ring points inside a bar stay still: dragged by the head, the bar's straight edge bent into the
 * picture (in the ring around the face on driving-eyes.mp4, where nothing else does in the clip).
 */
const BARS = { level: 8, least: 4, steps: 16 };

/** Per eye (image-left, image-right): its lid contour, closed, and its iris centre landmark. */
export const EYES = [
  { contour: IMAGE_LEFT_EYE_CONTOUR, iris: LANDMARKS.imageLeftIris },
  { contour: IMAGE_RIGHT_EYE_CONTOUR, iris: LANDMARKS.imageRightIris },
] as const;

/** Vertex index of each eye's iris centre in the warp mesh (after the 468 landmarks). */
export const IRIS_VERTICES = [MESH_POINTS, MESH_POINTS + 1] as const;

/** Vertices before the anchors: the 468 landmarks and the two iris centres. */
export const FACE_VERTICES = MESH_POINTS + 2;

export interface WarpMesh {
  /** Interleaved x, y on the photo: the 468 landmarks, the two iris centres, then the anchors. */
  vertices: Float64Array;
  /** Depth of every vertex (px, away from the camera, 0 at the nose tip; see landmarks3d). */
  depth: Float64Array;
  /** Per anchor (vertex FACE_VERTICES + k): the share of the head's motion it follows. */
  follow: Float64Array;
  /** Every triangle in drawing order: `fixed`, then `face` by depth, the farthest first. */
  triangles: Uint32Array;
  /** Triangles drawn first and in this order: around the face, then the mouth opening. */
  fixed: Uint32Array;
  /** Triangles of the face (its tessellation, the eyes fanned about the iris centres), to be drawn far to near. */
  face: Uint32Array;
}

/** The warp mesh of a photo: its face landmarks plus anchors around the head and along the border. */
export function warpMesh(face: Face, image: RgbImage): WarpMesh {
  const landmarks = landmarks3d(face.landmarks, LANDMARK_COUNT);
  const points = new Float64Array(FACE_VERTICES * 2);
  const depth3 = new Float64Array(FACE_VERTICES);
  for (let i = 0; i < MESH_POINTS; i++) {
    points[2 * i] = landmarks[3 * i]!;
    points[2 * i + 1] = landmarks[3 * i + 1]!;
    depth3[i] = landmarks[3 * i + 2]!;
  }
  EYES.forEach((eye, e) => {
    const [x, y] = irisInside(landmarks, eye.contour, eye.iris);
    points[2 * IRIS_VERTICES[e]!] = x;
    points[2 * IRIS_VERTICES[e]! + 1] = y;
    let z = 0;
    for (const i of eye.contour) z += landmarks[3 * i + 2]! / eye.contour.length;
    depth3[IRIS_VERTICES[e]!] = z;
  });
  const anchors = anchorPoints(points, depth3, image);
  const vertices = new Float64Array(points.length + anchors.points.length);
  vertices.set(points);
  vertices.set(anchors.points, points.length);
  const depth = new Float64Array(vertices.length / 2);
  depth.set(depth3);
  depth.set(anchors.depth, FACE_VERTICES);
  const fixed = outerTriangles(vertices);
  const faceTriangles = faceMeshTriangles(vertices, depth);
  const triangles = new Uint32Array(fixed.length + faceTriangles.length);
  triangles.set(fixed);
  triangles.set(faceTriangles, fixed.length);
  return { vertices, depth, follow: anchors.follow, triangles, fixed, face: faceTriangles };
}

/**
 * The iris centre, or the eye's contour centre where the iris landmark falls outside the lids
 * (a shut eye): the eye's fan of triangles needs its centre inside the contour.
 */
function irisInside(landmarks: Float64Array, contour: readonly number[], iris: number): [number, number] {
  const poly = new Float64Array(contour.length * 2);
  let cx = 0,
    cy = 0;
  contour.forEach((i, k) => {
    poly[2 * k] = landmarks[3 * i]!;
    poly[2 * k + 1] = landmarks[3 * i + 1]!;
    cx += poly[2 * k]! / contour.length;
    cy += poly[2 * k + 1]! / contour.length;
  });
  const x = landmarks[3 * iris]!,
    y = landmarks[3 * iris + 1]!;
  return insidePolygon(poly, x, y) ? [x, y] : [cx, cy];
}

/**
 * Triangles outside the face, drawn first: a Delaunay triangulation of the face outline and the
 * anchors outside it, then a strip across the mouth opening from upper to lower inner lip.
 */
function outerTriangles(vertices: Float64Array): Uint32Array {
  const triangles: number[] = [];
  // Delaunay over the outline and the anchors, without the triangles that fall inside the
  // outline (the tessellation covers those).
  const outer = [
    ...FACE_OVAL,
    ...Array.from({ length: vertices.length / 2 - FACE_VERTICES }, (_, k) => FACE_VERTICES + k),
  ];
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
  return Uint32Array.from(triangles);
}

/**
 * The face inside its outline: the Face Mesh tessellation, with each eye opening (the triangles
 * between the lids) replaced by a fan about the iris centre, so the iris can move inside the
 * lids. Ordered from the farthest triangle to the nearest by `depth` (smaller is nearer): when
 * the head turns far the far cheek folds under the nose, and drawn in this order the nearer
 * surface covers it, as it would. (The animator redraws them in the order of the posed depths.)
 */
function faceMeshTriangles(vertices: Float64Array, depth: ArrayLike<number>): Uint32Array {
  const triangles: number[] = [];
  const openings = EYES.map((eye) => {
    const poly = new Float64Array(eye.contour.length * 2);
    eye.contour.forEach((i, k) => {
      poly[2 * k] = vertices[2 * i]!;
      poly[2 * k + 1] = vertices[2 * i + 1]!;
    });
    return { members: new Set<number>(eye.contour), poly };
  });
  for (let t = 0; t < FACE_MESH_TRIANGLES.length; t += 3) {
    const a = FACE_MESH_TRIANGLES[t]!,
      b = FACE_MESH_TRIANGLES[t + 1]!,
      c = FACE_MESH_TRIANGLES[t + 2]!;
    const cx = (vertices[2 * a]! + vertices[2 * b]! + vertices[2 * c]!) / 3;
    const cy = (vertices[2 * a + 1]! + vertices[2 * b + 1]! + vertices[2 * c + 1]!) / 3;
    const opening = openings.some(
      ({ members, poly }) => members.has(a) && members.has(b) && members.has(c) && insidePolygon(poly, cx, cy),
    );
    if (!opening) triangles.push(a, b, c);
  }
  EYES.forEach((eye, e) => {
    for (let k = 0; k < eye.contour.length; k++)
      triangles.push(eye.contour[k]!, eye.contour[(k + 1) % eye.contour.length]!, IRIS_VERTICES[e]!);
  });
  const order = Array.from({ length: triangles.length / 3 }, (_, t) => t);
  const meanDepth = (t: number) =>
    depth[triangles[3 * t]!]! + depth[triangles[3 * t + 1]!]! + depth[triangles[3 * t + 2]!]!;
  order.sort((s, t) => meanDepth(t) - meanDepth(s));
  return Uint32Array.from(order.flatMap((t) => [triangles[3 * t]!, triangles[3 * t + 1]!, triangles[3 * t + 2]!]));
}

/** Anchor rings around the face outline, with their depths, and fixed points along the image border. */
function anchorPoints(
  points: Float64Array,
  depth: Float64Array,
  image: RgbImage,
): { points: Float64Array; depth: Float64Array; follow: Float64Array } {
  let cx = 0;
  let cy = 0;
  for (const i of FACE_OVAL) {
    cx += points[2 * i]!;
    cy += points[2 * i + 1]!;
  }
  cx /= FACE_OVAL.length;
  cy /= FACE_OVAL.length;
  const width = Math.hypot(points[2 * 454]! - points[2 * 234]!, points[2 * 454 + 1]! - points[2 * 234 + 1]!);
  const silhouette = SILHOUETTE_DEPTH * width;
  const xy: number[] = [];
  const z: number[] = [];
  const follow: number[] = [];
  // Ring points beyond the image border are kept: where the head is near the border (the hair of
  // driving-head-turns.mp4 reaches the frame's top), dropping them left only fixed border anchors
  // above the moving rings, and the hair between stretched into a tall tuft whenever the head moved
  // down. Kept, the head's rings move the border there too; the frame's edge rows fill what that
  // uncovers. The border anchors inside the outermost ring that follows the head are left out
  // (pinned, they would stretch it all the same), and so are any too near a ring point (triangles
  // there degenerate).
  const margin = 2;
  let outermost: number[] = [];
  const { x: downX, y: downY } = faceDown(points, 2);
  const neckShare = FACE_OVAL.map((i) => {
    const dx = points[2 * i]! - cx,
      dy = points[2 * i + 1]! - cy;
    const cosine = (dx * downX + dy * downY) / Math.max(1e-6, Math.hypot(dx, dy));
    const t = Math.min(1, Math.max(0, (cosine - NECK.from) / (NECK.to - NECK.from)));
    return t * t * (3 - 2 * t);
  });
  for (const ring of ANCHOR_RINGS) {
    const ringXy: number[] = [];
    FACE_OVAL.forEach((i, k) => {
      const x = cx + (points[2 * i]! - cx) * ring.scale;
      const y = cy + (points[2 * i + 1]! - cy) * ring.scale;
      ringXy.push(x, y);
      xy.push(x, y);
      z.push(depth[i]! + (Math.max(depth[i]!, silhouette) - depth[i]!) * ring.depth);
      follow.push(ring.follow + neckShare[k]! * (ring.neckFollow - ring.follow));
    });
    if (ring.follow > 0) outermost = ringXy;
  }
  const headPolygon = Float64Array.from(outermost);
  const ringValues = xy.length;
  const clear = (x: number, y: number) => {
    if (insidePolygon(headPolygon, x, y)) return false;
    for (let r = 0; r < ringValues; r += 2) if (Math.hypot(xy[r]! - x, xy[r + 1]! - y) < margin) return false;
    return true;
  };
  const [left, top, right, bottom] = barWidths(image);
  const x0 = left,
    y0 = top,
    x1 = image.width - right,
    y1 = image.height - bottom;
  // Only on the sides with a bar: beyond a border without one, ring points keep moving (see above).
  for (let r = 0; r < ringValues; r += 2) {
    const x = xy[r]!,
      y = xy[r + 1]!;
    if ((left && x < x0) || (right && x > x1) || (top && y < y0) || (bottom && y > y1)) follow[r / 2] = 0;
  }
  const nearRing = (x: number, y: number) => {
    for (let r = 0; r < ringValues; r += 2) if (Math.hypot(xy[r]! - x, xy[r + 1]! - y) < margin) return true;
    return false;
  };
  const edges: [number, number, number, number][] = [];
  if (left) edges.push([x0, y0, x0, y1]);
  if (top) edges.push([x0, y0, x1, y0]);
  if (right) edges.push([x1, y0, x1, y1]);
  if (bottom) edges.push([x0, y1, x1, y1]);
  for (const [ax, ay, bx, by] of edges)
    for (let k = 0; k <= BARS.steps; k++) {
      const x = ax + ((bx - ax) * k) / BARS.steps,
        y = ay + ((by - ay) * k) / BARS.steps;
      if (nearRing(x, y)) continue;
      xy.push(x, y);
      z.push(silhouette);
      follow.push(0);
    }
  for (let k = 0; k < BORDER_STEPS; k++) {
    const t = k / BORDER_STEPS;
    const border = [
      [t * image.width, 0],
      [image.width, t * image.height],
      [(1 - t) * image.width, image.height],
      [0, (1 - t) * image.height],
    ] as const;
    for (const [x, y] of border) {
      if (!clear(x, y)) continue;
      xy.push(x, y);
      z.push(silhouette);
      follow.push(0);
    }
  }
  return { points: Float64Array.from(xy), depth: Float64Array.from(z), follow: Float64Array.from(follow) };
}

/** Widths (px) of the bars on the image's left, top, right and bottom edges (0 where none; see BARS). */
function barWidths(image: RgbImage): [number, number, number, number] {
  const { width, height, data } = image;
  const dark = (x0: number, y0: number, dx: number, dy: number, n: number) => {
    for (let k = 0; k < n; k++) {
      const o = ((y0 + k * dy) * width + x0 + k * dx) * 3;
      if (data[o]! > BARS.level || data[o + 1]! > BARS.level || data[o + 2]! > BARS.level) return false;
    }
    return true;
  };
  const count = (line: (k: number) => boolean, most: number) => {
    let k = 0;
    while (k < most && line(k)) k++;
    return k >= BARS.least && k < most ? k : 0;
  };
  const half = (n: number) => Math.floor(n / 2);
  return [
    count((k) => dark(k, 0, 0, 1, height), half(width)),
    count((k) => dark(0, k, 1, 0, width), half(height)),
    count((k) => dark(width - 1 - k, 0, 0, 1, height), half(width)),
    count((k) => dark(0, height - 1 - k, 1, 0, width), half(height)),
  ];
}
