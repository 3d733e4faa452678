import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ReenactError } from '../errors.js';
import type { AnimateResult, MotionModelName } from '../pipeline/animate.js';
import type { ProgressEvent } from '../types.js';

/**
 * The studio's jobs as the page and the HTTP API see them, and the queue they run on. The queue
 * is an interface so the in-process one (DiskJobQueue) can be swapped for one that hands jobs
 * to workers on other machines (a BullMQ queue on Redis) without changing the server or page.
 */

/** Ids are 16 hex digits: safe as folder names, never taken from the client unchecked. */
export function newId(): string {
  return randomBytes(8).toString('hex');
}

export function isId(value: string): boolean {
  return /^[0-9a-f]{16}$/.test(value);
}

export type JobState = 'queued' | 'running' | 'done' | 'failed' | 'cancelled' | 'interrupted';

/** What the user asked for; every field but the two inputs has a default. */
export interface JobOptions {
  model: MotionModelName;
  /** For fomm: names of files in the studio's models folder. */
  config?: string;
  checkpoint?: string;
  face?: number;
  startFrame?: number | 'best';
  compare: boolean;
  label: boolean;
}

export interface JobSpec {
  /** Upload ids (see uploads.ts). */
  photo: string;
  clip: string;
  options: JobOptions;
}

export interface JobProgress extends ProgressEvent {
  /** Seconds left in this stage at its rate so far; absent until it can be estimated. */
  eta?: number;
}

/** What animate reported, and the size of the file. */
export type JobResult = Pick<
  AnimateResult,
  'width' | 'height' | 'fps' | 'frames' | 'duration' | 'hasAudio' | 'labelled' | 'seconds'
> & { bytes: number };

export interface JobError {
  code: string;
  message: string;
  hint?: string;
}

export interface Job extends JobSpec {
  id: string;
  state: JobState;
  /** The worker running or last running it, where jobs run on workers (RedisJobQueue). */
  worker?: string;
  /** ISO times. */
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  /** Display names of the inputs (as the user's files were called). */
  photoName: string;
  clipName: string;
  progress?: JobProgress;
  result?: JobResult;
  error?: JobError;
}

/** Where a runner writes a job's files. */
export interface JobFiles {
  /** The MP4 to produce. */
  result: string;
  /** A small JPEG from the result, for the history. */
  thumbnail: string;
}

/**
 * Runs one job to completion; throws (a ReenactError where the inputs are at fault) on failure,
 * and CANCELLED once `signal` aborts, leaving no result file behind.
 */
export type JobRunner = (
  job: Job,
  files: JobFiles,
  signal: AbortSignal,
  onProgress: (event: ProgressEvent) => void,
) => Promise<JobResult>;

export interface JobQueue {
  /** Adds a job in state queued; it runs when a slot is free. */
  submit(spec: JobSpec & { photoName: string; clipName: string }): Promise<Job>;
  /** Newest first. */
  list(): Promise<Job[]>;
  get(id: string): Promise<Job | undefined>;
  /** A queued job is cancelled at once, a running one once its runner stops. */
  cancel(id: string): Promise<Job | undefined>;
  /** Queues a failed, cancelled or interrupted job again with the same inputs and options. */
  retry(id: string): Promise<Job | undefined>;
  /** Adds a job done outside the queue (a live recording); see JobRecords.addDone. */
  addDone(
    spec: JobSpec & { photoName: string; clipName: string },
    produce: (files: JobFiles) => Promise<JobResult>,
  ): Promise<Job>;
  /** Cancels it if needed and removes its record and files. */
  remove(id: string): Promise<boolean>;
  /** The files of a job (result, thumbnail), wherever this queue keeps them. */
  files(id: string): JobFiles;
  /** Called on every change of any job (state, progress); returns the unsubscribe function. */
  subscribe(listener: (job: Job) => void): () => void;
  /** Stops running jobs, marking them interrupted, and waits until their runners have cleaned up. */
  close(): Promise<void>;
}

/**
 * What every JobQueue keeps alike: the records in memory (the page's view of each job), their
 * listeners, one folder per job under `folder`, and how a job is created. A queue adds where
 * records are saved and how jobs run.
 */
export abstract class JobRecords {
  protected readonly jobs = new Map<string, Job>();
  private readonly listeners = new Set<(job: Job) => void>();
  protected closed = false;

  constructor(protected readonly folder: string) {}

  protected abstract save(job: Job): Promise<void>;

  protected emit(job: Job): void {
    for (const listener of this.listeners) listener(job);
  }

  /** A new queued job, its folder made and its record saved first, so whatever hears of it finds it. */
  protected async create(spec: JobSpec & { photoName: string; clipName: string }): Promise<Job> {
    if (this.closed)
      throw new ReenactError('CANCELLED', 'the studio is shutting down.', 'Start it again and resubmit.');
    const id = newId();
    const job: Job = {
      id,
      state: 'queued',
      createdAt: new Date().toISOString(),
      photo: spec.photo,
      clip: spec.clip,
      photoName: spec.photoName,
      clipName: spec.clipName,
      options: spec.options,
    };
    await mkdir(join(this.folder, id));
    await this.save(job);
    this.jobs.set(id, job);
    this.emit(job);
    return job;
  }

  /**
   * Adds a job that was done elsewhere (a live recording): `produce` writes its result and
   * thumbnail into the job's files; the record appears, done, only once it has. A failure
   * leaves no record and no folder.
   */
  async addDone(
    spec: JobSpec & { photoName: string; clipName: string },
    produce: (files: JobFiles) => Promise<JobResult>,
  ): Promise<Job> {
    if (this.closed)
      throw new ReenactError('CANCELLED', 'the studio is shutting down.', 'Start it again and record anew.');
    const id = newId();
    await mkdir(join(this.folder, id));
    const startedAt = new Date().toISOString();
    let result: JobResult;
    try {
      result = await produce(this.files(id));
    } catch (error) {
      await rm(join(this.folder, id), { recursive: true, force: true });
      throw error;
    }
    const job: Job = {
      id,
      state: 'done',
      createdAt: startedAt,
      startedAt,
      finishedAt: new Date().toISOString(),
      photo: spec.photo,
      clip: spec.clip,
      photoName: spec.photoName,
      clipName: spec.clipName,
      options: spec.options,
      result,
    };
    await this.save(job);
    this.jobs.set(id, job);
    this.emit(job);
    return job;
  }

  /** Newest first. */
  async list(): Promise<Job[]> {
    return [...this.jobs.values()].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  }

  async get(id: string): Promise<Job | undefined> {
    return this.jobs.get(id);
  }

  files(id: string): JobFiles {
    return jobFiles(this.folder, id);
  }

  subscribe(listener: (job: Job) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/** Where a job's files are inside a queue's folder of jobs (one folder per job). */
export function jobFiles(folder: string, id: string): JobFiles {
  return { result: join(folder, id, 'result.mp4'), thumbnail: join(folder, id, 'thumb.jpg') };
}

/**
 * The library's progress events as JobProgress with an ETA for the stage, passed to `report` at
 * most once every `intervalMs` and at each stage's end (the page redraws ~8 times a second).
 */
export function progressReporter(
  report: (progress: JobProgress) => void,
  intervalMs = 125,
): (event: ProgressEvent) => void {
  const started = new Map<string, number>();
  let last = -Infinity;
  return (event) => {
    const now = performance.now();
    if (!started.has(event.stage)) started.set(event.stage, now);
    const elapsed = (now - started.get(event.stage)!) / 1000;
    const eta =
      event.total && event.done > 0 && elapsed > 0.5 ? ((event.total - event.done) * elapsed) / event.done : undefined;
    if (now - last < intervalMs && event.done !== event.total) return;
    last = now;
    report({
      stage: event.stage,
      done: event.done,
      ...(event.total ? { total: event.total } : {}),
      ...(eta !== undefined ? { eta } : {}),
    });
  };
}

const FINISHED: ReadonlySet<JobState> = new Set(['done', 'failed', 'cancelled', 'interrupted']);

/** Deletes finished jobs beyond the newest `keep` and those older than `maxAgeMs`; returns the ids removed. */
export async function pruneFinished(queue: JobQueue, retention: { keep: number; maxAgeMs: number }): Promise<string[]> {
  const now = Date.now();
  const finished = (await queue.list()).filter((job) => FINISHED.has(job.state));
  const removed = finished
    .filter((job, i) => i >= retention.keep || now - Date.parse(job.createdAt) > retention.maxAgeMs)
    .map((job) => job.id);
  for (const id of removed) await queue.remove(id);
  return removed;
}
