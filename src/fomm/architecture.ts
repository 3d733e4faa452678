import type { FommConfig } from './config.js';
import type { GeneratorSpec } from './graph/generator.js';
import type { KeypointDetectorSpec } from './graph/keypoint-detector.js';
import type { WinogradPolicy } from './onnx/builder.js';

/** model_params of a FOMM config (camelCase), as the graph builders read them. */
export type FommModelParams = FommConfig;

/** The frame size the graphs are built for (the published models use 256×256). */
export interface FrameSize {
  height: number;
  width: number;
}

export function keypointDetectorSpec(
  params: FommModelParams,
  size: FrameSize,
  winograd?: WinogradPolicy,
): KeypointDetectorSpec {
  return {
    ...params.commonParams,
    ...params.kpDetectorParams,
    imageHeight: size.height,
    imageWidth: size.width,
    winograd,
  };
}

export function generatorSpec(params: FommModelParams, size: FrameSize, winograd?: WinogradPolicy): GeneratorSpec {
  const { denseMotionParams, ...generator } = params.generatorParams;
  return {
    ...params.commonParams,
    ...generator,
    denseMotion: denseMotionParams,
    imageHeight: size.height,
    imageWidth: size.width,
    winograd,
  };
}
