/**
 * The landmark pool's grouped detection (a full detection, then the next frames on its face
 * regions) on the driving fixture: reproducible whatever the threads and their timing, and close
 * to a full detection of every frame.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { FaceAnalyzer, type Face } from '../src/face/detector.js';
import { rollDegrees } from '../src/face/landmarks.js';
import { decodeVideo, type DecodeOptions } from '../src/media/decode.js';
import { probeVideo } from '../src/media/probe.js';
import { LandmarkPool, LIVE_GROUPING, type FrameGrouping } from '../src/pipeline/landmark-pool.js';
import { MAX_DRIVING_SIDE } from '../src/pipeline/mesh-motion.js';
import { mapAhead } from '../src/pipeline/motion.js';
import { mouthOpening } from './animate-measure.js';
import { shared, skipWithoutShared } from './shared.js';

const driving = shared('fixtures', 'driving-talking.mp4');

describe('landmark pool: grouped detection', { skip: skipWithoutShared }, () => {
  let analyzer: FaceAnalyzer;
  /** Frames decoded as the mesh mode decodes them (at most MAX_DRIVING_SIDE on the long side). */
  let decode: DecodeOptions;
  before(async () => {
    analyzer = await FaceAnalyzer.create();
    const info = await probeVideo(driving);
    const scale = Math.min(1, MAX_DRIVING_SIDE / Math.max(info.width, info.height));
    decode = { info, width: Math.round(info.width * scale), height: Math.round(info.height * scale) };
  });
  after(() => undefined);

  /** The calling thread alone: shared by both tests. */
  let aloneRun: ReturnType<typeof throughPool> | undefined;
  const alone = () => (aloneRun ??= throughPool(0));

  /** Landmarks of every frame through a pool, as mesh-motion drives it; `lookahead` varies the scheduling. */
  async function throughPool(workers: number, lookahead?: number, grouping?: FrameGrouping) {
    const pool = await LandmarkPool.create(analyzer, workers, grouping);
    try {
      const faces: (Face | null)[] = [];
      for await (const [, face] of mapAhead(
        decodeVideo(driving, decode),
        (frame) => pool.detect(frame),
        lookahead ?? pool.parallelism,
      ))
        faces.push(face);
      return { faces, landmarks: faces.map((face) => face?.landmarks ?? null), stats: { ...pool.stats } };
    } finally {
      await pool.close();
    }
  }

  function assertSame(a: (Float32Array | null)[], b: (Float32Array | null)[], what: string) {
    assert.equal(a.length, b.length, `${what}: frame count`);
    for (let i = 0; i < a.length; i++) {
      const x = a[i];
      const y = b[i];
      assert.ok(x !== undefined && y !== undefined, `${what}: frame ${i} missing`);
      const same =
        x === null || y === null
          ? x === y
          : Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(y.buffer, y.byteOffset, y.byteLength));
      assert.ok(same, `${what}: frame ${i} differs`);
    }
  }

  test('landmarks are bit-identical on the calling thread alone, with a worker, and from run to run', async () => {
    const { landmarks: aloneLandmarks, stats: aloneStats } = await alone();
    const withWorker = await throughPool(1);
    const again = await throughPool(1);
    const lookingFurther = await throughPool(1, 7);
    const { frames, reused } = withWorker.stats;
    console.log(
      `pool: ${frames} frames, ${reused} on the previous frame's regions (${aloneStats.reused} alone, ${again.stats.reused} again, ${lookingFurther.stats.reused} with look-ahead 7)`,
    );
    assert.ok(frames >= 200, `frames: ${frames}`);
    // The scheme is at work: most frames after a group's first skip BlazeFace.
    assert.ok(reused > frames / 3, `reused ${reused} of ${frames}`);
    assert.ok(withWorker.landmarks.filter(Boolean).length > frames * 0.9, 'a face in most frames');
    assertSame(aloneLandmarks, withWorker.landmarks, 'main thread only vs with a worker');
    assertSame(withWorker.landmarks, again.landmarks, 'two runs with a worker');
    assertSame(withWorker.landmarks, lookingFurther.landmarks, 'default look-ahead vs 7');
    assert.equal(aloneStats.reused, reused);
  });

  /** A full detection of every frame: shared by the comparisons. */
  let fullRun: Promise<(Face | null)[]> | undefined;
  const fullDetections = () =>
    (fullRun ??= (async () => {
      const faces: (Face | null)[] = [];
      for await (const frame of decodeVideo(driving, decode))
        faces.push((await analyzer.detectFrame(frame)).faces[0] ?? null);
      return faces;
    })());

  test("frames on the previous frame's regions are close to a full detection in roll and mouth opening", async () => {
    const { faces, stats } = await alone();
    await assertCloseToFull(faces, stats.reused, 1 / 3);
  });

  test("live tracking (each frame on the box around the previous frame's mesh) is as close to a full detection", async () => {
    // The live animator's single detection thread: the pool on a worker.
    const { faces, stats } = await throughPool(1, 1, LIVE_GROUPING);
    // BlazeFace on one frame in LIVE_GROUPING.size, and where the tracked face is lost.
    await assertCloseToFull(faces, stats.reused, 0.8);
  });

  /** `grouped`: the pool's faces of every frame, `reused` of them found without BlazeFace, at least `share` of the frames. */
  async function assertCloseToFull(grouped: (Face | null)[], reused: number, share: number) {
    const full = await fullDetections();
    const roll: number[] = [];
    const mouth: number[] = [];
    for (let i = 0; i < full.length; i++) {
      const a = full[i];
      const b = grouped[i];
      assert.equal(!!a, !!b, `frame ${i}: a face in one and not the other`);
      if (!a || !b || a.landmarks.every((v, k) => v === b.landmarks[k])) continue;
      roll.push(Math.abs(rollDegrees(a) - rollDegrees(b)));
      mouth.push(Math.abs(mouthOpening(a) - mouthOpening(b)));
    }
    const mean = (values: number[]) => values.reduce((s, v) => s + v, 0) / values.length;
    /** Mean distance of each value from the midpoint of its neighbours: frame-to-frame noise. */
    const jitter = (faces: (Face | null)[], measure: (face: Face) => number) => {
      const values: number[] = [];
      for (let i = 1; i + 1 < faces.length; i++) {
        const [a, b, c] = [faces[i - 1], faces[i], faces[i + 1]];
        if (a && b && c) values.push(Math.abs(measure(b) - (measure(a) + measure(c)) / 2));
      }
      return mean(values);
    };
    const fixed = (value: number) => value.toFixed(4);
    const rollJitter = { full: jitter(full, rollDegrees), grouped: jitter(grouped, rollDegrees) };
    const mouthJitter = { full: jitter(full, mouthOpening), grouped: jitter(grouped, mouthOpening) };
    console.log(
      `frames: ${full.length}, ${reused} on the previous frame's regions, ${roll.length} differ from a full detection; |roll - full| mean ${fixed(mean(roll))} max ${fixed(Math.max(...roll))} deg; ` +
        `|mouth - full| mean ${fixed(mean(mouth))} max ${fixed(Math.max(...mouth))} eye distances; ` +
        `jitter full vs grouped: roll ${fixed(rollJitter.full)} vs ${fixed(rollJitter.grouped)} deg, mouth ${fixed(mouthJitter.full)} vs ${fixed(mouthJitter.grouped)}`,
    );
    assert.ok(reused > full.length * share && roll.length >= reused, `reused ${reused} of ${full.length}`);
    // A full detection is itself noisy from frame to frame (its BlazeFace box moves, and the mesh
    // with it: ~0.7 degrees of roll on this clip, several degrees on single frames of fast
    // turns), so the single-frame differences are of that order. What the warp copies must not get
    // noisier: the grouped sequence may not jitter more than full detection does (10% margin).
    assert.ok(mean(roll) < 1 && Math.max(...roll) < 8, 'roll');
    assert.ok(mean(mouth) < 0.04 && Math.max(...mouth) < 0.25, 'mouth opening');
    assert.ok(rollJitter.grouped < rollJitter.full * 1.1, 'roll jitter');
    assert.ok(mouthJitter.grouped < mouthJitter.full * 1.1, 'mouth jitter');
  }
});
