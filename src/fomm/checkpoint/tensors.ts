import { ReenactError } from '../../errors.js';
import type { ConvKernels, FloatTensor } from '../onnx/builder.js';

export interface TensorData {
  /** float16/float64/bfloat16 tensors come out as float32; int8/int16 as int32. */
  dtype: 'float32' | 'int64' | 'int32' | 'uint8' | 'bool';
  shape: number[];
  /** Contiguous, row-major; may be a view into the checkpoint file's buffer. */
  data: Float32Array | BigInt64Array | Int32Array | Uint8Array;
}

/** Parameter and buffer tensors by their state-dict key (e.g. `kp.weight`). */
export type StateDict = Map<string, TensorData>;

/**
 * A model's weights: the generator's and the keypoint detector's state dicts, from a checkpoint
 * file (loadCheckpoint) or generated (random weights for tests and benchmarks).
 */
export interface FommWeights {
  generator: StateDict;
  kpDetector: StateDict;
  /** Hex digest identifying the weights (SHA-256 of a checkpoint file), to key caches of converted models. */
  sha256: string;
  /** The checkpoint file's container format; absent for generated weights. */
  format?: 'legacy' | 'zip';
}

/** Where the graph builders get their weights: a checkpoint, or a recorder of the expected shapes. */
export interface WeightSource {
  /** The float32 tensor `key` with exactly `shape`. */
  get(key: string, shape: number[]): FloatTensor;
}

/** Reads weights from a state dict; a missing or misshapen tensor is a CHECKPOINT_MISMATCH naming it. */
export class StateDictWeights implements WeightSource {
  constructor(
    private readonly dict: StateDict,
    private readonly dictName: string,
  ) {}

  get(key: string, shape: number[]): FloatTensor {
    const tensor = this.dict.get(key);
    const where = `${this.dictName}.${key}`;
    if (!tensor) {
      throw new ReenactError(
        'CHECKPOINT_MISMATCH',
        `The checkpoint has no tensor ${where}; the config expects one of shape [${shape.join(', ')}].`,
        'Use the config the checkpoint was trained with (num_kp, block_expansion, max_features, num_blocks...).',
      );
    }
    const sameShape = tensor.shape.length === shape.length && tensor.shape.every((d, i) => d === shape[i]);
    if (!sameShape || tensor.dtype !== 'float32' || !(tensor.data instanceof Float32Array)) {
      throw new ReenactError(
        'CHECKPOINT_MISMATCH',
        `Checkpoint tensor ${where} is ${tensor.dtype} [${tensor.shape.join(', ')}]; the config expects float32 [${shape.join(', ')}].`,
        'Use the config the checkpoint was trained with (num_kp, block_expansion, max_features, num_blocks...).',
      );
    }
    return { dims: shape, data: tensor.data };
  }
}

/** Records the key and shape of every tensor a builder asks for (the architecture's state-dict layout). */
export class ShapeRecorder implements WeightSource {
  readonly shapes = new Map<string, number[]>();

  get(key: string, shape: number[]): FloatTensor {
    this.shapes.set(key, shape);
    return { dims: shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) };
  }
}

/** A view of a weight source under a key prefix, e.g. `predictor.encoder.down_blocks.0.`. */
export class Weights {
  constructor(
    private readonly source: WeightSource,
    private readonly prefix = '',
  ) {}

  at(name: string): Weights {
    return new Weights(this.source, `${this.prefix}${name}.`);
  }

  get(name: string, shape: number[]): FloatTensor {
    return this.source.get(`${this.prefix}${name}`, shape);
  }

  /** Batch norm in inference mode as a per-channel affine map: y = x * scale + shift. */
  batchNorm(channels: number): { scale: Float32Array; shift: Float32Array } {
    const weight = this.get('weight', [channels]).data;
    const bias = this.get('bias', [channels]).data;
    const mean = this.get('running_mean', [channels]).data;
    const variance = this.get('running_var', [channels]).data;
    const scale = new Float32Array(channels);
    const shift = new Float32Array(channels);
    for (let c = 0; c < channels; c++) {
      const s = weight[c]! / Math.sqrt(variance[c]! + 1e-5);
      scale[c] = s;
      shift[c] = bias[c]! - mean[c]! * s;
    }
    return { scale, shift };
  }
}

/** Folds a following per-channel affine map (inference batch norm) into a conv's weight and bias: exact up to rounding. */
export function foldAffine(
  weight: FloatTensor,
  bias: FloatTensor,
  scale: Float32Array,
  shift: Float32Array,
): ConvKernels {
  const out = weight.dims[0]!;
  const perOutput = weight.data.length / out;
  const folded = new Float32Array(weight.data.length);
  const foldedBias = new Float32Array(out);
  for (let o = 0; o < out; o++) {
    const s = scale[o]!;
    for (let i = 0; i < perOutput; i++) folded[o * perOutput + i] = weight.data[o * perOutput + i]! * s;
    foldedBias[o] = bias.data[o]! * s + shift[o]!;
  }
  return { weight: { dims: weight.dims, data: folded }, bias: { dims: [out], data: foldedBias } };
}
