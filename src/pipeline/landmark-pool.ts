import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Face, FaceAnalyzer } from '../face/detector.js';
import type { RgbImage } from '../types.js';

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

  detect(frame: RgbImage): Promise<Face | null> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      // A copy: the caller keeps the frame (the warp and the comparison read it).
      this.worker.postMessage({ id, width: frame.width, height: frame.height, data: frame.data });
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

/**
 * Face landmarks for many frames at once: full detections are independent per frame, so they
 * run on the calling thread's analyzer and on worker threads with analyzers of their own, each
 * frame going to whichever has the least queued. On 2 cores one worker roughly doubles the rate
 * (detection is most of the mesh mode's time); each worker holds ~100 MB of models.
 */
export class LandmarkPool {
  private mainBusy = 0;

  private constructor(
    private readonly analyzer: FaceAnalyzer,
    private readonly workers: LandmarkWorker[],
  ) {}

  /** Starts `workers` worker threads (default: one fewer than the cores, at most 3). */
  static async create(analyzer: FaceAnalyzer, workers = Math.min(3, availableParallelism() - 1)): Promise<LandmarkPool> {
    const started = await Promise.all(Array.from({ length: Math.max(0, workers) }, () => LandmarkWorker.start()));
    return new LandmarkPool(analyzer, started);
  }

  /** How many frames are worth having in flight at once. */
  get parallelism(): number {
    return this.workers.length + 1;
  }

  /** The largest face in the frame, or null. */
  async detect(frame: RgbImage): Promise<Face | null> {
    const worker = this.workers.reduce<LandmarkWorker | undefined>((best, w) => (!best || w.busy < best.busy ? w : best), undefined);
    // Ties go to a worker: the calling thread also renders, and its own detections run to the
    // end before it looks at the next frame, so it always looks idle when it dispatches.
    if (worker && worker.busy <= this.mainBusy) return worker.detect(frame);
    this.mainBusy++;
    try {
      return (await this.analyzer.detect(frame))[0] ?? null;
    } finally {
      this.mainBusy--;
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.stop()));
  }
}
