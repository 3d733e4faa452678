import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Face, FaceAnalyzer, FrameDetection } from '../face/detector.js';
import { rollDegrees } from '../face/landmarks.js';
import type { RgbImage, VideoFrame } from '../types.js';

/**
 * A frame detected on the previous frame's face regions whose roll differs from that frame's by
 * more than this (degrees) is detected afresh: on a fast turn the stale crop's mesh lags.
 */
const MAX_ROLL_STEP = 2;

/**
 * Whether the largest face found on the previous frame's regions still follows the face: both
 * frames have one, and the roll moved at most MAX_ROLL_STEP. Depends on the two results only.
 */
export function followsPrevious(faces: Face[], previous: Face[]): boolean {
  const [face] = faces;
  const [before] = previous;
  return !!face && !!before && Math.abs(rollDegrees(face) - rollDegrees(before)) <= MAX_ROLL_STEP;
}

/** The largest face of a frame (null: none), and whether it was found on the previous frame's regions. */
interface Found {
  face: Face | null;
  reused: boolean;
}

interface Pending {
  resolve: (found: Found) => void;
  reject: (error: Error) => void;
}

/** One worker thread running its own analyzer (see landmark-worker.ts). */
class LandmarkWorker {
  private nextId = 0;
  private readonly pending = new Map<number, Pending>();
  private failure: Error | undefined;

  private constructor(private readonly worker: Worker) {
    worker.on('message', (message: { id: number; face?: Face | null; reused?: boolean; error?: string }) => {
      const job = this.pending.get(message.id);
      if (!job) return;
      this.pending.delete(message.id);
      if (message.error !== undefined) job.reject(new Error(`face detection failed in a worker: ${message.error}`));
      else job.resolve({ face: message.face ?? null, reused: !!message.reused });
    });
    const fail = (error: Error) => {
      this.failure = error;
      for (const job of this.pending.values()) job.reject(error);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the face detection worker stopped (exit code ${code})`)));
  }

  static start(): Promise<LandmarkWorker> {
    const worker = new Worker(workerEntry());
    return new Promise((resolve, reject) => {
      const onError = (error: Error) => reject(error);
      worker.once('error', onError);
      worker.once('message', () => {
        worker.off('error', onError);
        resolve(new LandmarkWorker(worker));
      });
    });
  }

  get busy(): number {
    return this.pending.size;
  }

  /**
   * The largest face in `frame`. `follows`: the id of the request just before, a frame earlier
   * in the same video, whose face regions this one reuses (see FaceAnalyzer.detectNextFrame).
   */
  detect(frame: RgbImage, follows?: number): { id: number; found: Promise<Found> } {
    const id = this.nextId++;
    if (this.failure) return { id, found: Promise.reject(this.failure) };
    const found = new Promise<Found>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      // A copy: the caller keeps the frame (the warp and the comparison read it).
      this.worker.postMessage({ id, width: frame.width, height: frame.height, data: frame.data, follows });
    });
    return { id, found };
  }

  async stop(): Promise<void> {
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }
}

/**
 * The worker's entry: the compiled .js beside this file, or, when running from TypeScript
 * sources under tsx (tests, benchmarks), a small module that loads the .ts through tsx, which
 * worker threads do not inherit.
 */
function workerEntry(): URL {
  const ownUrl = import.meta.url;
  if (!ownUrl.endsWith('.ts')) return new URL('./landmark-worker.js', ownUrl);
  const entry = new URL('./landmark-worker.ts', ownUrl).href;
  const loader = `import { tsImport } from ${JSON.stringify(import.meta.resolve('tsx/esm/api'))};\nawait tsImport(${JSON.stringify(entry)}, ${JSON.stringify(ownUrl)});`;
  return new URL(`data:text/javascript,${encodeURIComponent(loader)}`);
}

/** The first frame of a pair: where it went, so that the next frame follows it there. */
type PairStart = { index: number } & ({ worker: LandmarkWorker; id: number } | { worker: undefined; detection: Promise<FrameDetection> });

/**
 * Face landmarks for many frames at once, on the calling thread's analyzer and on worker threads
 * with analyzers of their own. Frames go in pairs of consecutive frames (as they come: every
 * frame that directly follows a pair's first frame completes that pair) to whichever has the
 * least queued: the first gets a full detection, the second only the mesh on the first's face
 * regions (FaceAnalyzer.detectNextFrame, ~25 ms instead of ~58), redone in full where the roll
 * jumps (followsPrevious). Each frame's landmarks depend only on it and, for a pair's second, the
 * first's detection: not on which thread ran them or when. On 2 cores one worker roughly doubles
 * the rate (detection is most of the mesh mode's time); each worker holds ~100 MB of models.
 */
export class LandmarkPool {
  private mainBusy = 0;
  private pair: PairStart | undefined;
  /** Frames detected so far, and how many of them on the previous frame's regions. */
  readonly stats = { frames: 0, reused: 0 };

  private constructor(
    private readonly analyzer: FaceAnalyzer,
    private readonly workers: LandmarkWorker[],
  ) {}

  /** Starts `workers` worker threads (default: one fewer than the cores, at most 3). */
  static async create(analyzer: FaceAnalyzer, workers = Math.min(3, availableParallelism() - 1)): Promise<LandmarkPool> {
    const started = await Promise.all(Array.from({ length: Math.max(0, workers) }, () => LandmarkWorker.start()));
    return new LandmarkPool(analyzer, started);
  }

  /** How many frames are worth having in flight at once: a pair for each thread. */
  get parallelism(): number {
    return 2 * (this.workers.length + 1);
  }

  /**
   * The largest face in the frame, or null. Frames of one video come in order; a frame that does
   * not directly follow the previous call's (another video, a new pass) starts a new pair.
   */
  detect(frame: VideoFrame): Promise<Face | null> {
    const pair = this.pair;
    this.pair = undefined;
    if (pair && frame.index === pair.index + 1) {
      // Straight after the pair's first frame, on the same thread, with nothing in between.
      if (pair.worker) return this.count(pair.worker.detect(frame, pair.id).found);
      return this.onMain(this.analyzer.detectNextFrame(frame, pair.detection, followsPrevious));
    }
    const worker = this.workers.reduce<LandmarkWorker | undefined>((best, w) => (!best || w.busy < best.busy ? w : best), undefined);
    // Ties go to a worker: the calling thread also renders, and its own detections run to the
    // end before it looks at the next frame, so it always looks idle when it dispatches.
    if (worker && worker.busy <= this.mainBusy) {
      const { id, found } = worker.detect(frame);
      this.pair = { index: frame.index, worker, id };
      return this.count(found);
    }
    const detection = this.analyzer.detectFrame(frame);
    this.pair = { index: frame.index, worker: undefined, detection };
    return this.onMain(detection);
  }

  private async onMain(detection: Promise<FrameDetection>): Promise<Face | null> {
    this.mainBusy++;
    try {
      const { faces, reused } = await detection;
      return this.count(Promise.resolve({ face: faces[0] ?? null, reused }));
    } finally {
      this.mainBusy--;
    }
  }

  private async count(found: Promise<Found>): Promise<Face | null> {
    const { face, reused } = await found;
    this.stats.frames++;
    if (reused) this.stats.reused++;
    return face;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.stop()));
  }
}
