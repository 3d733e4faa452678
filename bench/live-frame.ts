/**
 * One live frame's work in the studio, part by part, on one thread (no Chromium, no WebSocket):
 * the camera frame's JPEG decode (640x480), its landmarks, the mesh warp of a 512x512 photo,
 * the synthetic marks and the JPEG encode sent back. Landmarks are taken three ways on the same
 * frames, interleaved (each frame goes through all three before the next):
 *
 *   full      a full detection (BlazeFace, then Face Mesh and Iris on its box) of every frame
 *   video     animate's grouping (VIDEO_GROUPING): a full detection every 3rd frame, the frames
 *             between on the regions of the frame before
 *   live      live mode's (LIVE_GROUPING): a full detection every 15th frame, the frames between
 *             on the boxes around the frame before's mesh (tracking)
 *
 * For video and live it prints ms per frame, how many frames were detected afresh, and how far
 * their landmarks are from the full detection's (mean over the 478 points, in % of the distance
 * between the eyes; p95 over the frames). The detections' own frame-to-frame noise is the floor.
 *
 *   npm run bench:live-frame                 # 90 frames of each driving clip
 *   BENCH_FRAMES=30 npm run bench:live-frame
 */
import { loadavg } from 'node:os';
import sharp from 'sharp';
import { chooseFace } from '../src/align/source.js';
import { FaceAnalyzer, LANDMARK_COUNT, type Face, type FrameDetection } from '../src/face/detector.js';
import { decodeVideo } from '../src/media/decode.js';
import { displayJpeg } from '../src/media/image.js';
import { MeshAnimator } from '../src/mesh/animator.js';
import { followsPrevious, LIVE_GROUPING, VIDEO_GROUPING, type FrameGrouping } from '../src/pipeline/landmark-pool.js';
import { SyntheticMarks } from '../src/pipeline/synthetic-output.js';
import type { RgbImage } from '../src/types.js';
import { shared } from '../test/shared.js';

const frameCount = Number(process.env.BENCH_FRAMES ?? 90);
const analyzer = await FaceAnalyzer.create();

const photoRaw = await sharp(shared('fixtures', 'portrait-outdoor.jpg'))
  .resize(512, 512)
  .raw()
  .toBuffer({ resolveWithObject: true });
const photo: RgbImage = { width: 512, height: 512, data: new Uint8Array(photoRaw.data) };
const photoFace = chooseFace(await analyzer.detect(photo));
const marks = await SyntheticMarks.create(512, 512, { model: 'mesh' });

const times = new Map<string, number[]>();
async function timed<T>(part: string, work: () => T | Promise<T>): Promise<T> {
  const start = performance.now();
  const result = await work();
  const list = times.get(part) ?? [];
  list.push(performance.now() - start);
  times.set(part, list);
  return result;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
}
const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
const round = (value: number) => Math.round(value * 10) / 10;

/** Mean landmark distance of `face` from `truth`, in % of truth's eye distance (outer corners 33, 263). */
function landmarkError(face: Face, truth: Face): number {
  const t = truth.landmarks;
  const eyes = Math.hypot(t[33 * 3]! - t[263 * 3]!, t[33 * 3 + 1]! - t[263 * 3 + 1]!);
  let sum = 0;
  for (let i = 0; i < LANDMARK_COUNT; i++) {
    sum += Math.hypot(face.landmarks[i * 3]! - t[i * 3]!, face.landmarks[i * 3 + 1]! - t[i * 3 + 1]!);
  }
  return (100 * sum) / LANDMARK_COUNT / eyes;
}

/** One grouping's chain of detections through a clip, as the pool does it on one thread. */
class Chain {
  private previous: FrameDetection | undefined;
  private index = 0;
  readonly errors: number[] = [];
  fresh = 0;
  lost = 0;

  constructor(
    readonly name: string,
    private readonly grouping: FrameGrouping,
  ) {}

  async detect(frame: RgbImage, truth: Face | undefined): Promise<void> {
    const first = this.index++ % this.grouping.size === 0 || !this.previous;
    const detection = await timed(this.name, () =>
      first
        ? analyzer.detectFrame(frame)
        : analyzer.detectNextFrame(frame, this.previous!, followsPrevious, this.grouping.track),
    );
    this.previous = detection;
    if (!detection.reused) this.fresh++;
    const [face] = detection.faces;
    if (truth && face) this.errors.push(landmarkError(face, truth));
    else if (truth) this.lost++;
  }
}

const rows: object[] = [];
for (const clip of ['driving-talking.mp4', 'driving-head-turns.mp4']) {
  const chains = [new Chain('video', VIDEO_GROUPING), new Chain('live', LIVE_GROUPING)];
  let animator: MeshAnimator | undefined;
  let index = 0;
  for await (const decoded of decodeVideo(shared('fixtures', clip), { width: 640, height: 480 })) {
    if (index >= frameCount) break;
    const jpeg = await sharp(decoded.data, { raw: { width: 640, height: 480, channels: 3 } })
      .jpeg({ quality: 92 })
      .toBuffer();
    const raw = await timed('jpeg decode', () => sharp(jpeg).removeAlpha().raw().toBuffer());
    const frame: RgbImage = { width: 640, height: 480, data: new Uint8Array(raw.buffer, raw.byteOffset, raw.length) };
    const [truth] = (await timed('full', () => analyzer.detectFrame(frame))).faces;
    for (const chain of chains) await chain.detect(frame, truth);
    if (truth) {
      animator ??= new MeshAnimator({ image: photo, face: photoFace }, truth);
      const image = await timed('mesh warp', () => animator!.render({ face: truth, frame, time: index / 30 }));
      await timed('marks', () => marks.apply(image, index / 30));
      await timed('jpeg encode', () => displayJpeg(image));
    }
    index++;
  }
  for (const chain of chains) {
    rows.push({
      clip,
      grouping: chain.name,
      frames: index,
      freshDetections: chain.fresh,
      lost: chain.lost,
      errorMeanPct: round(mean(chain.errors)),
      errorP95Pct: round(percentile(chain.errors, 0.95)),
    });
  }
}
for (const [part, values] of times) {
  console.log(
    JSON.stringify({ part, msMean: round(mean(values)), msP50: round(percentile(values, 0.5)), n: values.length }),
  );
}
for (const row of rows) console.log(JSON.stringify(row));
console.log(JSON.stringify({ load: round(loadavg()[0]!) }));
