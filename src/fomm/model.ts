import { availableParallelism } from 'node:os';
import * as ort from 'onnxruntime-node';
import { checkThreads, ReenactError } from '../errors.js';
import type { RgbImage } from '../types.js';
import { generatorSpec, keypointDetectorSpec, type FommModelParams, type FrameSize } from './architecture.js';
import { loadCheckpoint } from './checkpoint/load.js';
import { loadConfig, type FommConfig } from './config.js';
import { ModelCache } from './model-cache.js';
import {
  buildFrameGenerator,
  buildSourceEncoder,
  buildSourceWarp,
  decodedShape,
  decoderLayout,
  generatorShapes,
  type GeneratorShapes,
} from './graph/generator.js';
import { NativeDecoder, nativeDecoderFits } from './native/decoder.js';
import { buildKeypointDetector } from './graph/keypoint-detector.js';
import type { WinogradPolicy } from './onnx/builder.js';
import type { Keypoints } from './keypoints.js';
import type { FommWeights } from './checkpoint/tensors.js';
import { SessionThread, type ModelSession } from './session-thread.js';
import { StateDictWeights, Weights } from './checkpoint/tensors.js';

/** Bumped whenever the graphs built from the same weights change, so cached models are rebuilt. */
const GRAPH_VERSION = 14;

export interface FommModelOptions {
  /** A parsed config (model_params) or the path of a config .yaml. */
  config: FommConfig | string;
  /** A loaded checkpoint (or generated weights), or the path of a .pth.tar. */
  checkpoint: FommWeights | string;
  /** Threads for ONNX Runtime (intra-op) and the native decoder; default: all available cores. */
  threads?: number;
  /** Where built ONNX models are kept; default $REENACT_CACHE_DIR, else $XDG_CACHE_HOME/reenact or ~/.cache/reenact. */
  cacheDir?: string;
  /** Frame size the graphs are built for; default 256×256. */
  frameSize?: FrameSize;
  /** Winograd 3×3 convs: 'auto' (default) where faster. */
  winograd?: WinogradPolicy;
  /**
   * Whether idle ORT worker threads spin-wait (ORT's own default). Off by default here: the
   * pipeline decodes and encodes video beside the model, and spinning threads take the cores
   * those need (measured: 1176 vs 691 CPU ms per frame on a busy 2-core machine).
   */
  spinning?: boolean;
  /**
   * Run the generator's decoder (bottleneck and up blocks) with reenact's native kernels (Winograd
   * with fused transforms; built at install where a C++ compiler is present, used on CPUs with AVX2/FMA).
   * Default true where available; false keeps every layer in ONNX Runtime. Not with winograd 'never'.
   */
  nativeKernels?: boolean;
}

/** A float image, rows top to bottom, channels interleaved (HWC), values in [0, 1]. */
export interface FloatImage {
  width: number;
  height: number;
  channels: number;
  data: Float32Array;
}

/** A float32 map with its shape (NCHW without the batch). */
export interface FloatMap {
  shape: number[];
  data: Float32Array;
}

/** What the generator needs of the source, computed once per video. */
export interface SourceEncoding {
  keypoints: Keypoints;
  /** @internal graph inputs that depend on the source only. */
  readonly tensors: { features: ort.Tensor; sourceSmall: ort.Tensor; source: ort.Tensor };
}

export interface GeneratedFrame {
  image: FloatImage;
  debug?: {
    /** The source warped by the dense motion alone, full size. */
    deformed: FloatImage;
    /** [K + 1, h, w] dense-motion masks, background first. */
    mask: FloatMap;
    /** [h, w], when the model estimates occlusion. */
    occlusion?: FloatMap;
  };
}

/** The per-frame generator: one ONNX graph, or the graphs before and after the native decoder. */
type FrameGenerator =
  { whole: ModelSession } | { head: ModelSession; decoder: NativeDecoder; decodedShape: number[]; tail: ModelSession };

/**
 * The First Order Motion Model on ONNX Runtime: graphs built from the config and the checkpoint
 * (keypoint detector, source encoder, per-frame generator, and the source warp shown in debug
 * output), cached on disk. The graphs run on a thread of the model's own and the native decoder
 * on the libuv pool, so the JavaScript thread stays free while a frame is made.
 */
export class FommModel {
  private constructor(
    readonly params: FommModelParams,
    readonly frameSize: FrameSize,
    private readonly thread: SessionThread,
    private readonly keypointSession: ModelSession,
    private readonly encoderSession: ModelSession,
    private readonly generator: FrameGenerator,
    private readonly warpSession: ModelSession,
    private readonly shapes: GeneratorShapes,
  ) {}

  static async load(options: FommModelOptions): Promise<FommModel> {
    const params = typeof options.config === 'string' ? await loadConfig(options.config) : options.config;
    const weights =
      typeof options.checkpoint === 'string' ? await loadCheckpoint(options.checkpoint) : options.checkpoint;
    const frameSize = options.frameSize ?? { height: 256, width: 256 };
    const threads = checkThreads(options.threads) ?? availableParallelism();
    const genSpec = generatorSpec(params, frameSize, options.winograd);
    const shapes = generatorShapes(genSpec);
    const layout = decoderLayout(genSpec);
    const native = options.nativeKernels !== false && options.winograd !== 'never' && nativeDecoderFits(layout);
    const cache = ModelCache.open(options.cacheDir, {
      version: GRAPH_VERSION,
      weights: weights.sha256,
      params,
      frameSize,
      winograd: options.winograd ?? 'auto',
      native,
      ort: ort.env.versions.common,
    });
    const kpSpec = keypointDetectorSpec(params, frameSize, options.winograd);
    const kpWeights = new Weights(new StateDictWeights(weights.kpDetector, 'kp_detector'));
    const genWeights = new Weights(new StateDictWeights(weights.generator, 'generator'));
    const sessionOptions: ort.InferenceSession.SessionOptions = {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      // Fusing the Winograd transposes into its MatMul makes ORT's kernel about 2x slower.
      extra: {
        optimization: { disable_specified_optimizers: 'MatmulTransposeFusion' },
        session: { intra_op: { allow_spinning: options.spinning ? '1' : '0' } },
      },
    };
    const thread = SessionThread.start();
    try {
      const session = async (name: string, build: () => { toBytes(): Uint8Array }) =>
        thread.create(await cache.model(name, build), sessionOptions);
      const keypointSession = await session('keypoint-detector.onnx', () => buildKeypointDetector(kpSpec, kpWeights));
      const encoderSession = await session('source-encoder.onnx', () => buildSourceEncoder(genSpec, genWeights));
      const generator: FrameGenerator = native
        ? {
            head: await session('frame-generator-head.onnx', () => buildFrameGenerator(genSpec, genWeights, 'head')),
            decoder: NativeDecoder.build(genWeights, layout, threads),
            decodedShape: decodedShape(genSpec),
            tail: await session('frame-generator-tail.onnx', () => buildFrameGenerator(genSpec, genWeights, 'tail')),
          }
        : { whole: await session('frame-generator.onnx', () => buildFrameGenerator(genSpec, genWeights)) };
      const warpSession = await session('source-warp.onnx', () => buildSourceWarp(genSpec));
      await cache.prune();
      return new FommModel(params, frameSize, thread, keypointSession, encoderSession, generator, warpSession, shapes);
    } catch (error) {
      await thread.stop();
      throw error;
    }
  }

  /** Whether the decoder runs on reenact's native kernels (see `nativeKernels`). */
  get usesNativeKernels(): boolean {
    return 'decoder' in this.generator;
  }

  get numKp(): number {
    return this.params.commonParams.numKp;
  }

  private imageTensor(image: RgbImage): ort.Tensor {
    const { height, width } = this.frameSize;
    if (image.width !== width || image.height !== height) {
      throw new ReenactError(
        'BAD_ARGUMENT',
        `The model takes ${width}x${height} frames; this one is ${image.width}x${image.height}.`,
        'Crop and resize the face to the model size first.',
      );
    }
    const plane = width * height;
    const data = new Float32Array(3 * plane);
    for (let i = 0; i < plane; i++) {
      data[i] = image.data[i * 3]! / 255;
      data[plane + i] = image.data[i * 3 + 1]! / 255;
      data[2 * plane + i] = image.data[i * 3 + 2]! / 255;
    }
    return new ort.Tensor('float32', data, [1, 3, height, width]);
  }

  private async keypointsOf(image: ort.Tensor): Promise<Keypoints> {
    const out = await this.keypointSession.run({ image });
    return {
      numKp: this.numKp,
      value: out.value!.data as Float32Array,
      jacobian: out.jacobian ? (out.jacobian.data as Float32Array) : undefined,
    };
  }

  /** Keypoints (and jacobians) of a frame of the model's size. */
  async detectKeypoints(image: RgbImage): Promise<Keypoints> {
    return this.keypointsOf(this.imageTensor(image));
  }

  /** Keypoints and encoder features of the source photo; reuse for every driving frame. */
  async encodeSource(image: RgbImage): Promise<SourceEncoding> {
    const source = this.imageTensor(image);
    const [keypoints, encoded] = [await this.keypointsOf(source), await this.encoderSession.run({ source })];
    return { keypoints, tensors: { features: encoded.features!, sourceSmall: encoded.source_small!, source } };
  }

  /** One output frame for (normalised) driving keypoints. */
  async generate(
    source: SourceEncoding,
    kpDriving: Keypoints,
    options: { debug?: boolean } = {},
  ): Promise<GeneratedFrame> {
    const k = this.numKp;
    if (kpDriving.numKp !== k || kpDriving.value.length !== 2 * k) {
      throw new ReenactError(
        'BAD_ARGUMENT',
        `Driving keypoints have ${kpDriving.numKp} points; the model has ${k}.`,
        'Use keypoints detected by the same model.',
      );
    }
    const feeds: Record<string, ort.Tensor> = {
      features: source.tensors.features,
      source_small: source.tensors.sourceSmall,
      kp_source: new ort.Tensor('float32', source.keypoints.value, [1, k, 2]),
      kp_driving: new ort.Tensor('float32', kpDriving.value, [1, k, 2]),
    };
    if (this.params.commonParams.estimateJacobian) {
      if (!source.keypoints.jacobian || !kpDriving.jacobian) {
        throw new ReenactError(
          'BAD_ARGUMENT',
          'This model needs keypoint jacobians; the keypoints given have none.',
          'Use keypoints detected by the same model.',
        );
      }
      feeds.jacobian_source = new ort.Tensor('float32', source.keypoints.jacobian, [1, k, 2, 2]);
      feeds.jacobian_driving = new ort.Tensor('float32', kpDriving.jacobian, [1, k, 2, 2]);
    }
    const debugFetches = options.debug
      ? ['mask', 'deformation', ...(this.params.generatorParams.estimateOcclusionMap ? ['occlusion'] : [])]
      : [];
    let out: Record<string, ort.Tensor>;
    if ('whole' in this.generator) {
      out = await this.generator.whole.run(feeds, ['prediction', ...debugFetches]);
    } else {
      const { head, decoder, decodedShape, tail } = this.generator;
      out = await head.run(feeds, ['warped', ...debugFetches]);
      // The tail reads the decoder's output buffer before the next decode may overwrite it.
      const tailOut = await decoder.decode(out.warped!.data as Float32Array, (decoded) =>
        tail.run({ decoded: new ort.Tensor('float32', decoded, decodedShape) }),
      );
      out = { ...out, ...tailOut };
    }
    const image = toHwc(out.prediction!);
    if (!options.debug) return { image };
    const { motionHeight: h, motionWidth: w } = this.shapes;
    return {
      image,
      debug: {
        deformed: toHwc(
          (await this.warpSession.run({ source: source.tensors.source, deformation: out.deformation! })).deformed!,
        ),
        mask: { shape: [k + 1, h, w], data: out.mask!.data as Float32Array },
        occlusion: out.occlusion ? { shape: [h, w], data: out.occlusion.data as Float32Array } : undefined,
      },
    };
  }

  async dispose(): Promise<void> {
    const generator = 'whole' in this.generator ? [this.generator.whole] : [this.generator.head, this.generator.tail];
    await Promise.all(
      [this.keypointSession, this.encoderSession, ...generator, this.warpSession].map((session) => session.release()),
    );
    await this.thread.stop();
  }
}

/** [1, C, H, W] → HWC. */
function toHwc(tensor: ort.Tensor): FloatImage {
  const [, channels, height, width] = tensor.dims as [number, number, number, number];
  const planar = tensor.data as Float32Array;
  const plane = height * width;
  const data = new Float32Array(plane * channels);
  for (let c = 0; c < channels; c++) for (let i = 0; i < plane; i++) data[i * channels + c] = planar[c * plane + i]!;
  return { width, height, channels, data };
}

/** 8-bit RGB of a float image in [0, 1] (rounded, clamped). */
export function toRgbImage(image: FloatImage): RgbImage {
  const data = new Uint8Array(image.width * image.height * 3);
  for (let i = 0; i < data.length; i++) data[i] = Math.min(255, Math.max(0, Math.round(image.data[i]! * 255)));
  return { width: image.width, height: image.height, data };
}
