import { randomBytes } from 'node:crypto';
import { readdirSync, rmSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { invalidOption, ReenactError } from '../errors.js';
import {
  isId,
  JobRecords,
  progressReporter,
  pruneFinished,
  type Job,
  type JobQueue,
  type JobRunner,
  type JobSpec,
} from './jobs.js';

/** Writes JSON under a temporary name and renames it, so a crash never leaves half a record. */
export async function writeJson(path: string, value: unknown): Promise<void> {
  const temporary = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(temporary, `${JSON.stringify(value, null, 2)}\n`);
  await rename(temporary, path);
}

/** Files a run leaves while it writes: partial results (PendingOutput) and records being replaced. */
function isTemporary(file: string): boolean {
  return file.includes('.partial') || file.endsWith('.tmp');
}

export interface DiskJobQueueOptions {
  /** Folder holding one folder per job: job.json, result.mp4, thumb.jpg. */
  folder: string;
  runner: JobRunner;
  /** Jobs run at once. Default 1 (one job already uses both cores of a small machine). */
  concurrency?: number;
}

/**
 * The studio's default queue: jobs run inside this process, and each job's record is a JSON file
 * rewritten on every change of state, so a restart finds finished jobs as they were, queued jobs
 * still queued, and jobs that were running (the process died under them) interrupted.
 */
export class DiskJobQueue extends JobRecords implements JobQueue {
  private readonly running = new Map<string, { controller: AbortController; done: Promise<void> }>();
  private readonly concurrency: number;

  private constructor(private readonly options: DiskJobQueueOptions) {
    super(options.folder);
    this.concurrency = options.concurrency ?? 1;
  }

  static async open(options: DiskJobQueueOptions): Promise<DiskJobQueue> {
    if (options.concurrency !== undefined && !(Number.isInteger(options.concurrency) && options.concurrency >= 1)) {
      throw invalidOption('concurrency', 'a whole number of at least 1', options.concurrency);
    }
    const queue = new DiskJobQueue(options);
    await queue.load();
    queue.pump();
    return queue;
  }

  private async load(): Promise<void> {
    await mkdir(this.options.folder, { recursive: true });
    for (const name of await readdir(this.options.folder)) {
      if (!isId(name)) continue;
      const folder = join(this.options.folder, name);
      let job: Job;
      try {
        job = JSON.parse(await readFile(join(folder, 'job.json'), 'utf8')) as Job;
      } catch {
        // A folder without a readable record was never a complete submission.
        await rm(folder, { recursive: true, force: true });
        continue;
      }
      // Half-written results of a run that died with the process.
      for (const file of await readdir(folder)) if (isTemporary(file)) await rm(join(folder, file), { force: true });
      if (job.state === 'running') {
        job.state = 'interrupted';
        job.finishedAt = new Date().toISOString();
        delete job.progress;
        await this.save(job);
      }
      this.jobs.set(job.id, job);
    }
  }

  protected async save(job: Job): Promise<void> {
    await writeJson(join(this.options.folder, job.id, 'job.json'), job);
  }

  private async change(job: Job, update: Partial<Job>, omit: (keyof Job)[] = []): Promise<void> {
    Object.assign(job, update);
    for (const key of omit) delete job[key];
    await this.save(job);
    this.emit(job);
  }

  async submit(spec: JobSpec & { photoName: string; clipName: string }): Promise<Job> {
    const job = await this.create(spec);
    this.pump();
    return job;
  }

  async cancel(id: string): Promise<Job | undefined> {
    const job = this.jobs.get(id);
    if (!job) return undefined;
    if (job.state === 'queued') await this.change(job, { state: 'cancelled', finishedAt: new Date().toISOString() });
    const run = this.running.get(id);
    if (run) {
      run.controller.abort('cancel');
      await run.done;
    }
    return job;
  }

  async retry(id: string): Promise<Job | undefined> {
    const job = this.jobs.get(id);
    if (!job) return undefined;
    if (job.state === 'queued' || job.state === 'running' || job.state === 'done') return job;
    await this.change(job, { state: 'queued' }, ['error', 'progress', 'result', 'startedAt', 'finishedAt']);
    this.pump();
    return job;
  }

  async remove(id: string): Promise<boolean> {
    if (!this.jobs.has(id)) return false;
    await this.cancel(id);
    this.jobs.delete(id);
    await rm(join(this.options.folder, id), { recursive: true, force: true });
    return true;
  }

  /** Deletes finished jobs beyond the newest `keep` and those older than `maxAgeMs`; returns the ids removed. */
  prune(retention: { keep: number; maxAgeMs: number }): Promise<string[]> {
    return pruneFinished(this, retention);
  }

  async close(): Promise<void> {
    this.closed = true;
    const runs = [...this.running.values()];
    for (const run of runs) run.controller.abort('shutdown');
    await Promise.all(runs.map((run) => run.done));
  }

  /**
   * For a process that exits before close() could finish (a second Ctrl-C): removes what the
   * running jobs had half-written. Their records still say running: the next start marks them
   * interrupted.
   */
  removeTemporaryFilesSync(): void {
    for (const id of this.running.keys()) {
      const folder = join(this.options.folder, id);
      for (const file of readdirSync(folder)) if (isTemporary(file)) rmSync(join(folder, file), { force: true });
    }
  }

  private pump(): void {
    if (this.closed) return;
    for (const job of [...this.jobs.values()].sort((a, b) => a.createdAt.localeCompare(b.createdAt))) {
      if (this.running.size >= this.concurrency) return;
      if (job.state === 'queued' && !this.running.has(job.id)) this.start(job);
    }
  }

  private start(job: Job): void {
    const controller = new AbortController();
    const done = this.run(job, controller).finally(() => {
      this.running.delete(job.id);
      this.pump();
    });
    this.running.set(job.id, { controller, done });
  }

  private async run(job: Job, controller: AbortController): Promise<void> {
    const onProgress = progressReporter((progress) => {
      job.progress = progress;
      this.emit(job);
    });
    try {
      await this.change(job, { state: 'running', startedAt: new Date().toISOString() });
      const result = await this.options.runner(job, this.files(job.id), controller.signal, onProgress);
      await this.change(job, { state: 'done', finishedAt: new Date().toISOString(), result }, ['progress']);
    } catch (error) {
      const finishedAt = new Date().toISOString();
      if (controller.signal.aborted) {
        await this.change(
          job,
          { state: controller.signal.reason === 'shutdown' ? 'interrupted' : 'cancelled', finishedAt },
          ['progress'],
        );
      } else {
        const failure =
          error instanceof ReenactError
            ? { code: error.code, message: error.message, ...(error.hint ? { hint: error.hint } : {}) }
            : { code: 'INTERNAL', message: (error as Error).message ?? String(error) };
        await this.change(job, { state: 'failed', finishedAt, error: failure }, ['progress']);
      }
    }
  }
}
