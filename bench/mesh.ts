/**
 * Mesh motion model benchmark: where the time of one output frame goes. Per-frame milliseconds
 * for
 *   - decoding the 256x256 driving clip (decodeVideo),
 *   - face landmarks per driving frame: full detect, boxes only, the landmark pool's groups as the
 *     mesh mode runs them (on this thread alone: a full detection, then two frames on the regions
 *     of the frame before, redone in full on fast turns; mean, with how many frames reused
 *     regions); the pool's landmarks drive the renders below,
 *   - MeshAnimator.render on the 587x586 outdoor photo (with and without the mouth fill),
 *   - encoding 586x586 H.264 (VideoEncoder defaults: medium, crf 18; it runs in ffmpeg, beside this process).
 * Landmarks and render are CPU ms of this process (medians); decode and encode run in ffmpeg
 * child processes and are wall ms, inflated when other jobs share the cores (see loadAverage).
 * The end-to-end target is 25 fps at 586x586 on 2 cores: 40 ms per frame for all of it.
 *
 *   npm run bench:mesh
 *
 * Prints one JSON object.
 */
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FaceAnalyzer, type Face } from '../src/face/detector.js';
import { decodeVideo } from '../src/media/decode.js';
import { VideoEncoder } from '../src/media/encode.js';
import { readImage } from '../src/media/image.js';
import { MeshAnimator } from '../src/mesh/animator.js';
import { LandmarkPool } from '../src/pipeline/landmark-pool.js';
import type { RgbImage, VideoFrame } from '../src/types.js';

const sharedDir = process.env.REENACT_SHARED ?? resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'shared');
const clip = join(sharedDir, 'fixtures', 'driving-talking.mp4');
const photo = join(sharedDir, 'fixtures', 'portrait-outdoor.jpg');

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return Number(sorted[sorted.length >> 1]!.toFixed(2));
}

function mean(values: number[]): number {
  return Number((values.reduce((s, v) => s + v, 0) / values.length).toFixed(2));
}

/**
 * Milliseconds of this process's CPU time (user + system) per item: on a machine shared with
 * other jobs that is far steadier than wall time, which also counts waiting for a core. All the
 * work measured this way runs on this process's main thread.
 */
async function timeEach<T>(items: readonly T[], work: (item: T, index: number) => unknown): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < items.length; i++) {
    const start = process.cpuUsage();
    await work(items[i]!, i);
    const used = process.cpuUsage(start);
    times.push((used.user + used.system) / 1000);
  }
  return times;
}

const frames: VideoFrame[] = [];
const decodeStart = performance.now();
for await (const frame of decodeVideo(clip, { duration: 4 })) frames.push(frame);
const decodeMs = (performance.now() - decodeStart) / frames.length;

const analyzer = await FaceAnalyzer.create();
await analyzer.detect(frames[0]!); // warm-up: first calls compile wasm kernels
const detectMs = await timeEach(frames, (frame) => analyzer.detect(frame));
const boxesMs = await timeEach(frames, (frame) => analyzer.detectBoxes(frame));
const pool = await LandmarkPool.create(analyzer, 0);
const driving: (Face | null)[] = [];
const poolMs = await timeEach(frames, async (frame) => driving.push(await pool.detect(frame)));
await pool.close();

const image = await readImage(photo);
const [face] = await analyzer.detect(image);
if (!face || !driving[0]) throw new Error('no face in the fixtures');
const renders: Record<string, number[]> = {};
const outputs: RgbImage[] = [];
for (const [name, options] of [
  ['render', {}],
  ['renderWithoutMouthFill', { mouthFill: false }],
] as const) {
  const animator = new MeshAnimator({ image, face }, driving[0], options);
  renders[name] = await timeEach(frames, (frame, k) => {
    const out = animator.render({ face: driving[k]!, frame, time: frame.time });
    if (name === 'render') outputs.push(out);
  });
}

// The encoder needs even sizes: the 587-wide render loses its last column.
const encodePath = join(tmpdir(), `reenact-bench-mesh-${process.pid}.mp4`);
const width = image.width & ~1;
const height = image.height & ~1;
const encodeStart = performance.now();
const encoder = await VideoEncoder.create(encodePath, { width, height, fps: 30 });
for (const out of outputs) {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    data.set(out.data.subarray(y * out.width * 3, (y * out.width + width) * 3), y * width * 3);
  await encoder.write({ width, height, data });
}
await encoder.finish();
const encodeMs = (performance.now() - encodeStart) / outputs.length;
await rm(encodePath, { force: true });

const renderMedian = median(renders.render!);
console.log(
  JSON.stringify(
    {
      frames: frames.length,
      drivingSize: `${frames[0]!.width}x${frames[0]!.height}`,
      photoSize: `${image.width}x${image.height}`,
      decodeWallMsPerFrame: Number(decodeMs.toFixed(2)),
      landmarksCpuMsPerFrame: {
        detect: median(detectMs),
        detectBoxes: median(boxesMs),
        poolGroupsMean: mean(poolMs),
        poolFramesOnPreviousRegions: `${pool.stats.reused} of ${pool.stats.frames}`,
      },
      renderCpuMsPerFrame: {
        median: renderMedian,
        mean: mean(renders.render!),
        withoutMouthFill: median(renders.renderWithoutMouthFill!),
      },
      encodeWallMsPerFrame: Number(encodeMs.toFixed(2)),
      /** One core doing everything in turn: decode + the pool's landmarks (mean, with its re-detections) + render + encode. */
      sequentialMsPerFrame: Number((decodeMs + mean(poolMs) + renderMedian + encodeMs).toFixed(2)),
      cpus: (await import('node:os')).cpus().length,
      loadAverage: (await import('node:os')).loadavg().map((v) => Number(v.toFixed(2))),
    },
    null,
    2,
  ),
);
