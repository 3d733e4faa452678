/**
 * The generator: the reference's `OcclusionAwareGenerator` (modules/generator.py). The source is
 * encoded by down blocks; its features ξ are warped by the dense motion field and multiplied by
 * the occlusion map, ξ′ = Ô ⊙ f_w(ξ, T̂_{S←D}) (paper Sec. 3.2, Eq. 7); the residual bottleneck and
 * the up blocks decode ξ′ into the frame. Built as three graphs: the source encoder (once per
 * video), the per-frame generator (whole, or the head and tail around the native decoder) and the
 * source warp shown in debug output.
 */
import { OnnxGraph, type WinogradPolicy } from '../onnx/builder.js';
import { denseMotion, downsampleSource, type DenseMotionSpec } from './dense-motion.js';
import { downBlock, phaseConv, resBlock, sameBlock, sameConv, upBlock, upBlockPhases } from './blocks.js';
import type { DecoderLayout } from '../native/decoder.js';
import type { Weights } from '../checkpoint/tensors.js';

/** common_params + generator_params (with its dense_motion_params) + the frame size. */
export interface GeneratorSpec {
  numKp: number;
  numChannels: number;
  estimateJacobian: boolean;
  blockExpansion: number;
  maxFeatures: number;
  numDownBlocks: number;
  numBottleneckBlocks: number;
  estimateOcclusionMap: boolean;
  denseMotion: {
    blockExpansion: number;
    maxFeatures: number;
    numBlocks: number;
    scaleFactor: number;
    kpVariance: number;
  };
  imageHeight: number;
  imageWidth: number;
  winograd?: WinogradPolicy;
}

/** Sizes of the maps the generator graphs exchange. */
export interface GeneratorShapes {
  featureChannels: number;
  featureHeight: number;
  featureWidth: number;
  motionHeight: number;
  motionWidth: number;
}

export function generatorShapes(spec: GeneratorSpec): GeneratorShapes {
  let featureHeight = spec.imageHeight;
  let featureWidth = spec.imageWidth;
  for (let i = 0; i < spec.numDownBlocks; i++) {
    featureHeight = Math.floor(featureHeight / 2);
    featureWidth = Math.floor(featureWidth / 2);
  }
  const scale = spec.denseMotion.scaleFactor;
  return {
    featureChannels: Math.min(spec.maxFeatures, spec.blockExpansion * 2 ** spec.numDownBlocks),
    featureHeight,
    featureWidth,
    motionHeight: scale === 1 ? spec.imageHeight : Math.floor(spec.imageHeight * scale),
    motionWidth: scale === 1 ? spec.imageWidth : Math.floor(spec.imageWidth * scale),
  };
}

function denseMotionSpec(spec: GeneratorSpec): DenseMotionSpec {
  return {
    numKp: spec.numKp,
    numChannels: spec.numChannels,
    estimateJacobian: spec.estimateJacobian,
    estimateOcclusionMap: spec.estimateOcclusionMap,
    ...spec.denseMotion,
  };
}

/**
 * The part of the occlusion-aware generator that depends on the source only, run once per video:
 * `source` [1, C, H, W] → `features` (first + down blocks) and `source_small` (the dense motion
 * net's anti-aliased downsampling). Weights are the `generator` state dict.
 */
export function buildSourceEncoder(spec: GeneratorSpec, w: Weights): OnnxGraph {
  const g = new OnnxGraph('fomm_source_encoder', { winograd: spec.winograd });
  const shapes = generatorShapes(spec);
  const width = (i: number) => Math.min(spec.maxFeatures, spec.blockExpansion * 2 ** i);
  const source = g.input('source', [1, spec.numChannels, spec.imageHeight, spec.imageWidth]);
  let out = sameBlock(g, source, w.at('first'), spec.numChannels, spec.blockExpansion, 7, 3);
  for (let i = 0; i < spec.numDownBlocks; i++) {
    const size = { height: Math.floor(spec.imageHeight / 2 ** i), width: Math.floor(spec.imageWidth / 2 ** i) };
    out = downBlock(g, out, w.at(`down_blocks.${i}`), width(i), width(i + 1), size);
  }
  g.output('features', out, [1, shapes.featureChannels, shapes.featureHeight, shapes.featureWidth]);
  const small = downsampleSource(
    g,
    source,
    denseMotionSpec(spec),
    w.at('dense_motion_network'),
    spec.imageHeight,
    spec.imageWidth,
  );
  g.output('source_small', small.out, [1, spec.numChannels, shapes.motionHeight, shapes.motionWidth]);
  return g;
}

/**
 * Which part of the per-frame generator a graph holds: all of it, or the parts before and after
 * the decoder (bottleneck and up blocks) when the decoder runs natively (src/fomm/native/decoder.ts).
 * The head outputs `warped` (the occluded, deformed source features, the decoder's input); the
 * tail takes `decoded` (see decodedShape) and applies the final conv.
 */
export type FramePart = 'whole' | 'head' | 'tail';

const upBlockWidth = (spec: GeneratorSpec, i: number) => Math.min(spec.maxFeatures, spec.blockExpansion * 2 ** i);

/**
 * The decoder's output, the final conv's input: the last up block's four phases [1, 4·C, h, w]
 * (channels (phase, C), not yet interleaved), or the bottleneck's output without up blocks.
 */
export function decodedShape(spec: GeneratorSpec): number[] {
  const s = generatorShapes(spec);
  const d = spec.numDownBlocks;
  if (d === 0) return [1, s.featureChannels, s.featureHeight, s.featureWidth];
  return [1, 4 * upBlockWidth(spec, 0), s.featureHeight * 2 ** (d - 1), s.featureWidth * 2 ** (d - 1)];
}

/** The widths and sizes of the bottleneck and up blocks, for the native decoder. */
export function decoderLayout(spec: GeneratorSpec): DecoderLayout {
  const s = generatorShapes(spec);
  const d = spec.numDownBlocks;
  return {
    channels: s.featureChannels,
    size: { height: s.featureHeight, width: s.featureWidth },
    bottleneckBlocks: spec.numBottleneckBlocks,
    upBlocks: Array.from({ length: d }, (_, i) => [upBlockWidth(spec, d - i), upBlockWidth(spec, d - i - 1)]),
  };
}

/**
 * Everything per driving frame: dense motion, feature warping and occlusion, bottleneck, up
 * blocks, final conv + sigmoid → `prediction` [1, C, H, W]. Also outputs `mask`,
 * `occlusion` (when estimated) and `deformation` (ORT runs every node whatever is fetched, so
 * these are the by-products that cost nothing; the warped source is `buildSourceWarp`'s).
 */
export function buildFrameGenerator(spec: GeneratorSpec, w: Weights, part: FramePart = 'whole'): OnnxGraph {
  const g = new OnnxGraph(`fomm_frame_generator${part === 'whole' ? '' : `_${part}`}`, { winograd: spec.winograd });
  const s = generatorShapes(spec);
  if (part === 'tail') {
    finalLayer(g, spec, w, g.input('decoded', decodedShape(spec)));
    return g;
  }
  let out = frameMotion(g, spec, w, s);
  if (part === 'head') {
    g.output('warped', out, [1, s.featureChannels, s.featureHeight, s.featureWidth]);
    return g;
  }
  for (let i = 0; i < spec.numBottleneckBlocks; i++)
    out = resBlock(g, out, w.at(`bottleneck.r${i}`), s.featureChannels, {
      height: s.featureHeight,
      width: s.featureWidth,
    });
  const d = spec.numDownBlocks;
  for (let i = 0; i < d; i++) {
    const size = { height: s.featureHeight * 2 ** i, width: s.featureWidth * 2 ** i };
    const [inChannels, outChannels] = [upBlockWidth(spec, d - i), upBlockWidth(spec, d - i - 1)];
    // The last up block's phases go straight into the final conv (phaseConv): never interleaved at full size.
    out =
      i < d - 1
        ? upBlock(g, out, w.at(`up_blocks.${i}`), inChannels, outChannels, size)
        : upBlockPhases(g, out, w.at(`up_blocks.${i}`), inChannels, outChannels, size);
  }
  finalLayer(g, spec, w, out);
  return g;
}

/** The final conv (on the last up block's phases, where there are up blocks) + sigmoid → `prediction`. */
function finalLayer(g: OnnxGraph, spec: GeneratorSpec, w: Weights, decoded: string): void {
  const c = spec.numChannels;
  const final = w.at('final');
  const weight = final.get('weight', [c, spec.blockExpansion, 7, 7]);
  const bias = final.get('bias', [c]);
  const out = spec.numDownBlocks === 0 ? sameConv(g, decoded, weight, bias, 3) : phaseConv(g, decoded, weight, bias, 3);
  g.output('prediction', g.sigmoid(out), [1, c, spec.imageHeight, spec.imageWidth]);
}

/**
 * Dense motion from the keypoints, then the source features warped by it and occluded: the
 * bottleneck's input. The motion's `mask`, `occlusion` and `deformation` become outputs.
 */
function frameMotion(g: OnnxGraph, spec: GeneratorSpec, w: Weights, s: GeneratorShapes): string {
  const k = spec.numKp;
  const c = spec.numChannels;
  const features = g.input('features', [1, s.featureChannels, s.featureHeight, s.featureWidth]);
  const sourceSmall = g.input('source_small', [1, c, s.motionHeight, s.motionWidth]);
  const kpSource = { value: g.input('kp_source', [1, k, 2]), jacobian: undefined as string | undefined };
  const kpDriving = { value: g.input('kp_driving', [1, k, 2]), jacobian: undefined as string | undefined };
  if (spec.estimateJacobian) {
    kpSource.jacobian = g.input('jacobian_source', [1, k, 2, 2]);
    kpDriving.jacobian = g.input('jacobian_driving', [1, k, 2, 2]);
  }
  const motion = denseMotion(
    g,
    sourceSmall,
    kpSource,
    kpDriving,
    denseMotionSpec(spec),
    w.at('dense_motion_network'),
    s.motionHeight,
    s.motionWidth,
  );
  const motionSize = { height: s.motionHeight, width: s.motionWidth };
  let out = g.gridSample(
    features,
    resizeDeformation(g, motion.deformation, motionSize, { height: s.featureHeight, width: s.featureWidth }),
  );
  if (motion.occlusion) {
    const occlusion =
      s.featureHeight === s.motionHeight && s.featureWidth === s.motionWidth
        ? motion.occlusion
        : g.resizeBilinear(motion.occlusion, 1, 1, s.featureHeight, s.featureWidth);
    out = g.mul(out, occlusion);
  }
  g.output('mask', motion.mask, [1, k + 1, s.motionHeight, s.motionWidth]);
  if (motion.occlusion) g.output('occlusion', motion.occlusion, [1, 1, s.motionHeight, s.motionWidth]);
  g.output('deformation', motion.deformation, [1, s.motionHeight, s.motionWidth, 2]);
  return out;
}

/** The deformation [1, h, w, 2] resized bilinearly (as a 2-channel map) to another size, where it differs. */
function resizeDeformation(
  g: OnnxGraph,
  deformation: string,
  from: { height: number; width: number },
  to: { height: number; width: number },
): string {
  if (from.height === to.height && from.width === to.width) return deformation;
  const map = g.transpose(deformation, [0, 3, 1, 2]);
  return g.transpose(g.resizeBilinear(map, 1, 2, to.height, to.width), [0, 2, 3, 1]);
}

/** `deformed` [1, C, H, W]: the full-size `source` warped by a frame's `deformation` alone (for inspection and conformance). */
export function buildSourceWarp(spec: GeneratorSpec): OnnxGraph {
  const g = new OnnxGraph('fomm_source_warp');
  const s = generatorShapes(spec);
  const image = { height: spec.imageHeight, width: spec.imageWidth };
  const source = g.input('source', [1, spec.numChannels, image.height, image.width]);
  const deformation = g.input('deformation', [1, s.motionHeight, s.motionWidth, 2]);
  const grid = resizeDeformation(g, deformation, { height: s.motionHeight, width: s.motionWidth }, image);
  g.output('deformed', g.gridSample(source, grid), [1, spec.numChannels, image.height, image.width]);
  return g;
}
