import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { UnrecoverableError, WaitingError, Worker, type Job as BullJob } from 'bullmq';
import { ReenactError } from '../errors.js';
import type { JobError, JobResult } from '../studio/jobs.js';
import { progressReporter } from '../studio/jobs.js';
import { encodeJobError, QUEUE_NAME, redisClient, studioId, type WorkerJobData } from '../studio/redis-queue.js';
import { jobRequest, runJobThread } from '../studio/runner.js';
import { readWorkerToken } from '../studio/worker-api.js';

/**
 * `reenact worker`: takes the studio's jobs from Redis (BullMQ), fetches each job's inputs from
 * the studio over HTTP with its worker token, runs `animate` here, sends the result back and
 * reports progress through the queue. The process that hosts it owns signals: `stop` finishes
 * running jobs within a grace period and hands back those that do not finish.
 */

export interface WorkerOptions {
  /** redis:// or rediss:// URL, credentials included. */
  redisUrl: string;
  /** The studio's URL, e.g. http://studio:7860. */
  server: string;
  /** A worker token the studio issued (POST /api/worker/tokens); the worker's name is in it. */
  token: string;
  /** Jobs at once. Default 1. */
  concurrency?: number;
  /** Times a job may be started before one that keeps stopping its workers (killed, crashed) is failed. Default 3. */
  attempts?: number;
  /** A job whose worker has not renewed its lock for this long goes to another worker. Default 30. */
  stallSeconds?: number;
  /** FOMM configs and checkpoints, under the names the studio offers. */
  modelsDir?: string;
  threads?: number;
  /** Where inputs and results are kept while a job runs (default: the system's temporary folder). */
  workDir?: string;
  queueName?: string;
  log?: (line: string) => void;
}

export interface RunningWorker {
  name: string;
  /** Stops taking jobs; running ones get `graceMs` to finish, then are handed back to the queue. */
  stop(graceMs: number): Promise<void>;
}

/** Codes of the library's errors that are about the machine, not the job's inputs: worth another try. */
const MACHINE_ERRORS = new Set(['FFMPEG_FAILED', 'OUTPUT_UNWRITABLE']);
/** How long a job's requests wait for a studio that cannot be reached (it may be restarting). */
const STUDIO_RETRY_MS = 120_000;

function plainName(name: string, fallback: string): string {
  const plain = basename(name);
  return plain && plain !== '.' && plain !== '..' ? plain : fallback;
}

class StudioRefusal extends Error {
  constructor(
    readonly status: number,
    readonly error: JobError,
  ) {
    super(`the studio refused: ${status} ${error.code}: ${error.message}`);
  }
}

export async function startWorker(options: WorkerOptions): Promise<RunningWorker> {
  const log = options.log ?? (() => {});
  const claims = readWorkerToken(options.token);
  if (!claims)
    throw new ReenactError(
      'BAD_ARGUMENT',
      'the --token is not a worker token.',
      'Issue one on the studio: curl -X POST http://studio:7860/api/worker/tokens -d \'{"name":"worker-1"}\'.',
    );
  const server = new URL(options.server);
  const attempts = options.attempts ?? 3;
  const stallMs = (options.stallSeconds ?? 30) * 1000;
  const authorization = `Bearer ${options.token}`;

  /**
   * A request to the studio's worker API. While the studio cannot be reached (restarting) it is
   * tried again every second for up to `retryMs`; `body` makes a fresh body for each try.
   */
  const call = async (
    path: string,
    init: RequestInit = {},
    retryMs = STUDIO_RETRY_MS,
    body?: () => BodyInit,
  ): Promise<Response> => {
    const deadline = Date.now() + retryMs;
    for (;;) {
      let response: Response;
      try {
        response = await fetch(new URL(path, server), {
          ...init,
          ...(body ? { body: body(), duplex: 'half' } : {}),
          headers: { authorization, ...(init.headers as Record<string, string>) },
        } as RequestInit);
      } catch (error) {
        if (init.signal?.aborted) throw error;
        const reason = `cannot reach the studio at ${server.origin}: ${(error as Error).cause ?? (error as Error).message}`;
        if (Date.now() >= deadline) throw new Error(reason, { cause: error });
        log(`${reason}; trying again`);
        await new Promise((resolve) => setTimeout(resolve, 1000));
        continue;
      }
      if (response.ok) return response;
      const refusal = (await response.json().catch(() => ({}))) as { error?: JobError };
      throw new StudioRefusal(
        response.status,
        refusal.error ?? { code: `HTTP_${response.status}`, message: response.statusText },
      );
    }
  };
  // A wrong token or studio address is found at start, not at the first job.
  try {
    await call('/api/worker/whoami', {}, 0);
  } catch (error) {
    const refused = error instanceof StudioRefusal;
    throw new ReenactError(
      'BAD_ARGUMENT',
      refused ? `the studio at ${server.origin} refused this worker: ${error.error.message}` : (error as Error).message,
      refused ? (error.error.hint ?? 'Check --token.') : 'Check --server and that the studio is running with --redis.',
    );
  }

  const shutdown = new AbortController();
  const connection = redisClient(options.redisUrl, log, `worker ${claims.name}`);
  const watcher = redisClient(options.redisUrl, log, `worker ${claims.name} cancels`);
  const queueName = options.queueName ?? QUEUE_NAME;

  const processJob = async (
    job: BullJob<WorkerJobData, JobResult>,
    lock: string | undefined,
    jobSignal?: AbortSignal,
  ): Promise<JobResult> => {
    const id = studioId(job.id);
    if (!id)
      throw new UnrecoverableError(
        encodeJobError({
          code: 'NOT_A_STUDIO_JOB',
          message: `job ${job.id} in the queue was not added by reenact studio.`,
        }),
      );
    const held = { 'x-reenact-lock': lock ?? '' };
    const folder = await mkdtemp(join(options.workDir ?? tmpdir(), `reenact-job-${id}-`));
    const cancelled = new AbortController();
    const signal = AbortSignal.any([shutdown.signal, cancelled.signal, ...(jobSignal ? [jobSignal] : [])]);
    const cancelKey = worker.toKey(`${job.id}:cancel`);
    const poll = setInterval(() => {
      watcher.exists(cancelKey).then(
        (found) => found && cancelled.abort('cancel'),
        () => {},
      );
    }, 1000);
    // Under the user's names (plain names, checked by the studio), so the library's messages name them.
    const inputs = {
      photo: join(folder, 'photo', plainName(job.data.photoName, 'photo')),
      clip: join(folder, 'clip', plainName(job.data.clipName, 'clip')),
    };
    const output = join(folder, 'result.mp4');
    const started = performance.now();
    log(
      `job ${id}: started (attempt ${job.attemptsStarted}${job.stalledCounter ? `, after ${job.stalledCounter} stopped worker(s)` : ''})`,
    );
    try {
      for (const kind of ['photo', 'clip'] as const) {
        await mkdir(dirname(inputs[kind]));
        const response = await call(`/api/worker/jobs/${id}/${kind}`, { headers: held, signal });
        await pipeline(
          Readable.fromWeb(response.body! as import('node:stream/web').ReadableStream),
          createWriteStream(inputs[kind]),
          { signal },
        );
      }
      const onProgress = progressReporter(
        (progress) => void job.updateProgress(progress as unknown as object).catch(() => {}),
        250,
      );
      const request = jobRequest(
        inputs,
        job.data.options,
        output,
        options.modelsDir ?? join(folder, 'models'),
        options.threads,
      );
      const result = await runJobThread({ request }, signal, onProgress, (trace) => log(`job ${id}: ${trace}`));
      const size = String((await stat(output)).size);
      await call(
        `/api/worker/jobs/${id}/result`,
        { method: 'PUT', headers: { ...held, 'content-type': 'video/mp4', 'content-length': size }, signal },
        STUDIO_RETRY_MS,
        () => Readable.toWeb(createReadStream(output)) as ReadableStream,
      );
      log(`job ${id}: done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
      return result;
    } catch (error) {
      if (shutdown.signal.aborted && !cancelled.signal.aborted) {
        // Stopping: the job goes back to the queue for another worker, without counting as a failure.
        await job.moveToWait(lock);
        log(`job ${id}: handed back`);
        throw new WaitingError();
      }
      if (cancelled.signal.aborted)
        throw new UnrecoverableError(encodeJobError({ code: 'CANCELLED', message: 'the job was cancelled.' }));
      if (error instanceof StudioRefusal && error.status !== 403)
        throw new UnrecoverableError(encodeJobError(error.error));
      if (error instanceof ReenactError && !MACHINE_ERRORS.has(error.code)) {
        const message = error.message
          .replaceAll(dirname(inputs.photo) + sep, '')
          .replaceAll(dirname(inputs.clip) + sep, '');
        log(`job ${id}: failed: ${message}`);
        throw new UnrecoverableError(
          encodeJobError({ code: error.code, message, ...(error.hint ? { hint: error.hint } : {}) }),
        );
      }
      log(`job ${id}: attempt failed: ${(error as Error).message}`);
      throw error;
    } finally {
      clearInterval(poll);
      await rm(folder, { recursive: true, force: true });
    }
  };

  const worker = new Worker<WorkerJobData, JobResult>(queueName, processJob, {
    connection,
    name: claims.name,
    concurrency: options.concurrency ?? 1,
    lockDuration: stallMs,
    stalledInterval: stallMs,
    maxStalledCount: attempts - 1,
  });
  worker.on('error', (error) => log(`queue: ${error.message}`));
  await worker.waitUntilReady();

  let stopping: Promise<void> | undefined;
  return {
    name: claims.name,
    stop: (graceMs) =>
      (stopping ??= (async () => {
        const timer = setTimeout(() => shutdown.abort('stop'), graceMs);
        await worker.close();
        clearTimeout(timer);
        connection.disconnect();
        watcher.disconnect();
      })()),
  };
}
