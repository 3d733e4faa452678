/**
 * Workers load run: a Redis (redis-server on a free loopback port, append-only file in a
 * temporary folder), `reenact studio --redis` and two `reenact worker` processes (one thread
 * each), as users start them. 50 jobs (portrait-outdoor.jpg driven by a 1-second clip cut from
 * driving-talking.mp4) are queued at once through the HTTP API, then it waits for all of them and
 * prints one JSON line:
 *
 *   jobs, done, failed         every job should be done
 *   lost, duplicated           jobs never finished / jobs started more than once or finished twice (events and worker logs)
 *   jobsPerMinute              done jobs / (last finish - first submission)
 *   queueLatencySeconds        p50/p95/max of start - submission (waiting behind the queue)
 *   handoffMs                  p50/max of a worker's next start - its previous finish (the queue's own overhead per job)
 *   jobSeconds                 p50/max of finish - start, per job
 *   workerPeakRssMB            each worker process's peak resident memory (VmHWM; its job threads included, ffmpeg children not)
 *   workerTreePeakRssMB        peak of each worker's process tree (with its ffmpeg children), sampled every 250 ms
 *   load                       load average at the start and the end (other work on the same cores slows everything)
 *
 *   npm run bench:workers
 *   BENCH_JOBS=10 npm run bench:workers
 */
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { runFfmpeg } from '../src/media/ffmpeg.js';
import type { Job } from '../src/studio/jobs.js';
import { startRedis, startWorkerProcess, watchJobEvents, type WorkerProcess } from '../test/redis-run.js';
import { shared } from '../test/shared.js';
import { startStudioProcess, waitFor } from '../test/studio-run.js';

const jobCount = Number(process.env.BENCH_JOBS ?? 50);

function statusMB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** RSS of a process and all its descendants, in MB. */
function treeRssMB(root: number): number {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const ppid = Number(readFileSync(`/proc/${name}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
    } catch {
      // Gone meanwhile.
    }
  }
  let total = 0;
  const pending = [root];
  while (pending.length) {
    const pid = pending.pop()!;
    total += statusMB(pid, 'VmRSS');
    pending.push(...(children.get(pid) ?? []));
  }
  return total;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;

const folder = await mkdtemp(join(tmpdir(), 'reenact-bench-workers-'));
const loadStart = loadavg()[0]!;
const redis = await startRedis(folder);
const studio = await startStudioProcess(join(folder, 'studio'), '--redis', redis.url);
const api = async (path: string, init: RequestInit = {}) => {
  const response = await fetch(new URL(path, studio.url), init);
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  return response.json() as Promise<any>;
};
const workers: WorkerProcess[] = [];
for (const name of ['w1', 'w2']) {
  const { token } = await api('/api/worker/tokens', { method: 'POST', body: JSON.stringify({ name }) });
  workers.push(
    startWorkerProcess(['--server', studio.url, '--threads', '1'], {
      REENACT_REDIS_URL: redis.url,
      REENACT_WORKER_TOKEN: token,
    }),
  );
}
for (const worker of workers)
  await waitFor('a worker to start', async () => (/taking jobs/.test(worker.output()) ? true : undefined), 60_000);

const treePeak = workers.map(() => 0);
const sampler = setInterval(
  () => workers.forEach((worker, i) => (treePeak[i] = Math.max(treePeak[i]!, treeRssMB(worker.child.pid!)))),
  250,
);

const doneEvents = new Map<string, number>();
const events = new AbortController();
watchJobEvents(studio.url, events.signal, (job) => {
  if (job.state === 'done') doneEvents.set(job.id, (doneEvents.get(job.id) ?? 0) + 1);
});

const clipPath = join(folder, 'clip.mp4');
await runFfmpeg(
  [
    '-y',
    '-v',
    'error',
    '-t',
    '1',
    '-i',
    shared('fixtures', 'driving-talking.mp4'),
    '-c:v',
    'libx264',
    '-preset',
    'ultrafast',
    '-c:a',
    'aac',
    clipPath,
  ],
  'cutting the clip',
);
const photo = await api('/api/uploads/photo', {
  method: 'POST',
  body: await readFile(shared('fixtures', 'portrait-outdoor.jpg')),
  headers: { 'x-file-name': 'portrait-outdoor.jpg' },
});
const clip = await api('/api/uploads/clip', {
  method: 'POST',
  body: await readFile(clipPath),
  headers: { 'x-file-name': 'clip.mp4' },
});
const ids: string[] = [];
for (let i = 0; i < jobCount; i++) {
  const job = await api('/api/jobs', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ photo: photo.id, clip: clip.id }),
  });
  ids.push(job.id);
}
const jobs = await waitFor(
  'every job to finish',
  async () => {
    const list = (await api('/api/jobs')) as Job[];
    return list.length === jobCount && list.every((job) => job.state === 'done' || job.state === 'failed')
      ? list
      : undefined;
  },
  3 * 3600_000,
);
await new Promise((resolve) => setTimeout(resolve, 500));
clearInterval(sampler);
const workerPeakRssMB = workers.map((worker) => round(statusMB(worker.child.pid!, 'VmHWM'), 0));

const done = jobs.filter((job) => job.state === 'done');
const logs = workers.map((worker) => worker.output()).join('');
const starts = (id: string) => logs.match(new RegExp(`job ${id}: started`, 'g'))?.length ?? 0;
const time = (iso: string | undefined) => Date.parse(iso!);
const firstSubmit = Math.min(...jobs.map((job) => time(job.createdAt)));
const lastFinish = Math.max(...done.map((job) => time(job.finishedAt)));
const handoffs: number[] = [];
for (const name of ['w1', 'w2']) {
  const own = done.filter((job) => job.worker === name).sort((a, b) => time(a.startedAt) - time(b.startedAt));
  for (let i = 1; i < own.length; i++) handoffs.push(time(own[i]!.startedAt) - time(own[i - 1]!.finishedAt));
}
const queueLatency = done.map((job) => (time(job.startedAt) - time(job.createdAt)) / 1000);
const jobSeconds = done.map((job) => (time(job.finishedAt) - time(job.startedAt)) / 1000);

console.log(
  JSON.stringify({
    jobs: jobCount,
    done: done.length,
    failed: jobs.length - done.length,
    lost: ids.filter((id) => !done.some((job) => job.id === id)).length,
    duplicated: ids.filter((id) => starts(id) > 1 || (doneEvents.get(id) ?? 0) > 1).length,
    perWorker: Object.fromEntries(['w1', 'w2'].map((name) => [name, done.filter((job) => job.worker === name).length])),
    jobsPerMinute: round((done.length / (lastFinish - firstSubmit)) * 60_000),
    queueLatencySeconds: {
      p50: round(percentile(queueLatency, 50)),
      p95: round(percentile(queueLatency, 95)),
      max: round(Math.max(...queueLatency)),
    },
    handoffMs: { p50: round(percentile(handoffs, 50), 0), max: round(Math.max(...handoffs), 0) },
    jobSeconds: { p50: round(percentile(jobSeconds, 50)), max: round(Math.max(...jobSeconds)) },
    workerPeakRssMB,
    workerTreePeakRssMB: treePeak.map((value) => round(value, 0)),
    load: { start: round(loadStart, 2), end: round(loadavg()[0]!, 2) },
  }),
);

events.abort();
for (const worker of workers) {
  worker.child.kill('SIGTERM');
  await worker.exited;
}
await studio.stop('SIGTERM');
await redis.stop();
await rm(folder, { recursive: true, force: true });
