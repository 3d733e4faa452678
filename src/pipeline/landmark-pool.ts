import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Face, FaceAnalyzer } from '../face/detector.js';
import { rollDegrees } from '../face/landmarks.js';
import type { RgbImage, VideoFrame } from '../types.js';

/**
 * A frame detected on the previous frame's regions whose roll differs from that frame's by more
 * than this (degrees) is detected afresh: on a fast turn the stale crop's mesh lags. On
 * driving-talking.mp4 about one such frame in ten is redone; the others are within 0.3 degrees
 * of roll (mean) of a full detection.
 */
const MAX_ROLL_STEP = 2;

/**
 * The largest face in `frame`. With `previous` (the same analyzer's detection of the frame
 * before, queued just before this call) only the mesh runs, on that frame's face regions, and a
 * result that no longer follows the face is replaced by a full detection.
 */
export async function detectLargest(analyzer: FaceAnalyzer, frame: RgbImage, previous?: Promise<Face | null>): Promise<Face | null> {
  if (!previous) return (await analyzer.detect(frame))[0] ?? null;
  // Queued at once, so that nothing runs on the analyzer between the previous frame and this one.
  const quick = analyzer.detectWithPreviousBoxes(frame);
  const [before, [face = null]] = await Promise.all([previous, quick]);
  if (face && before && Math.abs(rollDegrees(face) - rollDegrees(before)) <= MAX_ROLL_STEP) return face;
  return (await analyzer.detect(frame))[0] ?? null;
}

interface Pending {
  resolve: (face: Face | null) => void;
  reject: (error: Error) => void;
}

/** One worker thread running its own analyzer (see landmark-worker.ts). */
class LandmarkWorker {
  private nextId = 0;
  private readonly pending = new Map<number, Pending>();
  private failure: Error | undefined;

  private constructor(private readonly worker: Worker) {
    worker.on('message', (message: { id: number; face?: Face | null; error?: string }) => {
      const job = this.pending.get(message.id);
      if (!job) return;
      this.pending.delete(message.id);
      if (message.error !== undefined) job.reject(new Error(`face detection failed in a worker: ${message.error}`));
      else job.resolve(message.face ?? null);
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

  /** `follow`: the frame comes straight after the last one sent (see detectLargest). */
  detect(frame: RgbImage, follow: boolean): Promise<Face | null> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      // A copy: the caller keeps the frame (the warp and the comparison read it).
      this.worker.postMessage({ id, width: frame.width, height: frame.height, data: frame.data, follow });
    });
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

/** Two consecutive frames: the first gets a full detection, the second reuses its face regions. */
interface Pair {
  index: number;
  /** undefined: the calling thread. */
  worker: LandmarkWorker | undefined;
  first: Promise<Face | null>;
}

/**
 * Face landmarks for many frames at once, on the calling thread's analyzer and on worker threads
 * with analyzers of their own. Frames go in pairs of consecutive frames to whichever has the
 * least queued: the first gets a full detection, the second only the mesh on the first's face
 * regions (detectLargest), ~25 ms instead of ~58. On 2 cores one worker roughly doubles the rate
 * (detection is most of the mesh mode's time); each worker holds ~100 MB of models.
 */
export class LandmarkPool {
  private mainBusy = 0;
  private pair: Pair | undefined;

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

  /** The largest face in the frame, or null. Frames of one video come in order. */
  detect(frame: VideoFrame): Promise<Face | null> {
    const pair = this.pair;
    if (pair && frame.index === pair.index + 1) {
      this.pair = undefined;
      return pair.worker ? pair.worker.detect(frame, true) : this.detectOnMain(frame, pair.first);
    }
    const worker = this.workers.reduce<LandmarkWorker | undefined>((best, w) => (!best || w.busy < best.busy ? w : best), undefined);
    // Ties go to a worker: the calling thread also renders, and its own detections run to the
    // end before it looks at the next frame, so it always looks idle when it dispatches.
    const onWorker = worker && worker.busy <= this.mainBusy ? worker : undefined;
    const first = onWorker ? onWorker.detect(frame, false) : this.detectOnMain(frame);
    this.pair = { index: frame.index, worker: onWorker, first };
    return first;
  }

  private async detectOnMain(frame: RgbImage, previous?: Promise<Face | null>): Promise<Face | null> {
    this.mainBusy++;
    try {
      return await detectLargest(this.analyzer, frame, previous);
    } finally {
      this.mainBusy--;
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.stop()));
  }
}
