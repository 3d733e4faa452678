/**
 * Can reenact live inside a server? A plain node:http server in this process answers a tiny
 * request while animate() runs a FOMM job (vox-adv-256, REENACT_FOMM_CHECKPOINT or seeded random
 * weights: timing does not depend on the values) on the first BENCH_SECONDS (default 2) of
 * driving-talking.mp4. A client in a worker thread (its own event loop, so it keeps its schedule
 * while this one is busy) requests it over loopback every 10 ms and times each answer.
 *
 * Two ways of running the model, interleaved round by round (order alternating) so that load
 * from other jobs on the machine falls on both alike:
 *   off-thread  the default: ONNX Runtime's sessions on the model's SessionThread, the native
 *               decoder on the libuv thread pool (NativeDecoder.decode)
 *   blocking    as before: the sessions in this thread (ort.InferenceSession, whose run() computes
 *               on the calling thread) and the decoder on it too (NativeDecoder.run)
 *
 * Prints one JSON line per job and one per path: p50/p95/p99/max latency in ms over the frames
 * (from the first frame animated to the end), and the same over the whole job (model loading and
 * the face-track search included). Goal: p99 < 100 ms over the frames.
 *
 *   npm run bench:hosting
 *   npm run bench:hosting -- --rounds 3 --only off-thread
 */
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { loadConfig } from '../src/fomm/config.js';
import { NativeDecoder, nativeKernels } from '../src/fomm/native/decoder.js';
import { SessionThread } from '../src/fomm/session-thread.js';
import { randomWeights } from '../src/fomm/tools/random-weights.js';
import { runFfmpeg } from '../src/media/ffmpeg.js';
import { animate } from '../src/pipeline/animate.js';

type ModelPath = 'off-thread' | 'blocking';

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '2' }, only: { type: 'string', default: 'off-thread,blocking' } },
});
const rounds = Number(values.rounds);
const paths = values.only!.split(',') as ModelPath[];
const sharedDir = process.env.REENACT_SHARED ?? resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'shared');
const photo = join(sharedDir, 'fixtures', 'portrait-outdoor.jpg');
const driving = join(sharedDir, 'fixtures', 'driving-talking.mp4');
const INTERVAL_MS = 10;

/** [send time (epoch ms), latency in ms or -1 when the request failed, its error]. */
type Sample = [number, number, string?];

const { module, reason } = nativeKernels();
if (!module) throw new Error(`bench:hosting runs the native decoder, and it is unavailable: ${reason}`);

/** The client: a request every INTERVAL_MS, not waiting for answers; on 'stop', the latencies (ms) keyed by send time. */
const CLIENT = `
const { parentPort, workerData } = require('node:worker_threads');
const http = require('node:http');
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const samples = [];
const timer = setInterval(() => {
  const sent = performance.timeOrigin + performance.now();
  http.get({ host: '127.0.0.1', port: workerData.port, path: '/ping', agent }, (response) => {
    response.resume();
    response.on('end', () => samples.push([sent, performance.timeOrigin + performance.now() - sent]));
  }).on('error', (error) => samples.push([sent, -1, error.code || error.message]));
}, workerData.interval);
parentPort.on('message', () => {
  clearInterval(timer);
  setTimeout(() => { parentPort.postMessage(samples); agent.destroy(); }, 1000);
});
`;

/** How every model loaded from now on runs. */
const { decode } = NativeDecoder.prototype;
const { create } = SessionThread.prototype;
function useModelPath(path: ModelPath): void {
  if (path === 'off-thread') {
    NativeDecoder.prototype.decode = decode;
    SessionThread.prototype.create = create;
    return;
  }
  NativeDecoder.prototype.decode = async function <T>(
    this: NativeDecoder,
    input: Float32Array,
    use: (output: Float32Array) => Promise<T> | T,
  ): Promise<T> {
    return use(this.run(input));
  };
  SessionThread.prototype.create = async (model, options) => {
    const session = await ort.InferenceSession.create(model, options);
    return {
      run: (feeds, fetches) =>
        (fetches ? session.run(feeds, fetches) : session.run(feeds)) as Promise<Record<string, ort.Tensor>>,
      release: () => session.release(),
    };
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]! : NaN;
}

/** Latency figures of the answered requests; failed ones (latency -1) are counted apart, with their errors. */
function summary(samples: Sample[]) {
  const failed = samples.filter(([, latency]) => latency < 0);
  const sorted = samples
    .filter(([, latency]) => latency >= 0)
    .map(([, latency]) => latency)
    .sort((a, b) => a - b);
  const round = (value: number) => Math.round(value * 10) / 10;
  const errors = [...new Set(failed.map(([, , error]) => error))].join(', ');
  return {
    requests: sorted.length,
    ...(failed.length ? { failed: failed.length, errors } : {}),
    p50: round(percentile(sorted, 50)),
    p95: round(percentile(sorted, 95)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted.at(-1) ?? NaN),
  };
}

const server = createServer((_request, response) => response.end('ok'));
// Longer than any stall: a keep-alive socket the server closes as the client reuses it fails with ECONNRESET.
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const { port } = server.address() as AddressInfo;

const folder = await mkdtemp(join(tmpdir(), 'reenact-bench-hosting-'));
try {
  const config = await loadConfig(join(sharedDir, 'fomm', 'configs', 'vox-adv-256.yaml'));
  const checkpoint = process.env.REENACT_FOMM_CHECKPOINT ?? randomWeights(config, { width: 256, height: 256 });
  const clip = join(folder, 'driving.mp4');
  await runFfmpeg(
    ['-y', '-i', driving, '-t', process.env.BENCH_SECONDS ?? '2', '-c:v', 'libx264', '-crf', '16', '-c:a', 'aac', clip],
    'cutting the benchmark clip',
  );
  const pooled = new Map<ModelPath, { frames: Sample[]; job: Sample[] }>(
    paths.map((path) => [path, { frames: [], job: [] }]),
  );
  for (let round = 0; round < rounds; round++) {
    for (const path of round % 2 ? paths.slice().reverse() : paths) {
      useModelPath(path);
      const client = new Worker(CLIENT, { eval: true, workerData: { port, interval: INTERVAL_MS } });
      await once(client, 'online');
      const jobStart = performance.timeOrigin + performance.now();
      let framesStart = Infinity;
      const result = await animate({
        source: photo,
        driving: clip,
        output: join(folder, `${path}.mp4`),
        model: 'fomm',
        config,
        checkpoint,
        onProgress: (event) => {
          if (event.stage === 'animate' && framesStart === Infinity)
            framesStart = performance.timeOrigin + performance.now();
        },
      });
      const jobEnd = performance.timeOrigin + performance.now();
      client.postMessage('stop');
      const [samples] = (await once(client, 'message')) as [Sample[]];
      await client.terminate();
      const during = (from: number) => samples.filter(([sent]) => sent >= from && sent <= jobEnd);
      const frames = during(framesStart);
      const job = during(jobStart);
      pooled.get(path)!.frames.push(...frames);
      pooled.get(path)!.job.push(...job);
      const line = {
        bench: 'hosting',
        round: round + 1,
        model: path,
        frames: result.frames,
        msPerFrame: Math.round((jobEnd - framesStart) / result.frames),
        latencyMsDuringFrames: summary(frames),
        latencyMsWholeJob: summary(job),
        loadAverage: Math.round(loadavg()[0]! * 100) / 100,
      };
      process.stdout.write(`${JSON.stringify(line)}\n`);
    }
  }
  for (const [path, { frames, job }] of pooled) {
    process.stdout.write(
      `${JSON.stringify({ bench: 'hosting', model: path, rounds, latencyMsDuringFrames: summary(frames), latencyMsWholeJob: summary(job), goalP99Ms: 100 })}\n`,
    );
  }
} finally {
  server.close();
  await rm(folder, { recursive: true, force: true });
}
