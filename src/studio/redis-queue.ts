import { rmSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { invalidOption, ReenactError } from '../errors.js';
import {
  JobRecords,
  pruneFinished,
  type Job,
  type JobError,
  type JobOptions,
  type JobProgress,
  type JobQueue,
  type JobResult,
  type JobSpec,
} from './jobs.js';

/**
 * The studio's jobs on Redis through BullMQ, run by `reenact worker` processes on any machine.
 * BullMQ dispatches (one worker holds a job at a time under a lock it renews; a job whose worker
 * died goes back to the queue once the lock expires), carries progress from the worker to the
 * studio, and retries. The studio's own record of each job (what the page shows) is kept in a
 * Redis hash beside the queue and updated from the queue's events, so both a studio restart
 * and a Redis restart (with persistence on) find every job as it was. One studio per queue.
 */

export const QUEUE_NAME = 'reenact';

/** BullMQ's id for a studio job: BullMQ refuses ids that read as integers, which 16 hex digits can. */
export function bullId(id: string): string {
  return `job-${id}`;
}

/** The studio's id of a BullMQ job, or undefined for a job that is not the studio's. */
export function studioId(bullJobId: string | undefined): string | undefined {
  return bullJobId?.startsWith('job-') ? bullJobId.slice(4) : undefined;
}

/** What a worker needs of a job (BullMQ job data). */
export interface WorkerJobData {
  photo: string;
  clip: string;
  /** The user's names for the inputs: messages name them, not the worker's copies. */
  photoName: string;
  clipName: string;
  options: JobOptions;
}

/** Fails a job without retrying it: the worker throws UnrecoverableError with this as its message. */
export function encodeJobError(error: JobError): string {
  return JSON.stringify(error);
}

/** BullMQ's reason for a job whose worker stopped renewing its lock too many times. */
const STALLED_REASON = 'job stalled more than allowable limit';

function decodeJobError(reason: string | undefined): JobError {
  if (reason === STALLED_REASON) {
    return {
      code: 'WORKER_LOST',
      message:
        "the job stopped its worker as many times as the workers' --attempts allow (killed, out of memory, or its machine went away), so it was given up.",
      hint: "Check the workers' logs and memory; retry the job once the cause is fixed.",
    };
  }
  try {
    const error = JSON.parse(reason ?? '') as JobError;
    if (typeof error.code === 'string' && typeof error.message === 'string') return error;
  } catch {
    // A plain message: an error the worker did not expect.
  }
  return {
    code: 'INTERNAL',
    message: reason || 'the job failed without a reason.',
    hint: "See the worker's log; retry the job.",
  };
}

/** A Redis URL with its password replaced, for messages: credentials are never logged. */
export function redactRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(an unparsable Redis URL)';
  }
}

/**
 * An ioredis client for a redis:// or rediss:// (TLS) URL with credentials in it, as BullMQ
 * wants for blocking connections (no retry limit per command: commands wait through a Redis
 * restart). Connection errors are passed to `log` without the URL.
 */
export function redisClient(url: string, log: (line: string) => void, role: string): Redis {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ReenactError(
      'BAD_ARGUMENT',
      'the Redis URL is not a URL.',
      'Pass --redis redis://[user:password@]host:6379[/db] or rediss://... for TLS.',
    );
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new ReenactError(
      'BAD_ARGUMENT',
      `the Redis URL must start with redis:// or rediss://, not ${parsed.protocol}//.`,
      'Pass --redis redis://host:6379 (rediss:// for TLS).',
    );
  }
  const client = new Redis(url, { maxRetriesPerRequest: null, connectionName: `reenact-${role}` });
  let reported = '';
  client.on('error', (error: Error) => {
    // One line per distinct failure, not one per reconnection attempt.
    if (error.message === reported) return;
    reported = error.message;
    log(`Redis (${role}): ${error.message.replaceAll(parsed.password || '\0', '***')}`);
  });
  client.on('ready', () => {
    if (reported) log(`Redis (${role}): connected again`);
    reported = '';
  });
  return client;
}

export interface RedisJobQueueOptions {
  redisUrl: string;
  /** Folder holding one folder per job (result.mp4, thumb.jpg), on the studio's machine. */
  folder: string;
  /** Runs a job may have that end in an unexpected error (not an input error) before it fails. Default 3. */
  attempts?: number;
  queueName?: string;
  log?: (line: string) => void;
}

type Change = Partial<Job>;

export class RedisJobQueue extends JobRecords implements JobQueue {
  readonly queue: Queue;
  /** Commands of the studio's own (records, locks, cancel marks); shared with `queue`. */
  readonly redis: Redis;
  private readonly events: QueueEvents;
  private readonly eventsClient: Redis;
  /** Per job, the chain of its updates, so events for one job apply in order. */
  private readonly updates = new Map<string, Promise<void>>();
  private readonly recordsKey: string;
  private readonly attempts: number;

  private constructor(private readonly options: RedisJobQueueOptions) {
    super(options.folder);
    const log = options.log ?? (() => {});
    this.attempts = options.attempts ?? 3;
    this.redis = redisClient(options.redisUrl, log, 'studio');
    this.eventsClient = redisClient(options.redisUrl, log, 'studio events');
    const name = options.queueName ?? QUEUE_NAME;
    this.queue = new Queue(name, { connection: this.redis });
    this.events = new QueueEvents(name, { connection: this.eventsClient });
    this.queue.on('error', () => {});
    this.events.on('error', () => {});
    this.recordsKey = this.queue.toKey('studio-jobs');
  }

  static async open(options: RedisJobQueueOptions): Promise<RedisJobQueue> {
    if (options.attempts !== undefined && !(Number.isInteger(options.attempts) && options.attempts >= 1)) {
      throw invalidOption('attempts', 'a whole number of at least 1', options.attempts);
    }
    const queue = new RedisJobQueue(options);
    await mkdir(options.folder, { recursive: true });
    // Listening first, then reading: nothing that happens in between is missed.
    queue.listen();
    await Promise.all([queue.queue.waitUntilReady(), queue.events.waitUntilReady()]);
    for (const [id, text] of Object.entries(await queue.redis.hgetall(queue.recordsKey)))
      queue.jobs.set(id, JSON.parse(text) as Job);
    // Jobs that moved on while the studio was down.
    await Promise.all(
      [...queue.jobs.values()]
        .filter((job) => job.state === 'queued' || job.state === 'running')
        .map((job) => queue.update(job.id, () => queue.reconcile(job))),
    );
    return queue;
  }

  private listen(): void {
    const on = (id: string, change: Parameters<RedisJobQueue['update']>[1]) => {
      const job = studioId(id);
      if (job) void this.update(job, change);
    };
    this.events.on('active', ({ jobId }) =>
      on(jobId, async () => ({
        state: 'running',
        startedAt: new Date().toISOString(),
        ...(await this.workerOf(jobId)),
        progress: undefined,
        error: undefined,
      })),
    );
    // Back in the queue: a retry, or a job whose worker died or was stopped.
    this.events.on('waiting', ({ jobId }) =>
      on(jobId, (job) => (job.state === 'running' ? { state: 'queued', progress: undefined } : undefined)),
    );
    this.events.on('progress', ({ jobId, data }) => {
      const job = this.jobs.get(studioId(jobId) ?? '');
      if (!job || job.state !== 'running' || typeof data !== 'object') return;
      job.progress = data as unknown as JobProgress;
      this.emit(job);
    });
    this.events.on('completed', ({ jobId, returnvalue }) =>
      on(jobId, () => this.finished(parseValue(returnvalue) as JobResult)),
    );
    this.events.on('failed', ({ jobId, failedReason }) => on(jobId, () => this.failedWith(failedReason)));
  }

  private async workerOf(bullJobId: string): Promise<Change> {
    const job = await this.queue.getJob(bullJobId);
    return job?.processedBy ? { worker: job.processedBy } : {};
  }

  private finished(result: JobResult): Change {
    return { state: 'done', finishedAt: new Date().toISOString(), result, progress: undefined };
  }

  private failedWith(reason: string | undefined): Change {
    const error = decodeJobError(reason);
    const finishedAt = new Date().toISOString();
    if (error.code === 'CANCELLED') return { state: 'cancelled', finishedAt, progress: undefined };
    return { state: 'failed', finishedAt, error, progress: undefined };
  }

  /** The record brought in line with BullMQ's state of the job. */
  private async reconcile(job: Job): Promise<Change | undefined> {
    const bull = await this.queue.getJob(bullId(job.id));
    if (!bull) return { state: 'interrupted', finishedAt: new Date().toISOString(), progress: undefined };
    const state = await bull.getState();
    if (state === 'completed') return this.finished(bull.returnvalue as JobResult);
    if (state === 'failed') return this.failedWith(bull.failedReason);
    if (state === 'active') return { state: 'running', ...(bull.processedBy ? { worker: bull.processedBy } : {}) };
    return { state: 'queued', progress: undefined };
  }

  /** Applies a change to a job's record (saved in Redis, then sent to listeners), after its earlier changes. */
  private update(id: string, change: (job: Job) => Change | undefined | Promise<Change | undefined>): Promise<void> {
    const next = (this.updates.get(id) ?? Promise.resolve()).then(async () => {
      const job = this.jobs.get(id);
      if (!job) return;
      const values = await change(job);
      if (!values) return;
      for (const [key, value] of Object.entries(values)) {
        if (value === undefined) delete job[key as keyof Job];
        else Object.assign(job, { [key]: value });
      }
      await this.save(job);
      this.emit(job);
    });
    const settled = next.catch((error: unknown) => this.options.log?.(`job ${id}: ${(error as Error).message}`));
    this.updates.set(id, settled);
    void settled.then(() => {
      if (this.updates.get(id) === settled) this.updates.delete(id);
    });
    return settled;
  }

  protected async save(job: Job): Promise<void> {
    const { progress: _progress, ...record } = job;
    await this.redis.hset(this.recordsKey, job.id, JSON.stringify(record));
  }

  /** The Redis key a worker polls to learn that its job was cancelled. */
  cancelKey(id: string): string {
    return this.queue.toKey(`${bullId(id)}:cancel`);
  }

  /** The Redis key holding the lock token of the worker that holds a job (BullMQ's). */
  lockKey(id: string): string {
    return this.queue.toKey(`${bullId(id)}:lock`);
  }

  private async enqueue(job: Job): Promise<void> {
    const data: WorkerJobData = {
      photo: job.photo,
      clip: job.clip,
      photoName: job.photoName,
      clipName: job.clipName,
      options: job.options,
    };
    await this.queue.add('animate', data, {
      jobId: bullId(job.id),
      attempts: this.attempts,
      backoff: { type: 'fixed', delay: 1000 },
    });
  }

  async submit(spec: JobSpec & { photoName: string; clipName: string }): Promise<Job> {
    // The record first (create saves it): the queue's events for the job find it.
    const job = await this.create(spec);
    await this.enqueue(job);
    return job;
  }

  async cancel(id: string): Promise<Job | undefined> {
    const job = this.jobs.get(id);
    if (!job) return undefined;
    if (job.state !== 'queued' && job.state !== 'running') return job;
    // A waiting job is removed at once; an active one is locked by its worker, which polls this mark.
    if ((await this.queue.remove(bullId(id))) === 1) {
      await this.update(id, () => ({ state: 'cancelled', finishedAt: new Date().toISOString(), progress: undefined }));
      return job;
    }
    await this.redis.set(this.cancelKey(id), '1', 'EX', 24 * 3600);
    const deadline = Date.now() + 30_000;
    while (job.state === 'running' && Date.now() < deadline && !this.closed)
      await new Promise((resolve) => setTimeout(resolve, 100));
    return job;
  }

  async retry(id: string): Promise<Job | undefined> {
    const job = this.jobs.get(id);
    if (!job) return undefined;
    if (job.state === 'queued' || job.state === 'running' || job.state === 'done') return job;
    await this.queue.remove(bullId(id));
    await this.redis.del(this.cancelKey(id));
    await this.update(id, () => ({
      state: 'queued',
      error: undefined,
      progress: undefined,
      result: undefined,
      startedAt: undefined,
      finishedAt: undefined,
      worker: undefined,
    }));
    await this.enqueue(job);
    return job;
  }

  async remove(id: string): Promise<boolean> {
    if (!this.jobs.has(id)) return false;
    await this.cancel(id);
    this.jobs.delete(id);
    await this.queue.remove(bullId(id));
    await this.redis.multi().hdel(this.recordsKey, id).del(this.cancelKey(id)).exec();
    await rm(join(this.options.folder, id), { recursive: true, force: true });
    return true;
  }

  /** Results being received from workers (worker-api.ts), under temporary names. */
  readonly receiving = new Set<string>();

  removeTemporaryFilesSync(): void {
    for (const path of this.receiving) rmSync(path, { force: true });
  }

  prune(retention: { keep: number; maxAgeMs: number }): Promise<string[]> {
    return pruneFinished(this, retention);
  }

  /** Stops listening; jobs keep running on their workers and are found again at the next start. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Bounded: a stop must not wait on Redis (it may be the thing that is down); nothing is lost
    // by not waiting, the next start reconciles the records with the queue.
    const bounded = (work: Promise<unknown>) =>
      Promise.race([work.catch(() => {}), new Promise((resolve) => setTimeout(resolve, 3000).unref())]);
    await bounded(Promise.all(this.updates.values()));
    await bounded(Promise.all([this.events.close(), this.queue.close()]));
    this.redis.disconnect();
    this.eventsClient.disconnect();
  }
}

function parseValue(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}
