import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { workerEntry } from '../worker-entry.js';
import { WorkerReplies } from '../worker-replies.js';
import type { Face, FaceAnalyzer, FrameDetection } from '../face/detector.js';
import { rollDegrees } from '../face/landmarks.js';
import type { RgbImage, VideoFrame } from '../types.js';

/**
 * A frame detected on the previous frame's face regions whose roll differs from that frame's by
 * more than this (degrees) is detected afresh: on a fast turn the stale crop's mesh lags. Full
 * detections themselves move ~0.7 degrees from frame to frame on driving-talking.mp4, with
 * single-frame spikes of several: at 2 degrees 33 of its 160 later frames of a group were redone
 * (a redone frame costs ~59 ms more), at 3 degrees 19, with the roll about as close to a full
 * detection's and as smooth from frame to frame (test/landmark-pool.test.ts).
 */
const MAX_ROLL_STEP = 3;

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

/** One worker thread running its own analyzer (see landmark-worker.ts). */
class LandmarkWorker {
  private readonly replies: WorkerReplies<{ id: number; face?: Face | null; reused?: boolean; error?: string }>;

  /** Settles once the thread has loaded its models, or has failed or stopped. */
  private readonly settled: Promise<void>;

  private constructor(private readonly worker: Worker) {
    this.replies = new WorkerReplies(worker, 'face detection failed in a worker', 'the face detection worker stopped');
    this.settled = new Promise((resolve) => {
      worker.on('message', (message: { ready?: boolean }) => message.ready && resolve());
      worker.once('error', () => resolve());
      worker.once('exit', () => resolve());
    });
  }

  /**
   * Starts the thread without waiting for it to load its models (~0.4 s): frames sent meanwhile
   * wait in its queue, and a failure to load rejects them (and later ones) with the error.
   */
  static start(): LandmarkWorker {
    return new LandmarkWorker(new Worker(workerEntry(import.meta.url, 'landmark-worker')));
  }

  get busy(): number {
    return this.replies.size;
  }

  /**
   * The largest face in `frame`. `follows`: the id of the request just before, a frame earlier
   * in the same video, whose face regions this one reuses (see FaceAnalyzer.detectNextFrame).
   */
  detect(frame: RgbImage, follows?: number, track = false): { id: number; found: Promise<Found> } {
    const { id, reply } = this.replies.send((id) =>
      // A copy: the caller keeps the frame (the warp and the comparison read it).
      this.worker.postMessage({ id, width: frame.width, height: frame.height, data: frame.data, follows, track }),
    );
    return { id, found: reply.then((message) => ({ face: message.face ?? null, reused: !!message.reused })) };
  }

  /** Settles once no detection sent to this thread is in flight (see WorkerReplies.idle). */
  idle(): Promise<void> {
    return this.replies.idle();
  }

  /**
   * Ends the thread, once it has loaded its models and its detections in flight are done: like a
   * run, a model load that returns into a terminating thread aborts the whole process.
   */
  async stop(): Promise<void> {
    await this.settled;
    await this.idle();
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }
}

/**
 * Worker threads for LandmarkPools, started ahead of them: each loads its models (~1 s on two
 * cores) while the caller does other work, such as animate reading and detecting the photo.
 * Whoever starts them stops them; a pool given them leaves them running when it closes.
 */
export class LandmarkThreads {
  private constructor(readonly workers: readonly LandmarkWorker[]) {}

  /** Starts `count` threads (default: one fewer than the cores, at most 3). */
  static start(count = Math.min(3, availableParallelism() - 1)): LandmarkThreads {
    return new LandmarkThreads(Array.from({ length: Math.max(0, count) }, () => LandmarkWorker.start()));
  }

  /** Ends the threads, once their detections in flight are done. */
  async stop(): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.stop()));
  }
}

/**
 * How frames are grouped: `size` consecutive frames per group; the first gets a full detection,
 * each later one the mesh on the face regions of the frame before it: the regions that frame was
 * cropped by (so the first's, or a redone frame's), or with `track` those regions moved and turned
 * with the face since the frame before (FrameDetection.tracked), which follow it as it moves.
 */
export interface FrameGrouping {
  size: number;
  track: boolean;
}

/** For videos (animate): short groups, so that many threads share one clip. */
export const VIDEO_GROUPING: FrameGrouping = { size: 3, track: false };

/**
 * For a live driver on one detection thread: BlazeFace (~60 ms of a ~125 ms full detection here)
 * runs on the first frame of every 15 (half a second at 30 fps: a second face or a rolled head is
 * picked up within that), and where the tracked face is lost or its roll jumps (followsPrevious).
 */
export const LIVE_GROUPING: FrameGrouping = { size: 15, track: true };

/** The last frame sent of the current group: where it went, so that the next frame follows it there. */
type GroupTail = { index: number; size: number } & (
  { worker: LandmarkWorker; id: number } | { worker: undefined; detection: Promise<FrameDetection> }
);

/**
 * Face landmarks for many frames at once, on the calling thread's analyzer and on worker threads
 * with analyzers of their own. Frames go in groups of consecutive frames (FrameGrouping; as they
 * come: a frame that directly follows the last one sent joins its group until it is full) to one
 * thread each: the first gets a full detection, each later one only the mesh on the face regions
 * of the frame before it (FaceAnalyzer.detectNextFrame, about half a full detection), redone in full
 * where the roll jumps (followsPrevious). Each frame's landmarks depend only on the frames of
 * its group up to it: not on which thread ran them or when. Detection is most of the mesh mode's
 * time; each worker holds ~100 MB of models.
 */
export class LandmarkPool {
  private tail: GroupTail | undefined;
  /** Frames detected so far, and how many of them on the previous frame's regions. */
  readonly stats = { frames: 0, reused: 0 };

  private readonly workers: readonly LandmarkWorker[];

  private constructor(
    private readonly analyzer: FaceAnalyzer,
    private readonly threads: LandmarkThreads,
    /** Whether the pool started `threads` itself, and so stops them when it closes. */
    private readonly ownsThreads: boolean,
    private readonly grouping: FrameGrouping,
  ) {
    this.workers = threads.workers;
  }

  /**
   * A pool on `threads`: threads started earlier (LandmarkThreads.start), or how many to start
   * now (default: one fewer than the cores, at most 3). Threads still loading their models get
   * the first frames queued meanwhile (on two cores the calling thread meanwhile prepares the
   * output and detects the groups the workers' queues leave over).
   */
  static async create(
    analyzer: FaceAnalyzer,
    threads?: number | LandmarkThreads,
    grouping: FrameGrouping = VIDEO_GROUPING,
  ): Promise<LandmarkPool> {
    if (threads instanceof LandmarkThreads) return new LandmarkPool(analyzer, threads, false, grouping);
    return new LandmarkPool(analyzer, LandmarkThreads.start(threads), true, grouping);
  }

  /** How many frames are worth having in flight at once: two groups for each worker, one for the calling thread. */
  get parallelism(): number {
    return this.grouping.size * (2 * this.workers.length + 1);
  }

  /**
   * The largest face in the frame, or null. Frames of one video come in order; a frame that does
   * not directly follow the previous call's (another video, a new pass) starts a new group.
   */
  detect(frame: VideoFrame): Promise<Face | null> {
    const tail = this.tail;
    this.tail = undefined;
    const { size: groupSize, track } = this.grouping;
    if (tail && frame.index === tail.index + 1 && tail.size < groupSize) {
      // Straight after the frame before, on the same thread, with nothing in between.
      const size = tail.size + 1;
      if (tail.worker) {
        const { id, found } = tail.worker.detect(frame, tail.id, track);
        this.tail = { index: frame.index, size, worker: tail.worker, id };
        return this.count(found);
      }
      const detection = this.analyzer.detectNextFrame(frame, tail.detection, followsPrevious, track);
      this.tail = { index: frame.index, size, worker: undefined, detection };
      return this.onMain(detection);
    }
    const worker = this.workers.reduce<LandmarkWorker | undefined>(
      (best, w) => (!best || w.busy < best.busy ? w : best),
      undefined,
    );
    // The calling thread renders every frame as well (~19 ms of ~60 ms CPU a frame at 586x586),
    // so a new group goes to a worker unless even the least busy has two groups queued.
    if (worker && worker.busy < 2 * groupSize) {
      const { id, found } = worker.detect(frame);
      this.tail = { index: frame.index, size: 1, worker, id };
      return this.count(found);
    }
    const detection = this.analyzer.detectFrame(frame);
    this.tail = { index: frame.index, size: 1, worker: undefined, detection };
    return this.onMain(detection);
  }

  private onMain(detection: Promise<FrameDetection>): Promise<Face | null> {
    return this.count(detection.then(({ faces, reused }) => ({ face: faces[0] ?? null, reused })));
  }

  private async count(found: Promise<Found>): Promise<Face | null> {
    const { face, reused } = await found;
    this.stats.frames++;
    if (reused) this.stats.reused++;
    return face;
  }

  /** Settles once no detection of this pool's runs anywhere, and stops the threads it started. */
  async close(): Promise<void> {
    const threads = this.ownsThreads ? this.threads.stop() : Promise.all(this.workers.map((worker) => worker.idle()));
    await Promise.all([threads, this.analyzer.idle()]);
  }
}
