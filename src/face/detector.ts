import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Tensor } from '@tensorflow/tfjs-core';
import type { Config, Human } from '@vladmandic/human';
import { ReenactError } from '../errors.js';
import { faceModelRunner, type FaceModelRunner } from './face-models.js';
import { rollDegrees } from './landmarks.js';
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

/**
 * The face regions (Human's BlazeFace boxes with their keypoints) one detection cropped its faces
 * by: opaque plain data, kept to crop the next frame of a video the same way (detectNextFrame).
 */
export type FaceRegions = readonly object[];

/** A video frame's faces (largest box first) and the regions they were cropped by. */
export interface FrameDetection {
  faces: Face[];
  regions: FaceRegions;
  /**
   * `regions` moved with the face (detectNextFrame's `track`): on a full detection the regions
   * themselves, on a tracked frame its regions moved by how far the face moved since the frame before.
   */
  tracked: FaceRegions;
  /** True when the faces were found on the previous frame's regions (BlazeFace skipped). */
  reused: boolean;
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
  /**
   * The frame's pixels as float32, reused from call to call (tfjs's wasm backend copies them in when the
   * tensor is made): a fresh 3.7 MB array per 640x480 frame kept the garbage collector busy.
   */
  private frameValues = new Float32Array(0);
  private unread: Tensor | undefined;

  private constructor(
    private readonly human: Human,
    private readonly tf: TfCore,
    /** Human's face region cache, opened by the load patch (see REGION_CACHE). */
    private readonly regionCache: RegionCache,
    /** What the patched bundle runs the face models and crops with. */
    private readonly runner: FaceModelRunner,
  ) {}

  static async create(options: FaceAnalyzerOptions = {}): Promise<FaceAnalyzer> {
    const tf = require('@tensorflow/tfjs-core') as TfCore;
    registerFileLoader(tf);
    const humanDist = dirname(require.resolve('@vladmandic/human'));
    const wasmDist = join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm')), '/');
    const { Human, reenactFaceRegions, reenactUseModels } = loadHumanWithSubpixelMesh(
      join(humanDist, 'human.node-wasm.js'),
    );
    const modelFolder = join(humanDist, '..', 'models');
    const runner = await faceModelRunner(tf, modelFolder);
    reenactUseModels(runner);
    const config: Partial<Config> = {
      backend: 'wasm',
      wasmPath: wasmDist,
      modelBasePath: `file://${modelFolder}/`,
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
    return new FaceAnalyzer(human, tf, reenactFaceRegions, runner);
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
   * Faces in a video frame by a full detection (as `detect`), with the regions they were cropped
   * by, for detectNextFrame on the frame after it. Depends on nothing but the image.
   */
  detectFrame(image: RgbImage): Promise<FrameDetection> {
    return this.enqueue(() => this.detectFrameNow(image));
  }

  /**
   * Faces in the frame after `previous` (a detectFrame of the frame before, on this or any
   * analyzer): the mesh runs on `previous`'s face regions, cropped and turned exactly as that
   * detection cropped them, and BlazeFace (over half of a detection's time) is skipped. When
   * `accept(faces, previous.faces)` says the result no longer follows the face (the regions are
   * a frame late: fast moves), or `previous` found no face or failed, the frame gets a full
   * detection instead. All of it is one job on this analyzer's queue, and it reads nothing but
   * `image` and `previous`: the result does not depend on which analyzer runs it or on what else
   * ran before. `previous` may still be pending: the job waits for it (queued ahead on the same
   * analyzer, it has settled by then). `track`: crop by `previous.tracked` instead, the regions
   * following the face from frame to frame (for long runs without BlazeFace).
   */
  detectNextFrame(
    image: RgbImage,
    previous: FrameDetection | Promise<FrameDetection>,
    accept: (faces: Face[], previous: Face[]) => boolean,
    track = false,
  ): Promise<FrameDetection> {
    const settled = Promise.resolve(previous).then(
      (detection) => detection,
      () => undefined,
    );
    return this.enqueue(async () => {
      const before = await settled;
      const regions = track ? before?.tracked : before?.regions;
      if (before && regions && regions.length > 0) {
        const faces = (await this.detectNow(image, true, regions)) as Face[];
        if (accept(faces, before.faces))
          return { faces, regions, tracked: followFace(regions, before.faces, faces), reused: true };
      }
      return this.detectFrameNow(image);
    });
  }

  private async detectFrameNow(image: RgbImage): Promise<FrameDetection> {
    const faces = (await this.detectNow(image, true)) as Face[];
    const regions = structuredClone(this.regionCache.used ?? []);
    return { faces, regions, tracked: regions, reused: false };
  }

  /**
   * Settles once nothing is queued or running on this analyzer. A worker thread must not be
   * terminated while it runs a face model (see WorkerReplies.idle): its owner waits for this first.
   */
  async idle(): Promise<void> {
    let queue: Promise<unknown>;
    do {
      queue = this.queue;
      await queue;
    } while (queue !== this.queue);
  }

  private enqueue<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** `regions`: crop the faces by these (from a detectFrame) instead of running BlazeFace. */
  private async detectNow(image: RgbImage, withMesh: boolean, regions?: FaceRegions): Promise<FaceBox[]> {
    // float32 and 3-D: Human works on this tensor's own data (a 4-D view of it, no cast or
    // copy), so the runner knows a crop of that is a crop of `image`.
    const input = regions ? this.unreadFrame(image) : this.frameTensor(image);
    this.runner.useFrame(input, image);
    // Copies: Human keeps and mutates the boxes it crops by.
    this.regionCache.given = regions ? structuredClone(regions as object[]) : undefined;
    this.regionCache.used = undefined;
    try {
      // Cached regions are never reused by Human itself (cacheSensitivity 0: every call detects
      // afresh); given regions come in through the patch (REGION_CHOICE_GIVEN).
      const override = {
        cacheSensitivity: 0,
        face: { detector: { skipFrames: 0, skipTime: 0 }, mesh: { enabled: withMesh }, iris: { enabled: withMesh } },
      } as Partial<Config>;
      const result = await this.human.detect(input as never, override);
      if (!withMesh) {
        return result.face
          .map((face) => ({
            box: { x: face.box[0], y: face.box[1], width: face.box[2], height: face.box[3] },
            score: face.boxScore ?? face.score,
          }))
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
      this.regionCache.given = undefined;
      this.runner.useFrame(undefined);
      if (input !== this.unread) input.dispose();
    }
  }

  /** The frame's pixels as a tensor, for BlazeFace (Human resizes it for the detector). */
  private frameTensor(image: RgbImage): Tensor {
    if (this.frameValues.length !== image.data.length) this.frameValues = new Float32Array(image.data.length);
    this.frameValues.set(image.data);
    return this.tf.tensor3d(this.frameValues, [image.height, image.width, 3], 'float32');
  }

  /**
   * A tensor of the frame's shape whose values Human never reads: on given regions BlazeFace is
   * skipped and every crop comes from `image` through the runner, so copying the pixels in (3.7 MB
   * of float32 at 640x480, ~1 ms) would be wasted. It holds NaN, so a read would not go unseen.
   */
  private unreadFrame(image: RgbImage): Tensor {
    const shape = this.unread?.shape;
    if (!this.unread || shape![0] !== image.height || shape![1] !== image.width) {
      this.unread?.dispose();
      this.unread = this.tf.fill([image.height, image.width, 3], NaN, 'float32');
    }
    return this.unread;
  }
}

/** A point of Human's face regions: [x, y] in image pixels. */
type RegionPoint = [number, number];
interface HumanRegion {
  startPoint: RegionPoint;
  endPoint: RegionPoint;
  /** BlazeFace's keypoints (eyes, nose, mouth, ears): Human turns the crop by them. */
  landmarks: RegionPoint[];
}

/**
 * `regions` moved by how far the face moved from `before` to `after` (the mean of its landmarks),
 * and their keypoints turned by how far it rolled, so that the next crop is turned as the head
 * now is (Face Mesh's roll leans towards its crop's). Moved, not refitted around the new mesh
 * (as Human's own tracking does): the face keeps the place and size in the crop that BlazeFace
 * gave it; refitted crops drifted several degrees of roll from a full detection over a few frames
 * on the driving clips. Only a single face is followed; with several the regions stay as they were.
 */
function followFace(regions: FaceRegions, before: Face[], after: Face[]): FaceRegions {
  const [from] = before;
  const [to] = after;
  if (regions.length !== 1 || before.length !== 1 || after.length !== 1 || !from || !to) return regions;
  // The mean shift of the landmarks, and their mean now (the centre of the turn).
  let dx = 0;
  let dy = 0;
  let cx = 0;
  let cy = 0;
  for (let i = 0; i < LANDMARK_COUNT; i++) {
    dx += (to.landmarks[i * 3]! - from.landmarks[i * 3]!) / LANDMARK_COUNT;
    dy += (to.landmarks[i * 3 + 1]! - from.landmarks[i * 3 + 1]!) / LANDMARK_COUNT;
    cx += to.landmarks[i * 3]! / LANDMARK_COUNT;
    cy += to.landmarks[i * 3 + 1]! / LANDMARK_COUNT;
  }
  const turn = ((rollDegrees(to) - rollDegrees(from)) * Math.PI) / 180;
  const [cos, sin] = [Math.cos(turn), Math.sin(turn)];
  const move = ([x, y]: RegionPoint): RegionPoint => [x + dx, y + dy];
  const moveAndTurn = (point: RegionPoint): RegionPoint => {
    const [x, y] = move(point);
    return [cx + (x - cx) * cos - (y - cy) * sin, cy + (x - cx) * sin + (y - cy) * cos];
  };
  return (regions as HumanRegion[]).map((region) => ({
    ...region,
    startPoint: move(region.startPoint),
    endPoint: move(region.endPoint),
    landmarks: region.landmarks.map(moveAndTurn),
  }));
}

/** The @vladmandic/human release the patches below were written against (package.json pins it). */
const HUMAN_VERSION = '3.3.6';

/** Human 3.3.6 truncates mesh coordinates to whole pixels; this is its return statement. */
const TRUNCATED_MESH = 'return c.map(x=>[Math.trunc(x[0]+y[0]),Math.trunc(x[1]+y[1]),Math.trunc(x[2]||0)])';
const SUBPIXEL_MESH = 'return c.map(x=>[x[0]+y[0],x[1]+y[1],x[2]||0])';

/**
 * Human's face detection (one module-level cache per loaded bundle) chooses the regions to crop
 * faces by: BlazeFace's, or the previous call's while it may skip. REGION_CHOICE puts regions
 * handed in through `given` first (FaceAnalyzer.detectNextFrame), and REGION_RETURN records the
 * regions the call cropped by in `used` (its BlazeFace boxes on a full detection; Human itself
 * keeps the mesh-refined boxes for tracking, which stay as they were). REGION_CACHE_EXPORT hands
 * the cache object out of the bundle.
 */
interface RegionCache {
  given: object[] | undefined;
  used: object[] | undefined;
}
const REGION_CHOICE =
  '!t.skipAllowed||!n||!o||Te.boxes.length===0?(Te.boxes=await S3(e,t),Te.timestamp=v(),Te.skipped=0):Te.skipped++;';
const REGION_CHOICE_GIVEN = `Te.given?(Te.boxes=Te.given,Te.given=void 0):${REGION_CHOICE}`;
const REGION_RETURN = 'return Te.boxes=s,r}';
const REGION_RETURN_USED = 'return Te.used=Te.boxes,Te.boxes=s,r}';
const REGION_CACHE = 'var Te={boxes:[],skipped:Number.MAX_SAFE_INTEGER,timestamp:0}';
const REGION_CACHE_EXPORT = '\n;module.exports.reenactFaceRegions=Te;\n';

/**
 * Human's three face models run through `reenactModels` (a FaceModelRunner: onnxruntime) where
 * the bundle called their tfjs `execute` (each call site is in an async function, so it awaits),
 * and the crops those models are fed through it: the face (faceCrop, or turnedCrop where Human
 * turns a tilted face upright first; with tfjs where they return nothing) and the eyes within it
 * (cropAndResize).
 * MODEL_RUNNER_EXPORT hands out the setter.
 */
const MODEL_CALLS: [string, string][] = [
  ['let s=xe==null?void 0:xe.execute(n.normalized);', 'let s=await reenactModels.blazeface(n.normalized);'],
  ['let N=s0.execute(P.tensor),', 'let N=await reenactModels.facemesh(P.tensor),'],
  ['let i=K0.execute(d);', 'let i=await reenactModels.iris(d);'],
  [
    'A=Pe.image.cropAndResize(t,[s],[0],n),a=Pe.div(A,C.tf255);return Pe.dispose(A),a}',
    'A=reenactModels.faceCrop(t,s,n);if(A)return A;A=Pe.image.cropAndResize(t,[s],[0],n);let a=Pe.div(A,C.tf255);return Pe.dispose(A),a}',
  ],
  [
    'c=ye.image.cropAndResize(t,[[a.startPoint[1]/r,a.startPoint[0]/r,a.endPoint[1]/r,a.endPoint[0]/r]],[0],[We,We])',
    'c=reenactModels.cropAndResize(t,[[a.startPoint[1]/r,a.startPoint[0]/r,a.endPoint[1]/r,a.endPoint[0]/r]],[0],[We,We])',
  ],
  [
    'i=Pe.image.rotateWithOffset(n,s,0,[d[0],d[1]]);A=v3(-s,c),a=v5(t,i,[o,o]),Pe.dispose(i)',
    'i=reenactModels.turnedCrop(n,s,d,t,[o,o]);A=v3(-s,c),i?a=i:(i=Pe.image.rotateWithOffset(n,s,0,[d[0],d[1]]),a=v5(t,i,[o,o]),Pe.dispose(i))',
  ],
];
const MODEL_RUNNER_EXPORT = '\n;var reenactModels;module.exports.reenactUseModels=m=>{reenactModels=m};\n';

/**
 * Human crops both eyes for the iris model mirrored (MediaPipe mirrors only one, the model being
 * trained on one side) and mirrors back only the other's coordinates: the image-left eye's iris
 * came out mirrored inside its eye box, moving the wrong way as the gaze moved. Its crop is left
 * unmirrored, as in MediaPipe.
 */
const MIRRORED_RIGHT_EYE_CROP = 'N3(e,t,h2.rightBounds[0],h2.rightBounds[1],n,!0,';
const RIGHT_EYE_CROP = 'N3(e,t,h2.rightBounds[0],h2.rightBounds[1],n,!1,';

/**
 * Loads Human's Node/wasm bundle with the mesh truncation removed, in memory. Whole-pixel
 * landmarks are too coarse: 1 px over a 40 px eye distance is 1.4 degrees of roll, and mesh
 * warping would jitter. The patterns are checked so a different Human version fails loudly.
 */
export function loadHumanWithSubpixelMesh(file: string): Required<PatchedHuman> {
  const source = readFileSync(file, 'utf8');
  const patterns = [TRUNCATED_MESH, REGION_CHOICE, REGION_RETURN, REGION_CACHE, MIRRORED_RIGHT_EYE_CROP];
  for (const pattern of [...patterns, ...MODEL_CALLS.map(([call]) => call)]) {
    const at = source.indexOf(pattern);
    if (at < 0 || source.indexOf(pattern, at + 1) >= 0) {
      throw unexpectedHuman(file);
    }
  }
  const ModuleClass = require('node:module') as {
    new (
      id: string,
      parent?: unknown,
    ): { filename: string; paths: string[]; exports: unknown; _compile(code: string, file: string): void };
    _nodeModulePaths(dir: string): string[];
  };
  const module = new ModuleClass(file);
  module.filename = file;
  module.paths = ModuleClass._nodeModulePaths(dirname(file));
  const patched = MODEL_CALLS.reduce(
    (code, [call, replacement]) => code.replace(call, replacement),
    source
      .replace(TRUNCATED_MESH, SUBPIXEL_MESH)
      .replace(REGION_CHOICE, REGION_CHOICE_GIVEN)
      .replace(REGION_RETURN, REGION_RETURN_USED)
      .replace(MIRRORED_RIGHT_EYE_CROP, RIGHT_EYE_CROP),
  );
  module._compile(patched + REGION_CACHE_EXPORT + MODEL_RUNNER_EXPORT, file);
  const loaded = module.exports as PatchedHuman;
  if (!loaded.reenactFaceRegions || !loaded.reenactUseModels) throw unexpectedHuman(file);
  return loaded as Required<PatchedHuman>;
}

type PatchedHuman = typeof import('@vladmandic/human') & {
  reenactFaceRegions?: RegionCache;
  reenactUseModels?: (runner: FaceModelRunner) => void;
};

/** The installed Human bundle is not the one the patches fit (another release was installed). */
function unexpectedHuman(file: string): ReenactError {
  let installed = 'an unknown version';
  try {
    const manifest = JSON.parse(readFileSync(join(dirname(file), '..', 'package.json'), 'utf8')) as {
      version?: unknown;
    };
    if (typeof manifest.version === 'string') installed = `version ${manifest.version}`;
  } catch {
    // No readable package.json beside the bundle: the version stays unknown.
  }
  return new ReenactError(
    'BAD_INSTALL',
    `the face detector's bundle ${file} is @vladmandic/human ${installed}; reenact patches it in memory and needs exactly version ${HUMAN_VERSION}.`,
    `Reinstall reenact's dependencies as locked (npm ci), or install @vladmandic/human@${HUMAN_VERSION}.`,
  );
}

let fileLoaderRegistered = false;

/** Node's fetch has no file:// scheme; tfjs model loading goes through this router instead. */
function registerFileLoader(tf: TfCore): void {
  if (fileLoaderRegistered) return;
  fileLoaderRegistered = true;
  tf.io.registerLoadRouter((url) => {
    const path = Array.isArray(url) ? undefined : url;
    if (typeof path !== 'string' || !path.startsWith('file://'))
      return null as unknown as import('@tensorflow/tfjs-core').io.IOHandler;
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
