/**
 * The keypoint detector: the reference's `KPDetector` (modules/keypoint_detector.py). An hourglass
 * predicts one heatmap per keypoint; each keypoint p_k is its heatmap's expected position after a
 * softmax (`gaussian2kp`), and with `estimate_jacobian` a 4-channel head gives the Jacobian
 * d/dp T_{X←R}(p) at p_k, heatmap-weighted: the keypoints and the first-order terms of the local
 * affine motion model (paper Sec. 3.1, the Taylor expansion of Eq. 2).
 */
import { OnnxGraph, type WinogradPolicy } from '../onnx/builder.js';
import { antiAliasDownsample, convHeads, coordinateGrid, hourglass } from './blocks.js';
import type { FommConfig } from '../config.js';
import type { Weights } from '../checkpoint/tensors.js';

/** What the keypoint detector graph needs to know (common_params + kp_detector_params + the frame size). */
export type KeypointDetectorSpec = FommConfig['commonParams'] &
  FommConfig['kpDetectorParams'] & {
    imageHeight: number;
    imageWidth: number;
    winograd?: WinogradPolicy;
  };

/**
 * KPDetector: image [1, C, H, W] in [0, 1] → `value` [1, K, 2] (x, y in [-1, 1]) and, with
 * jacobians, `jacobian` [1, K, 2, 2]. Weights are the `kp_detector` state dict.
 */
export function buildKeypointDetector(spec: KeypointDetectorSpec, w: Weights): OnnxGraph {
  const g = new OnnxGraph('fomm_keypoint_detector', { winograd: spec.winograd });
  const k = spec.numKp;
  const image = g.input('image', [1, spec.numChannels, spec.imageHeight, spec.imageWidth]);
  const down = antiAliasDownsample(g, image, w, spec.numChannels, spec.scaleFactor, spec.imageHeight, spec.imageWidth);
  const features = hourglass(g, down.out, w.at('predictor'), {
    blockExpansion: spec.blockExpansion,
    inFeatures: spec.numChannels,
    numBlocks: spec.numBlocks,
    maxFeatures: spec.maxFeatures,
    height: down.height,
    width: down.width,
  });
  const heatHeight = down.height + 2 * spec.pad - 6;
  const heatWidth = down.width + 2 * spec.pad - 6;
  const positions = heatHeight * heatWidth;
  const kp = w.at('kp');
  const maps = spec.singleJacobianMap ? 1 : k;
  const heads = [{ weight: kp.get('weight', [k, features.channels, 7, 7]), bias: kp.get('bias', [k]) }];
  if (spec.estimateJacobian) {
    const jac = w.at('jacobian');
    heads.push({ weight: jac.get('weight', [4 * maps, features.channels, 7, 7]), bias: jac.get('bias', [4 * maps]) });
  }
  const [heat, jacobianMap] = convHeads(g, features.out, heads, spec.pad) as [string, string | undefined];
  // Softmax over all positions of each channel of heat / temperature.
  const heatmap = g.softmax(g.div(g.reshape(heat, [1, k, positions]), g.scalar(spec.temperature)), 2);
  const grid = g.constant({ dims: [positions, 2], data: coordinateGrid(heatHeight, heatWidth) }, 'grid');
  g.output('value', g.matMul(heatmap, grid), [1, k, 2]);
  if (jacobianMap) {
    // (1, J, 4, hw) @ (1, K, hw, 1): heatmap-weighted sums, J = 1 broadcasting over the K keypoints.
    const weighted = g.matMul(
      g.reshape(jacobianMap, [1, maps, 4, positions]),
      g.reshape(heatmap, [1, k, positions, 1]),
    );
    g.output('jacobian', g.reshape(weighted, [1, k, 2, 2]), [1, k, 2, 2]);
  }
  return g;
}
