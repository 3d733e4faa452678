/**
 * End-to-end animate() benchmark. Prints one JSON line per part:
 *
 *   mesh    frames per second of the whole pipeline (decode, landmarks, warp, label, encode) on
 *           portrait-outdoor.jpg (586x586 output) driven by driving-talking.mp4 (8 s, 240 frames).
 *   fomm    the vox-adv-256 model (REENACT_FOMM_CHECKPOINT, else seeded random weights: the
 *           timing does not depend on the values) on the first BENCH_FOMM_SECONDS (default 2) of
 *           the clip: the model's own time (keypoints + generator) against the pipeline's wall
 *           time from the face-track search to the last frame written. Target: decode +
 *           tracking + blend + encode add at most 20% to the model's time.
 *   memory  peak RSS (this process and its worker threads, sampled every 200 ms; the ffmpeg
 *           children are separate processes) of a mesh run over a BENCH_SECONDS long (default
 *           600) 256x256 loop of driving-talking.mp4, with the peak of the first and the last
 *           quarter of the run, so growth shows. Target: < 800 MB.
 *
 *   npm run bench:animate                       # all three (the memory part takes ~20+ minutes on 2 cores)
 *   npm run bench:animate -- --only mesh,fomm   # a subset
 *   BENCH_SECONDS=60 npm run bench:animate -- --only memory
 *
 * Other jobs on the same cores inflate the times: the load average is printed with each line.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/fomm/config.js';
import { FommModel } from '../src/fomm/model.js';
import { randomWeights } from '../src/fomm/tools/random-weights.js';
import { runFfmpeg } from '../src/media/ffmpeg.js';
import { probeVideo } from '../src/media/probe.js';
import { writeAtomically } from '../src/output.js';
import { animate } from '../src/pipeline/animate.js';
import { cpuMs } from './cpu.js';

const { values } = parseArgs({ options: { only: { type: 'string', default: 'mesh,fomm,memory' } } });
const parts = new Set(values.only!.split(','));
const sharedDir = process.env.REENACT_SHARED ?? resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'shared');
const photo = join(sharedDir, 'fixtures', 'portrait-outdoor.jpg');
const driving = join(sharedDir, 'fixtures', 'driving-talking.mp4');
const mb = (bytes: number) => Math.round(bytes / 1024 / 1024);
const load = () => Math.round(loadavg()[0]! * 100) / 100;

function print(record: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ ...record, loadAverage: load() })}\n`);
}

/** Samples the RSS every 200 ms; `peak(from, to)` is the highest sample in that span of seconds. */
function rssSampler() {
  const started = performance.now();
  const samples: [number, number][] = [];
  const sample = () => samples.push([(performance.now() - started) / 1000, process.memoryUsage().rss]);
  sample();
  const timer = setInterval(sample, 200);
  return {
    stop() {
      clearInterval(timer);
      sample();
    },
    peak(from = 0, to = Infinity) {
      return Math.max(0, ...samples.filter(([t]) => t >= from && t <= to).map(([, rss]) => rss));
    },
    get seconds() {
      return samples.at(-1)![0];
    },
  };
}

const folder = await mkdtemp(join(tmpdir(), 'reenact-bench-animate-'));
try {
  if (parts.has('mesh')) {
    const started = performance.now();
    const cpu = cpuMs();
    let framesStart = 0;
    const result = await animate({
      source: photo,
      driving,
      output: join(folder, 'mesh.mp4'),
      onProgress: (event) => {
        if (event.stage === 'animate' && !framesStart) framesStart = performance.now();
      },
    });
    const seconds = (performance.now() - started) / 1000;
    const framesSeconds = (performance.now() - framesStart) / 1000;
    const used = cpuMs();
    const ownMs = (used.own - cpu.own) / result.frames;
    const ffmpegMs = (used.children - cpu.children) / result.frames;
    print({
      bench: 'animate-mesh',
      frames: result.frames,
      size: `${result.width}x${result.height}`,
      seconds: round(seconds),
      fps: round(result.frames / seconds),
      // Without the one-time start (models loading, worker threads starting).
      framesFps: round(result.frames / framesSeconds),
      // CPU per frame of this process (with its worker threads) and of the ffmpeg children: the
      // rate two otherwise idle cores would reach, when the wall time is inflated by other jobs.
      cpuMsPerFrame: round(ownMs),
      ffmpegCpuMsPerFrame: round(ffmpegMs),
      cpuBoundFpsOn2Cores: round(2000 / (ownMs + ffmpegMs)),
    });
  }

  if (parts.has('fomm')) {
    const configPath = join(sharedDir, 'fomm', 'configs', 'vox-adv-256.yaml');
    const config = await loadConfig(configPath);
    const checkpoint = process.env.REENACT_FOMM_CHECKPOINT ?? randomWeights(config, { width: 256, height: 256 });
    const clipSeconds = Number(process.env.BENCH_FOMM_SECONDS ?? 2);
    const clip = join(folder, 'fomm-driving.mp4');
    await runFfmpeg(
      ['-y', '-i', driving, '-t', String(clipSeconds), '-c:v', 'libx264', '-crf', '16', '-c:a', 'aac', clip],
      'cutting the benchmark clip',
    );
    // The model's own time, measured inside the real run by timing its two per-frame calls.
    let modelMs = 0;
    const timed = <A extends unknown[], R>(call: (...args: A) => Promise<R>) =>
      async function (this: FommModel, ...args: A): Promise<R> {
        const start = performance.now();
        try {
          return await call.apply(this, args);
        } finally {
          modelMs += performance.now() - start;
        }
      };
    FommModel.prototype.detectKeypoints = timed(FommModel.prototype.detectKeypoints);
    FommModel.prototype.generate = timed(FommModel.prototype.generate);
    let pipelineStart = 0;
    const result = await animate({
      source: photo,
      driving: clip,
      output: join(folder, 'fomm.mp4'),
      model: 'fomm',
      config,
      checkpoint,
      onProgress: (event) => {
        // From the face-track search on: one-time loading and the source encoding are left out.
        if (!pipelineStart && (event.stage === 'track' || event.stage === 'animate')) {
          pipelineStart = performance.now();
          modelMs = 0;
        }
      },
    });
    const pipelineMs = performance.now() - pipelineStart;
    print({
      bench: 'animate-fomm',
      weights: process.env.REENACT_FOMM_CHECKPOINT ? 'checkpoint' : 'random',
      frames: result.frames,
      modelMsPerFrame: round(modelMs / result.frames),
      pipelineMsPerFrame: round(pipelineMs / result.frames),
      overheadShare: round((pipelineMs - modelMs) / modelMs),
      target: 0.2,
    });
  }

  if (parts.has('memory')) {
    const seconds = Number(process.env.BENCH_SECONDS ?? 600);
    const clip = join(tmpdir(), `reenact-bench-animate-${seconds}s-256.mp4`);
    if (!existsSync(clip)) {
      const loopSeconds = (await probeVideo(driving)).duration;
      await writeAtomically(clip, (tempPath) =>
        runFfmpeg(
          [
            '-y',
            '-stream_loop',
            String(Math.ceil(seconds / loopSeconds)),
            '-i',
            driving,
            '-t',
            String(seconds),
            '-c',
            'copy',
            '-f',
            'mp4',
            tempPath,
          ],
          'looping the benchmark clip',
        ),
      );
    }
    const rss = rssSampler();
    const started = performance.now();
    const result = await animate({ source: photo, driving: clip, output: join(folder, 'memory.mp4') });
    rss.stop();
    const wall = (performance.now() - started) / 1000;
    print({
      bench: 'animate-memory',
      clipSeconds: seconds,
      frames: result.frames,
      fps: round(result.frames / wall),
      peakRssMB: mb(rss.peak()),
      firstQuarterPeakMB: mb(rss.peak(0, rss.seconds / 4)),
      lastQuarterPeakMB: mb(rss.peak((rss.seconds * 3) / 4)),
      target: 800,
    });
  }
} finally {
  await rm(folder, { recursive: true, force: true });
}

/** CPU ms used so far by this process and by its finished children (Linux /proc; children 0 elsewhere). */
function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
