/**
 * The head as one 3D body: Face Mesh depth brought to pixel units, and the driver's head pose
 * (rotation, scale, translation) fitted from the 3D shape of a reference face to the 2D
 * landmarks of a driving frame, under a scaled orthographic camera.
 */

/** A row-major 3x3 rotation. */
export type Rotation = [number, number, number, number, number, number, number, number, number];

export interface HeadPose {
  /** Rotation of the head, reference frame to driving frame. */
  rotation: Rotation;
  /** Image scale of the head relative to the reference. */
  scale: number;
  /** Image translation (px): the projected reference origin lands here. */
  tx: number;
  ty: number;
}

export const IDENTITY_POSE: HeadPose = { rotation: [1, 0, 0, 0, 1, 0, 0, 0, 1], scale: 1, tx: 0, ty: 0 };

/** Face Mesh points at the sides of the face (by the ears), and the nose tip. */
const SIDES = [234, 454] as const;
const NOSE_TIP = 1;

/**
 * How deep a face is from the nose tip back to the sides of its outline, per width between those
 * sides: about 0.6 on adult heads. Face Mesh gives z in its own normalised units; scaling each
 * face's z to this depth puts it in the same pixels as x and y.
 */
const FACE_DEPTH = 0.6;

/**
 * Landmarks as interleaved x, y, z in pixels, z growing away from the camera, scaled so the
 * face is FACE_DEPTH deep (see above) and zero at the nose tip.
 */
export function landmarks3d(landmarks: ArrayLike<number>, count: number): Float64Array {
  const out = new Float64Array(count * 3);
  const [a, b] = SIDES;
  const width = Math.hypot(landmarks[3 * b]! - landmarks[3 * a]!, landmarks[3 * b + 1]! - landmarks[3 * a + 1]!);
  const depth = (landmarks[3 * a + 2]! + landmarks[3 * b + 2]!) / 2 - landmarks[3 * NOSE_TIP + 2]!;
  const k = depth > 1e-6 ? (FACE_DEPTH * width) / depth : 0;
  const z0 = landmarks[3 * NOSE_TIP + 2]!;
  for (let i = 0; i < count; i++) {
    out[3 * i] = landmarks[3 * i]!;
    out[3 * i + 1] = landmarks[3 * i + 1]!;
    out[3 * i + 2] = (landmarks[3 * i + 2]! - z0) * k;
  }
  return out;
}

/**
 * The pose taking the `indices` points of `reference` (x, y, z) onto the 2-D points of `driving`
 * (interleaved x, y): a least-squares affine camera (2x3 and a translation), then its nearest
 * scaled rotation (rows made orthonormal and of one length, the third row their cross product).
 * Undefined when the points are degenerate.
 */
export function fitHeadPose(reference: ArrayLike<number>, driving: ArrayLike<number>, indices: readonly number[]): HeadPose | undefined {
  const n = indices.length;
  let mx = 0, my = 0, mz = 0, mu = 0, mv = 0;
  for (const i of indices) {
    mx += reference[3 * i]!;
    my += reference[3 * i + 1]!;
    mz += reference[3 * i + 2]!;
    mu += driving[2 * i]!;
    mv += driving[2 * i + 1]!;
  }
  mx /= n;
  my /= n;
  mz /= n;
  mu /= n;
  mv /= n;
  // Normal equations A m = b for each image row, A = sum of p p^T over centred points.
  const A = [0, 0, 0, 0, 0, 0, 0, 0, 0];
  const bu = [0, 0, 0];
  const bv = [0, 0, 0];
  for (const i of indices) {
    const p = [reference[3 * i]! - mx, reference[3 * i + 1]! - my, reference[3 * i + 2]! - mz];
    const u = driving[2 * i]! - mu;
    const v = driving[2 * i + 1]! - mv;
    for (let r = 0; r < 3; r++) {
      for (let c = 0; c < 3; c++) A[3 * r + c]! += p[r]! * p[c]!;
      bu[r]! += p[r]! * u;
      bv[r]! += p[r]! * v;
    }
  }
  const inverse = invert3(A);
  if (!inverse) return undefined;
  const m1 = multiply3(inverse, bu);
  const m2 = multiply3(inverse, bv);
  const s1 = Math.hypot(...m1);
  const s2 = Math.hypot(...m2);
  if (!(s1 > 1e-9 && s2 > 1e-9)) return undefined;
  let r1 = m1.map((v) => v / s1);
  let r2 = m2.map((v) => v / s2);
  // Symmetric orthogonalisation: each row gives up half of their overlap.
  const e = r1[0]! * r2[0]! + r1[1]! * r2[1]! + r1[2]! * r2[2]!;
  const q1 = r1.map((v, k) => v - (e / 2) * r2[k]!);
  const q2 = r2.map((v, k) => v - (e / 2) * r1[k]!);
  r1 = q1.map((v) => v / Math.hypot(...q1));
  r2 = q2.map((v) => v / Math.hypot(...q2));
  const r3 = [r1[1]! * r2[2]! - r1[2]! * r2[1]!, r1[2]! * r2[0]! - r1[0]! * r2[2]!, r1[0]! * r2[1]! - r1[1]! * r2[0]!];
  const rotation: Rotation = [r1[0]!, r1[1]!, r1[2]!, r2[0]!, r2[1]!, r2[2]!, r3[0]!, r3[1]!, r3[2]!];
  const scale = (s1 + s2) / 2;
  // The translation that puts the centred reference onto the centred driver under this pose.
  const tx = mu - scale * (rotation[0] * mx + rotation[1] * my + rotation[2] * mz);
  const ty = mv - scale * (rotation[3] * mx + rotation[4] * my + rotation[5] * mz);
  return { rotation, scale, tx, ty };
}

function invert3(m: number[]): number[] | undefined {
  const [a, b, c, d, e, f, g, h, i] = m as [number, number, number, number, number, number, number, number, number];
  const A = e * i - f * h, B = -(d * i - f * g), C = d * h - e * g;
  const det = a * A + b * B + c * C;
  const trace = a + e + i;
  if (!(Math.abs(det) > 1e-12 * trace * trace * trace)) return undefined;
  return [A / det, -(b * i - c * h) / det, (b * f - c * e) / det, B / det, (a * i - c * g) / det, -(a * f - c * d) / det, C / det, -(a * h - b * g) / det, (a * e - b * d) / det];
}

function multiply3(m: number[], v: number[]): [number, number, number] {
  return [m[0]! * v[0]! + m[1]! * v[1]! + m[2]! * v[2]!, m[3]! * v[0]! + m[4]! * v[1]! + m[5]! * v[2]!, m[6]! * v[0]! + m[7]! * v[1]! + m[8]! * v[2]!];
}
