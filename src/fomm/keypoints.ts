/** FOMM keypoints of one frame: K points (x, y in [-1, 1]) and, when estimated, K 2×2 jacobians. */
export interface Keypoints {
  numKp: number;
  /** K × (x, y). */
  value: Float32Array;
  /** K × [a, b, c, d] for [[a, b], [c, d]]; absent when the model has no jacobians. */
  jacobian?: Float32Array;
}

/** animate_params.normalization_params of the reference. */
export interface NormalizationOptions {
  /** use_relative_movement: move the source keypoints by the driving motion since the initial frame. */
  relativeMovement: boolean;
  /** use_relative_jacobian (only with relative movement). */
  relativeJacobian: boolean;
  /** adapt_movement_scale: scale the motion by sqrt(hull area of source / hull area of initial driving). */
  adaptMovementScale: boolean;
}

export const RELATIVE_ADAPT: NormalizationOptions = {
  relativeMovement: true,
  relativeJacobian: true,
  adaptMovementScale: true,
};
export const RELATIVE: NormalizationOptions = {
  relativeMovement: true,
  relativeJacobian: true,
  adaptMovementScale: false,
};
export const ABSOLUTE: NormalizationOptions = {
  relativeMovement: false,
  relativeJacobian: false,
  adaptMovementScale: false,
};

/** Area of the 2-D convex hull of points given as (x, y) pairs (monotone chain + shoelace, float64). */
export function convexHullArea(points: ArrayLike<number>, stride = 2): number {
  const list: [number, number][] = [];
  for (let i = 0; i + 1 < points.length; i += stride) list.push([points[i]!, points[i + 1]!]);
  list.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  if (list.length < 3) return 0;
  const cross = (o: [number, number], a: [number, number], b: [number, number]) =>
    (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
  const lower: [number, number][] = [];
  for (const p of list) {
    while (lower.length >= 2 && cross(lower[lower.length - 2]!, lower[lower.length - 1]!, p) <= 0) lower.pop();
    lower.push(p);
  }
  const upper: [number, number][] = [];
  for (let i = list.length - 1; i >= 0; i--) {
    const p = list[i]!;
    while (upper.length >= 2 && cross(upper[upper.length - 2]!, upper[upper.length - 1]!, p) <= 0) upper.pop();
    upper.push(p);
  }
  const hull = lower.slice(0, -1).concat(upper.slice(0, -1));
  let twice = 0;
  for (let i = 0; i < hull.length; i++) {
    const [x0, y0] = hull[i]!;
    const [x1, y1] = hull[(i + 1) % hull.length]!;
    twice += x0 * y1 - x1 * y0;
  }
  return Math.abs(twice) / 2;
}

const f = Math.fround;

/** 2×2 matrix product in float32, matrices as [a, b, c, d] at an offset. */
function multiply(
  x: ArrayLike<number>,
  xo: number,
  y: ArrayLike<number>,
  yo: number,
  out: Float32Array,
  oo: number,
): void {
  const [a, b, c, d] = [x[xo]!, x[xo + 1]!, x[xo + 2]!, x[xo + 3]!];
  const [e, g, h, i] = [y[yo]!, y[yo + 1]!, y[yo + 2]!, y[yo + 3]!];
  out[oo] = f(f(a * e) + f(b * h));
  out[oo + 1] = f(f(a * g) + f(b * i));
  out[oo + 2] = f(f(c * e) + f(d * h));
  out[oo + 3] = f(f(c * g) + f(d * i));
}

function inverse(x: ArrayLike<number>, xo: number, out: Float32Array, oo: number): void {
  const [a, b, c, d] = [x[xo]!, x[xo + 1]!, x[xo + 2]!, x[xo + 3]!];
  const det = a * d - b * c;
  out[oo] = f(d / det);
  out[oo + 1] = f(-b / det);
  out[oo + 2] = f(-c / det);
  out[oo + 3] = f(a / det);
}

/**
 * normalize_kp of the reference: relative movement (optionally scaled by the convex-hull areas),
 * relative jacobian J_d · inv(J_d0) · J_s, or the driving keypoints unchanged (absolute).
 */
export function normalizeKeypoints(
  source: Keypoints,
  driving: Keypoints,
  drivingInitial: Keypoints,
  options: NormalizationOptions,
): Keypoints {
  if (!options.relativeMovement)
    return { numKp: driving.numKp, value: driving.value.slice(), jacobian: driving.jacobian?.slice() };
  const scale = options.adaptMovementScale
    ? f(Math.sqrt(convexHullArea(source.value)) / Math.sqrt(convexHullArea(drivingInitial.value)))
    : 1;
  const value = new Float32Array(source.value.length);
  for (let i = 0; i < value.length; i++)
    value[i] = f(f(f(driving.value[i]! - drivingInitial.value[i]!) * scale) + source.value[i]!);
  let jacobian = driving.jacobian?.slice();
  if (options.relativeJacobian && source.jacobian && driving.jacobian && drivingInitial.jacobian) {
    jacobian = new Float32Array(source.jacobian.length);
    const initialInverse = new Float32Array(4);
    const difference = new Float32Array(4);
    for (let k = 0; k < source.numKp; k++) {
      inverse(drivingInitial.jacobian, 4 * k, initialInverse, 0);
      multiply(driving.jacobian, 4 * k, initialInverse, 0, difference, 0);
      multiply(difference, 0, source.jacobian, 4 * k, jacobian, 4 * k);
    }
  }
  return { numKp: source.numKp, value, jacobian };
}

/** Values then jacobians in one row (the conformance files' layout: K·2 + K·4 numbers). */
export function flattenKeypoints(kp: Keypoints): Float32Array {
  const row = new Float32Array(kp.value.length + (kp.jacobian?.length ?? 0));
  row.set(kp.value);
  if (kp.jacobian) row.set(kp.jacobian, kp.value.length);
  return row;
}
