/**
 * The dense motion network: the reference's `DenseMotionNetwork` (modules/dense_motion.py). For
 * each keypoint it forms the local approximation T_{S←D}(z) ≈ T_{S←R}(p_k) + J_k (z − T_{D←R}(p_k))
 * with J_k = (d/dp T_{S←R})(d/dp T_{D←R})⁻¹ at p_k (paper Sec. 3.1, Eqs. 3-4), the heatmap
 * differences H_k (Eq. 5) and the source deformed by each; an hourglass predicts the masks M_k
 * that combine them into the dense field T̂_{S←D}(z) = M_0 z + Σ_k M_k (…) (Sec. 3.2, Eq. 6), and
 * the occlusion map Ô.
 */
import type { OnnxGraph } from '../onnx/builder.js';
import { antiAliasDownsample, convHeads, coordinateGrid, hourglass } from './blocks.js';
import type { Weights } from '../checkpoint/tensors.js';

/** dense_motion_params plus what the generator decides for it. */
export interface DenseMotionSpec {
  numKp: number;
  numChannels: number;
  estimateJacobian: boolean;
  estimateOcclusionMap: boolean;
  blockExpansion: number;
  maxFeatures: number;
  numBlocks: number;
  scaleFactor: number;
  /** Variance of the keypoint Gaussians (0.01). */
  kpVariance: number;
}

/** Graph values of the (normalised) keypoints; jacobians present when the model estimates them. */
export interface KeypointValues {
  value: string;
  jacobian?: string;
}

export interface DenseMotionOutputs {
  /** [1, h, w, 2] sampling grid (x, y) from driving to source. */
  deformation: string;
  /** [1, K + 1, h, w] softmax masks, background first. */
  mask: string;
  /** [1, 1, h, w] in (0, 1), when estimated. */
  occlusion?: string;
}

/** The dense motion net's own downsampling of the source (`down.weight`); depends on the source only. */
export function downsampleSource(
  g: OnnxGraph,
  source: string,
  spec: DenseMotionSpec,
  w: Weights,
  height: number,
  width: number,
) {
  return antiAliasDownsample(g, source, w, spec.numChannels, spec.scaleFactor, height, width);
}

/**
 * DenseMotionNetwork on the already downsampled source [1, C, h, w]: heatmap differences,
 * sparse motions T_k(z) = kp_s + J_s·inv(J_d)·(z − kp_d), deformed sources, hourglass, masks,
 * deformation, occlusion.
 */
export function denseMotion(
  g: OnnxGraph,
  sourceSmall: string,
  kpSource: KeypointValues,
  kpDriving: KeypointValues,
  spec: DenseMotionSpec,
  w: Weights,
  height: number,
  width: number,
): DenseMotionOutputs {
  const k = spec.numKp;
  const positions = height * width;
  const grid = g.constant({ dims: [1, 1, positions, 2], data: coordinateGrid(height, width) }, 'grid');

  const gaussian = (kp: string) => {
    const diff = g.sub(grid, g.reshape(kp, [1, k, 1, 2]));
    const squared = g.reduceSum(g.mul(diff, diff), [3], false);
    return g.exp(g.div(g.mul(squared, g.scalar(-0.5)), g.scalar(spec.kpVariance)));
  };
  const heat = g.sub(gaussian(kpDriving.value), gaussian(kpSource.value));
  const zeros = g.floats(new Array<number>(positions).fill(0), [1, 1, positions]);
  const heatmaps = g.reshape(g.concat([zeros, heat], 1), [1, k + 1, 1, height, width]);

  let moved = g.sub(grid, g.reshape(kpDriving.value, [1, k, 1, 2]));
  if (spec.estimateJacobian && kpSource.jacobian && kpDriving.jacobian) {
    const jacobian = g.matMul(kpSource.jacobian, inverse2x2(g, kpDriving.jacobian, k));
    // Row vectors: (z − kp_d)ᵀ · Jᵀ.
    moved = g.matMul(moved, g.transpose(jacobian, [0, 1, 3, 2]));
  }
  const driven = g.add(moved, g.reshape(kpSource.value, [1, k, 1, 2]));
  const motions = g.concat([grid, driven], 1); // [1, K+1, hw, 2]

  const sources = g.expand(sourceSmall, [k + 1, spec.numChannels, height, width]);
  const deformed = g.gridSample(sources, g.reshape(motions, [k + 1, height, width, 2]));
  const input = g.reshape(g.concat([heatmaps, g.reshape(deformed, [1, k + 1, spec.numChannels, height, width])], 2), [
    1,
    (k + 1) * (spec.numChannels + 1),
    height,
    width,
  ]);
  const features = hourglass(g, input, w.at('hourglass'), {
    blockExpansion: spec.blockExpansion,
    inFeatures: (k + 1) * (spec.numChannels + 1),
    numBlocks: spec.numBlocks,
    maxFeatures: spec.maxFeatures,
    height,
    width,
  });
  const maskConv = w.at('mask');
  const heads = [
    { weight: maskConv.get('weight', [k + 1, features.channels, 7, 7]), bias: maskConv.get('bias', [k + 1]) },
  ];
  if (spec.estimateOcclusionMap) {
    const occ = w.at('occlusion');
    heads.push({ weight: occ.get('weight', [1, features.channels, 7, 7]), bias: occ.get('bias', [1]) });
  }
  const [maskLogits, occlusionLogits] = convHeads(g, features.out, heads, 3) as [string, string | undefined];
  const mask = g.softmax(maskLogits, 1);
  const deformation = g.reshape(g.reduceSum(g.mul(g.reshape(mask, [1, k + 1, positions, 1]), motions), [1], false), [
    1,
    height,
    width,
    2,
  ]);
  const occlusion = occlusionLogits ? g.sigmoid(occlusionLogits) : undefined;
  return { deformation, mask, occlusion };
}

/** Inverse of K 2×2 matrices [1, K, 2, 2] by the adjugate: [[d, −b], [−c, a]] / (ad − bc). */
function inverse2x2(g: OnnxGraph, m: string, k: number): string {
  const [a, b, c, d] = g.split(g.reshape(m, [1, k, 4]), 2, [1, 1, 1, 1]) as [string, string, string, string];
  const det = g.sub(g.mul(a, d), g.mul(b, c));
  const adjugate = g.concat([d, g.neg(b), g.neg(c), a], 2);
  return g.reshape(g.div(adjugate, det), [1, k, 2, 2]);
}
