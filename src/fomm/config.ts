/**
 * The `model_params` of a First Order Motion Model YAML config (configs/vox-256.yaml etc.), typed and
 * validated, with the reference implementation's defaults for the optional keys. Other sections
 * (dataset, training, discriminator) and unknown keys are ignored, as forks add their own.
 */
import { parse } from 'yaml';
import { ReenactError } from '../errors.js';
import { readInputFile } from '../media/image.js';

/** The `model_params` section of a FOMM config: what the networks' shapes depend on. */
export interface FommConfig {
  commonParams: {
    /** Number of keypoints K (10 in every published model). */
    numKp: number;
    /** Image channels (3, RGB). */
    numChannels: number;
    /** Whether keypoints carry 2x2 jacobians (first-order model); default false. */
    estimateJacobian: boolean;
  };
  kpDetectorParams: {
    /** Softmax temperature of the keypoint heatmaps. */
    temperature: number;
    /** Hourglass width multiplier E. */
    blockExpansion: number;
    /** Hourglass channel cap M. */
    maxFeatures: number;
    /** The detector sees the image scaled by this (0.25: 256 -> 64); default 1. */
    scaleFactor: number;
    /** Hourglass depth B. */
    numBlocks: number;
    /** One jacobian map shared by all keypoints (mgif); default false. */
    singleJacobianMap: boolean;
    /** Padding of the 7x7 keypoint/jacobian convolutions; default 0. */
    pad: number;
  };
  generatorParams: {
    /** Width multiplier E of the encoder/decoder. */
    blockExpansion: number;
    /** Channel cap M of the encoder/decoder. */
    maxFeatures: number;
    /** Down (and up) blocks D. */
    numDownBlocks: number;
    /** Residual blocks in the bottleneck. */
    numBottleneckBlocks: number;
    /** Whether the dense motion network predicts an occlusion map; default false. */
    estimateOcclusionMap: boolean;
    denseMotionParams: {
      /** Hourglass width multiplier. */
      blockExpansion: number;
      /** Hourglass channel cap. */
      maxFeatures: number;
      /** Hourglass depth. */
      numBlocks: number;
      /** Dense motion runs on the source scaled by this; default 1. */
      scaleFactor: number;
      /** Variance of the keypoint Gaussians; default 0.01. */
      kpVariance: number;
    };
  };
}

/** Reads and validates a FOMM YAML config file. */
export async function loadConfig(path: string): Promise<FommConfig> {
  const bytes = await readInputFile(path, 'BAD_CONFIG', 'config', 'Check that the file is readable.');
  return parseConfig(bytes.toString('utf8'), path);
}

type Section = Record<string, unknown>;

/** Validates config text; `source` names the file in error messages. */
export function parseConfig(text: string, source = 'the config'): FommConfig {
  const fail = (message: string, cause?: unknown): ReenactError =>
    new ReenactError(
      'BAD_CONFIG',
      `${source}: ${message}`,
      'Use the YAML config that belongs to the checkpoint (e.g. config/vox-256.yaml from the First Order Motion Model repository).',
      cause === undefined ? undefined : { cause },
    );
  let document: unknown;
  try {
    document = parse(text);
  } catch (cause) {
    throw fail(`is not valid YAML (${(cause as Error).message.split('\n')[0]}).`, cause);
  }
  const section = (parent: unknown, path: string): Section => {
    const key = path.split('.').pop()!;
    const value = isSection(parent) ? parent[key] : undefined;
    if (value === undefined || value === null) throw fail(`${path} is missing; a FOMM config needs it.`);
    if (!isSection(value)) throw fail(`${path} must be a mapping of keys, not ${JSON.stringify(value)}.`);
    return value;
  };
  const read = <T>(parent: Section, path: string, check: (v: unknown) => v is T, expected: string, fallback?: T): T => {
    const value = parent[path.split('.').pop()!];
    if (value === undefined || value === null) {
      if (fallback === undefined) throw fail(`${path} is missing; it must be ${expected}.`);
      return fallback;
    }
    if (!check(value)) throw fail(`${path} must be ${expected} (got ${JSON.stringify(value)}).`);
    return value;
  };
  const count = (parent: Section, path: string, fallback?: number): number =>
    read(parent, path, isPositiveInteger, 'a positive integer', fallback);
  const flag = (parent: Section, path: string, fallback: boolean): boolean =>
    read(parent, path, isBoolean, 'true or false', fallback);
  const scale = (parent: Section, path: string): number => read(parent, path, isScale, 'a number in (0, 1]', 1);
  const positive = (parent: Section, path: string, fallback?: number): number =>
    read(parent, path, isPositiveNumber, 'a positive number', fallback);
  const nonNegative = (parent: Section, path: string, fallback?: number): number =>
    read(parent, path, isNonNegativeInteger, 'a non-negative integer', fallback);

  const model = section(document, 'model_params');
  const common = section(model, 'model_params.common_params');
  const kp = section(model, 'model_params.kp_detector_params');
  const generator = section(model, 'model_params.generator_params');
  const dense = section(generator, 'model_params.generator_params.dense_motion_params');
  const p = (s: string, key: string): string => `model_params.${s}.${key}`;
  /** What the keypoint detector and the dense motion network both take: their hourglass's size and input scale. */
  const hourglassParams = (parent: Section, s: string) => ({
    blockExpansion: count(parent, p(s, 'block_expansion')),
    maxFeatures: count(parent, p(s, 'max_features')),
    numBlocks: count(parent, p(s, 'num_blocks')),
    scaleFactor: scale(parent, p(s, 'scale_factor')),
  });
  return {
    commonParams: {
      numKp: count(common, p('common_params', 'num_kp')),
      numChannels: count(common, p('common_params', 'num_channels')),
      estimateJacobian: flag(common, p('common_params', 'estimate_jacobian'), false),
    },
    kpDetectorParams: {
      temperature: positive(kp, p('kp_detector_params', 'temperature')),
      ...hourglassParams(kp, 'kp_detector_params'),
      singleJacobianMap: flag(kp, p('kp_detector_params', 'single_jacobian_map'), false),
      pad: nonNegative(kp, p('kp_detector_params', 'pad'), 0),
    },
    generatorParams: {
      blockExpansion: count(generator, p('generator_params', 'block_expansion')),
      maxFeatures: count(generator, p('generator_params', 'max_features')),
      numDownBlocks: count(generator, p('generator_params', 'num_down_blocks')),
      numBottleneckBlocks: nonNegative(generator, p('generator_params', 'num_bottleneck_blocks')),
      estimateOcclusionMap: flag(generator, p('generator_params', 'estimate_occlusion_map'), false),
      denseMotionParams: {
        ...hourglassParams(dense, 'generator_params.dense_motion_params'),
        kpVariance: positive(dense, p('generator_params.dense_motion_params', 'kp_variance'), 0.01),
      },
    },
  };
}

function isSection(value: unknown): value is Section {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
function isBoolean(value: unknown): value is boolean {
  return typeof value === 'boolean';
}
function isPositiveInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0;
}
function isNonNegativeInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}
function isPositiveNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0;
}
function isScale(value: unknown): value is number {
  return isPositiveNumber(value) && value <= 1;
}
