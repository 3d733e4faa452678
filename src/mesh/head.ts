/**
 * The head as one 3D body: Face Mesh depth brought to pixel units, and the driver's head pose
 * (rotation, scale, translation) fitted from the 3D shape of a reference face to the 2D
 * landmarks of a driving frame, under a scaled orthographic camera.
 */

import { EYE_OUTER_CORNERS } from './regions.js';

/**
 * Down the face on the image: the unit vector (x, y) perpendicular to the line through the outer
 * eye corners, and that line's length (`eyes`, px). `points` holds `stride` values a landmark
 * (x, y first).
 */
export function faceDown(points: ArrayLike<number>, stride: number): { x: number; y: number; eyes: number } {
  const [a, b] = EYE_OUTER_CORNERS;
  const eyeX = points[stride * b]! - points[stride * a]!,
    eyeY = points[stride * b + 1]! - points[stride * a + 1]!;
  const eyes = Math.max(1e-6, Math.hypot(eyeX, eyeY));
  return { x: -eyeY / eyes, y: eyeX / eyes, eyes };
}

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
  /** The centre of the fitted reference points (x, y, z) and where it lands in the image. */
  centre: [number, number, number];
  image: [number, number];
}

export const IDENTITY_POSE: HeadPose = {
  rotation: [1, 0, 0, 0, 1, 0, 0, 0, 1],
  scale: 1,
  tx: 0,
  ty: 0,
  centre: [0, 0, 0],
  image: [0, 0],
};

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
export function fitHeadPose(
  reference: ArrayLike<number>,
  driving: ArrayLike<number>,
  indices: readonly number[],
): HeadPose | undefined {
  const n = indices.length;
  let mx = 0,
    my = 0,
    mz = 0,
    mu = 0,
    mv = 0;
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
  return { rotation, scale, tx, ty, centre: [mx, my, mz], image: [mu, mv] };
}

/**
 * The pose with its turn out of the image plane (yaw and pitch together: the swing of the
 * face's forward axis) kept up to `knee` radians and eased beyond, towards at most `limit`
 * (knee + (limit - knee) tanh((angle - knee) / (limit - knee))); the roll in the image plane is
 * kept, and the fitted centre still lands where it did. A single
 * photo holds no pixels of what a far turn shows (the far side of the head, the near temple
 * seen flat), and past ~30 degrees the warp can only smear and tear; eased, the head still turns.
 */
export function easeTurn(pose: HeadPose, knee: number, limit: number): HeadPose {
  const R = pose.rotation;
  // Forward axis after the rotation: R's third column.
  const vx = R[2],
    vy = R[5],
    vz = Math.min(1, Math.max(-1, R[8]));
  const angle = Math.acos(vz);
  const side = Math.hypot(vx, vy);
  if (angle <= knee || side < 1e-12) return pose;
  const eased = knee + (limit - knee) * Math.tanh((angle - knee) / (limit - knee));
  // Swing about the axis (-vy, vx, 0) / side: the turn taking the forward axis to v.
  const ax = -vy / side,
    ay = vx / side;
  const swing = (t: number): Rotation => {
    const c = Math.cos(t),
      s = Math.sin(t),
      v = 1 - c;
    return [c + ax * ax * v, ax * ay * v, ay * s, ax * ay * v, c + ay * ay * v, -ax * s, -ay * s, ax * s, c];
  };
  // R = swing(angle) * twist, so the eased rotation is swing(eased) * swing(angle)^T * R.
  const rotation = multiply33(multiply33(swing(eased), transpose(swing(angle))), R);
  const [mx, my, mz] = pose.centre;
  const tx = pose.image[0] - pose.scale * (rotation[0] * mx + rotation[1] * my + rotation[2] * mz);
  const ty = pose.image[1] - pose.scale * (rotation[3] * mx + rotation[4] * my + rotation[5] * mz);
  return { ...pose, rotation, tx, ty };
}

/** The rotation vector of `R` (its axis times its angle, radians): three numbers a filter can smooth. */
export function rotationVector(R: Rotation): [number, number, number] {
  const angle = Math.acos(Math.min(1, Math.max(-1, (R[0] + R[4] + R[8] - 1) / 2)));
  // The skew part of R is sin(angle) times the axis' cross-product matrix.
  const k = angle < 1e-9 ? 0.5 : angle / (2 * Math.sin(angle));
  return [(R[7] - R[5]) * k, (R[2] - R[6]) * k, (R[3] - R[1]) * k];
}

/** The rotation of a rotation vector (Rodrigues' formula). */
export function rotationFromVector(x: number, y: number, z: number): Rotation {
  const angle = Math.hypot(x, y, z);
  if (angle < 1e-12) return [1, 0, 0, 0, 1, 0, 0, 0, 1];
  const [a, b, c] = [x / angle, y / angle, z / angle];
  const cos = Math.cos(angle),
    sin = Math.sin(angle),
    v = 1 - cos;
  return [
    a * a * v + cos,
    a * b * v - c * sin,
    a * c * v + b * sin,
    a * b * v + c * sin,
    b * b * v + cos,
    b * c * v - a * sin,
    a * c * v - b * sin,
    b * c * v + a * sin,
    c * c * v + cos,
  ];
}

function transpose(m: Rotation): Rotation {
  return [m[0], m[3], m[6], m[1], m[4], m[7], m[2], m[5], m[8]];
}

function multiply33(a: Rotation, b: Rotation): Rotation {
  const out = new Array<number>(9);
  for (let r = 0; r < 3; r++)
    for (let c = 0; c < 3; c++)
      out[3 * r + c] = a[3 * r]! * b[c]! + a[3 * r + 1]! * b[3 + c]! + a[3 * r + 2]! * b[6 + c]!;
  return out as Rotation;
}

function invert3(m: number[]): number[] | undefined {
  const [a, b, c, d, e, f, g, h, i] = m as [number, number, number, number, number, number, number, number, number];
  const A = e * i - f * h,
    B = -(d * i - f * g),
    C = d * h - e * g;
  const det = a * A + b * B + c * C;
  const trace = a + e + i;
  if (!(Math.abs(det) > 1e-12 * trace * trace * trace)) return undefined;
  return [
    A / det,
    -(b * i - c * h) / det,
    (b * f - c * e) / det,
    B / det,
    (a * i - c * g) / det,
    -(a * f - c * d) / det,
    C / det,
    -(a * h - b * g) / det,
    (a * e - b * d) / det,
  ];
}

function multiply3(m: number[], v: number[]): [number, number, number] {
  return [
    m[0]! * v[0]! + m[1]! * v[1]! + m[2]! * v[2]!,
    m[3]! * v[0]! + m[4]! * v[1]! + m[5]! * v[2]!,
    m[6]! * v[0]! + m[7]! * v[1]! + m[8]! * v[2]!,
  ];
}
