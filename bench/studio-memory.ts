/**
 * Studio server benchmark: starts `reenact studio` as a user does (its own process), uploads
 * portrait-outdoor.jpg and driving-talking.mp4 (8 s, 240 frames), queues three mesh jobs at once
 * and prints one JSON line:
 *
 *   peakRssMB        the server process's peak resident memory over the run (VmHWM from /proc;
 *                    its worker threads included, the ffmpeg children not)
 *   idleRssMB        its RSS after start, before any upload
 *   rssAfterMB       its RSS once the three jobs are done
 *   requestMs        p50/p99/max latency of GET /api/jobs/<id>, sent every 50 ms while the jobs run
 *   jobSeconds       wall time of each job
 *
 *   npm run bench:studio
 *   BENCH_JOBS=5 npm run bench:studio
 *
 * Other work on the same cores inflates the times; the load average is printed with the line.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const sharedDir = process.env.REENACT_SHARED ?? resolve(root, '..', 'shared');
const jobCount = Number(process.env.BENCH_JOBS ?? 3);

/** A /proc/<pid>/status field in MB (Linux). */
function status(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Math.round(Number(match[1]) / 1024) : NaN;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const folder = await mkdtemp(join(tmpdir(), 'reenact-bench-studio-'));
const child = spawn(
  process.execPath,
  ['--import', 'tsx', join(root, 'src', 'cli', 'run.ts'), 'studio', '--port', '0', '--data', join(folder, 'data')],
  { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] },
);
try {
  const url = await new Promise<string>((resolveUrl, reject) => {
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /reenact studio: (http:\/\/\S+)/.exec(output);
      if (match) resolveUrl(match[1]!);
    });
    child.on('exit', () => reject(new Error(`studio exited: ${output}`)));
  });
  const pid = child.pid!;
  const idleRssMB = status(pid, 'VmRSS');
  const post = async (path: string, body: BodyInit, headers: Record<string, string>) => {
    const response = await fetch(new URL(path, url), { method: 'POST', body, headers });
    if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
    return (await response.json()) as { id: string };
  };
  const photo = await post(
    '/api/uploads/photo',
    new Blob([await readFile(join(sharedDir, 'fixtures', 'portrait-outdoor.jpg'))]),
    { 'x-file-name': 'portrait-outdoor.jpg' },
  );
  const clip = await post(
    '/api/uploads/clip',
    new Blob([await readFile(join(sharedDir, 'fixtures', 'driving-talking.mp4'))]),
    { 'x-file-name': 'driving-talking.mp4' },
  );
  const jobs = await Promise.all(
    Array.from({ length: jobCount }, () =>
      post('/api/jobs', JSON.stringify({ photo: photo.id, clip: clip.id }), { 'content-type': 'application/json' }),
    ),
  );

  const latencies: number[] = [];
  const jobSeconds = new Map<string, number>();
  const started = performance.now();
  while (jobSeconds.size < jobs.length) {
    for (const job of jobs) {
      if (jobSeconds.has(job.id)) continue;
      const sent = performance.now();
      const state = (await (await fetch(new URL(`/api/jobs/${job.id}`, url))).json()) as {
        state: string;
        result?: { seconds: number };
        error?: unknown;
      };
      latencies.push(performance.now() - sent);
      if (state.state === 'done') jobSeconds.set(job.id, state.result!.seconds);
      else if (state.state !== 'queued' && state.state !== 'running')
        throw new Error(`job ${job.id} ended ${state.state}: ${JSON.stringify(state.error)}`);
    }
    await new Promise((resolveWait) => setTimeout(resolveWait, 50));
  }
  const sorted = [...latencies].sort((a, b) => a - b);
  const round = (value: number) => Math.round(value * 10) / 10;
  process.stdout.write(
    `${JSON.stringify({
      bench: 'studio',
      jobs: jobs.length,
      concurrency: 1,
      idleRssMB,
      peakRssMB: status(pid, 'VmHWM'),
      rssAfterMB: status(pid, 'VmRSS'),
      requestMs: {
        count: sorted.length,
        p50: round(percentile(sorted, 50)),
        p99: round(percentile(sorted, 99)),
        max: round(sorted[sorted.length - 1]!),
      },
      jobSeconds: [...jobSeconds.values()].map(round),
      totalSeconds: round((performance.now() - started) / 1000),
      loadAverage: Math.round(loadavg()[0]! * 100) / 100,
    })}\n`,
  );
} finally {
  child.kill('SIGINT');
  await new Promise((resolveExit) => child.once('exit', resolveExit));
  await rm(folder, { recursive: true, force: true });
}
