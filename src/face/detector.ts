import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Config, Human } from '@vladmandic/human';
import type { Box, RgbImage } from '../types.js';

const require = createRequire(import.meta.url);

/** Number of landmarks per face: the 468 Face Mesh points followed by 10 iris points. */
export const LANDMARK_COUNT = 478;

export interface FaceBox {
  /** Face box in image pixels (BlazeFace; refined by the mesh when landmarks were computed). */
  box: Box;
  /** Detector confidence in [0, 1]. */
  score: number;
}

export interface Face extends FaceBox {
  /** LANDMARK_COUNT (x, y, z) triples in image pixels, in MediaPipe Face Mesh order. */
  landmarks: Float32Array;
}

export interface FaceAnalyzerOptions {
  /** Most faces reported per image. Default 10. */
  maxFaces?: number;
  /** Lowest detector score kept. Default 0.3. */
  minConfidence?: number;
}

type TfCore = typeof import('@tensorflow/tfjs-core');

/**
 * Face detection (MediaPipe BlazeFace) and the 468-point mesh with irises (Face Mesh + Iris),
 * run with the models shipped inside @vladmandic/human on its WebAssembly backend.
 * Nothing is fetched: models and wasm binaries are read from node_modules.
 */
export class FaceAnalyzer {
  /** Human is stateful per call; calls are chained so concurrent callers never interleave. */
  private queue: Promise<unknown> = Promise.resolve();
  /** The video stream whose face regions Human holds in its cache, if the last call tracked one. */
  private lastStream: object | undefined;

  private constructor(
    private readonly human: Human,
    private readonly tf: TfCore,
  ) {}

  static async create(options: FaceAnalyzerOptions = {}): Promise<FaceAnalyzer> {
    const tf = require('@tensorflow/tfjs-core') as TfCore;
    registerFileLoader(tf);
    const humanDist = dirname(require.resolve('@vladmandic/human'));
    const wasmDist = join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm')), '/');
    const { Human } = loadHumanWithSubpixelMesh(join(humanDist, 'human.node-wasm.js'));
    const config: Partial<Config> = {
      backend: 'wasm',
      wasmPath: wasmDist,
      modelBasePath: `file://${join(humanDist, '..', 'models')}/`,
      debug: false,
      async: false,
      warmup: 'none',
      cacheSensitivity: 0,
      filter: { enabled: false } as Config['filter'],
      face: {
        enabled: true,
        detector: {
          enabled: true,
          rotation: true,
          maxDetected: options.maxFaces ?? 10,
          minConfidence: options.minConfidence ?? 0.3,
          iouThreshold: 0.1,
          skipFrames: 0,
          skipTime: 0,
          return: false,
        },
        mesh: { enabled: true, keepInvalid: false },
        iris: { enabled: true, skipFrames: 0, skipTime: 0 },
        attention: { enabled: false },
        emotion: { enabled: false },
        description: { enabled: false },
        antispoof: { enabled: false },
        liveness: { enabled: false },
        gear: { enabled: false },
      } as unknown as Config['face'],
      body: { enabled: false } as Config['body'],
      hand: { enabled: false } as Config['hand'],
      object: { enabled: false } as Config['object'],
      gesture: { enabled: false },
      segmentation: { enabled: false } as Config['segmentation'],
    };
    const human = new Human(config);
    await human.load();
    return new FaceAnalyzer(human, tf);
  }

  /** Faces in the image with their landmarks, largest box first. Empty when there is none. */
  detect(image: RgbImage): Promise<Face[]> {
    return this.enqueue(() => this.detectNow(image, true) as Promise<Face[]>);
  }

  /**
   * Face boxes and scores only (BlazeFace, no mesh), largest first: several times faster than
   * `detect`, for tracking faces through every frame of a video.
   */
  detectBoxes(image: RgbImage): Promise<FaceBox[]> {
    return this.enqueue(() => this.detectNow(image, false));
  }

  /**
   * Faces in one frame of a video stream, for per-frame tracking: the mesh runs on the regions
   * the previous frame's landmarks give (MediaPipe's tracking; BlazeFace is skipped), and the
   * detector runs again only when the mesh loses a face. `stream` identifies the video; a new
   * object, `redetect`, or any other analyzer call in between starts from a fresh detection.
   */
  detectInStream(image: RgbImage, stream: object, options: { redetect?: boolean } = {}): Promise<Face[]> {
    return this.enqueue(() => {
      const continuing = this.lastStream === stream && !options.redetect;
      const result = this.detectNow(image, true, continuing) as Promise<Face[]>;
      this.lastStream = stream;
      return result;
    });
  }

  private enqueue<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async detectNow(image: RgbImage, withMesh: boolean, reuseRegions = false): Promise<FaceBox[]> {
    this.lastStream = undefined;
    const input = this.tf.tensor3d(image.data, [image.height, image.width, 3], 'int32');
    try {
      // Human reuses its cached face regions only when skipAllowed (frame difference below
      // cacheSensitivity) and the skip frame/time budgets allow; both are unlimited while tracking.
      const skip = reuseRegions ? Number.MAX_SAFE_INTEGER : 0;
      const override = {
        cacheSensitivity: reuseRegions ? 1e9 : 0,
        face: { detector: { skipFrames: skip, skipTime: skip }, mesh: { enabled: withMesh }, iris: { enabled: withMesh } },
      } as Partial<Config>;
      const result = await this.human.detect(input as never, override);
      if (!withMesh) {
        return result.face
          .map((face) => ({ box: { x: face.box[0], y: face.box[1], width: face.box[2], height: face.box[3] }, score: face.boxScore ?? face.score }))
          .sort((a, b) => b.box.width * b.box.height - a.box.width * a.box.height);
      }
      const faces: Face[] = [];
      for (const face of result.face) {
        if (face.mesh.length < LANDMARK_COUNT) continue;
        const landmarks = new Float32Array(LANDMARK_COUNT * 3);
        for (let i = 0; i < LANDMARK_COUNT; i++) {
          const [u, v, z] = face.meshRaw[i]!;
          const x = u * image.width;
          const y = v * image.height;
          landmarks[i * 3] = x;
          landmarks[i * 3 + 1] = y;
          landmarks[i * 3 + 2] = z ?? 0;
        }
        const [x, y, width, height] = face.box;
        faces.push({ box: { x, y, width, height }, score: face.boxScore ?? face.score, landmarks });
      }
      return faces.sort((a, b) => b.box.width * b.box.height - a.box.width * a.box.height);
    } finally {
      input.dispose();
    }
  }
}

/** Human 3.3.6 truncates mesh coordinates to whole pixels; this is its return statement. */
const TRUNCATED_MESH = 'return c.map(x=>[Math.trunc(x[0]+y[0]),Math.trunc(x[1]+y[1]),Math.trunc(x[2]||0)])';
const SUBPIXEL_MESH = 'return c.map(x=>[x[0]+y[0],x[1]+y[1],x[2]||0])';

/**
 * The face region Human keeps for the next frame while tracking takes its rotation from the
 * cached box's landmarks, which it leaves as the first detection's BlazeFace points; this hands
 * it the new mesh instead, so the region turns with the head (Human's rotation code already
 * reads mesh landmarks). Only the tracking path (detectInStream) reuses cached regions.
 */
const STALE_TRACKING_ROTATION = 'let n0={...k3(P.mesh,p),confidence:p.confidence,landmarks:p.landmarks,size:p.size}';
const MESH_TRACKING_ROTATION = 'let n0={...k3(P.mesh,p),confidence:p.confidence,landmarks:P.mesh,size:p.size}';

/**
 * Loads Human's Node/wasm bundle with the mesh truncation removed, in memory. Whole-pixel
 * landmarks are too coarse: 1 px over a 40 px eye distance is 1.4 degrees of roll, and mesh
 * warping would jitter. The patterns are checked so a different Human version fails loudly.
 */
function loadHumanWithSubpixelMesh(file: string): typeof import('@vladmandic/human') {
  const source = readFileSync(file, 'utf8');
  for (const pattern of [TRUNCATED_MESH, STALE_TRACKING_ROTATION]) {
    const at = source.indexOf(pattern);
    if (at < 0 || source.indexOf(pattern, at + 1) >= 0) {
      throw new Error(`Unexpected @vladmandic/human build at ${file}: reenact needs version 3.3.6 (run npm ci).`);
    }
  }
  const ModuleClass = require('node:module') as {
    new (id: string, parent?: unknown): { filename: string; paths: string[]; exports: unknown; _compile(code: string, file: string): void };
    _nodeModulePaths(dir: string): string[];
  };
  const module = new ModuleClass(file);
  module.filename = file;
  module.paths = ModuleClass._nodeModulePaths(dirname(file));
  module._compile(source.replace(TRUNCATED_MESH, SUBPIXEL_MESH).replace(STALE_TRACKING_ROTATION, MESH_TRACKING_ROTATION), file);
  return module.exports as typeof import('@vladmandic/human');
}

let fileLoaderRegistered = false;

/** Node's fetch has no file:// scheme; tfjs model loading goes through this router instead. */
function registerFileLoader(tf: TfCore): void {
  if (fileLoaderRegistered) return;
  fileLoaderRegistered = true;
  tf.io.registerLoadRouter((url) => {
    const path = Array.isArray(url) ? undefined : url;
    if (typeof path !== 'string' || !path.startsWith('file://')) return null as unknown as import('@tensorflow/tfjs-core').io.IOHandler;
    const file = path.slice('file://'.length);
    return {
      load: async () => {
        const json = JSON.parse(readFileSync(file, 'utf8')) as {
          modelTopology: object;
          format?: string;
          generatedBy?: string;
          convertedBy?: string;
          weightsManifest: { paths: string[]; weights: import('@tensorflow/tfjs-core').io.WeightsManifestEntry[] }[];
        };
        const weightSpecs = json.weightsManifest.flatMap((group) => group.weights);
        const weights = Buffer.concat(
          json.weightsManifest.flatMap((group) => group.paths.map((p) => readFileSync(join(dirname(file), p)))),
        );
        return {
          modelTopology: json.modelTopology,
          format: json.format,
          generatedBy: json.generatedBy,
          convertedBy: json.convertedBy,
          weightSpecs,
          weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength),
        };
      },
    };
  });
}
