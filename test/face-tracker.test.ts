import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { FaceAnalyzer, type Face } from '../src/face/detector.js';
import { LandmarkTracker } from '../src/face/tracker.js';
import { decodeVideo } from '../src/media/decode.js';
import type { RgbImage, VideoFrame } from '../src/types.js';
import { shared, skipWithoutShared } from './shared.js';

/** Mean distance in px between the 468 mesh points of two faces. */
function meanDistance(a: Face, b: Face): number {
  let sum = 0;
  for (let i = 0; i < 468; i++) sum += Math.hypot(a.landmarks[3 * i]! - b.landmarks[3 * i]!, a.landmarks[3 * i + 1]! - b.landmarks[3 * i + 1]!);
  return sum / 468;
}

describe('landmark tracker', { skip: skipWithoutShared }, () => {
  let analyzer: FaceAnalyzer;
  let frames: VideoFrame[];
  let detected: Face[];

  before(async () => {
    analyzer = await FaceAnalyzer.create();
    frames = [];
    for await (const frame of decodeVideo(shared('fixtures', 'driving-talking.mp4'), { duration: 3 })) frames.push(frame);
    detected = [];
    for (const frame of frames) {
      const [face] = await analyzer.detect(frame);
      assert.ok(face, `frame ${frame.index}: full detection finds the face`);
      detected.push(face);
    }
  });

  test('tracked landmarks agree with full detection within a few pixels', async () => {
    const tracker = new LandmarkTracker(analyzer);
    const distances: number[] = [];
    for (let k = 0; k < frames.length; k++) {
      const face = await tracker.track(frames[k]!);
      assert.ok(face, `frame ${k}: tracked`);
      distances.push(meanDistance(face, detected[k]!));
    }
    const sorted = [...distances].sort((a, b) => a - b);
    const median = sorted[sorted.length >> 1]!;
    // The face is ~180 px across in these 256 px frames.
    assert.ok(median < 4, `median mean distance ${median.toFixed(2)} px`);
    assert.ok(sorted.at(-1)! < 10, `largest mean distance ${sorted.at(-1)!.toFixed(2)} px`);
  });

  test('a frame without a face gives null, and tracking recovers on the next face', async () => {
    const tracker = new LandmarkTracker(analyzer, { redetectEvery: 1000 });
    for (let k = 0; k < 10; k++) assert.ok(await tracker.track(frames[k]!));
    const blank: RgbImage = { width: 256, height: 256, data: new Uint8Array(256 * 256 * 3).fill(128) };
    assert.equal(await tracker.track(blank), null);
    const after = await tracker.track(frames[60]!);
    assert.ok(after, 'the face is found again');
    assert.ok(meanDistance(after, detected[60]!) < 1e-3, 'after losing the face the tracker detects afresh');
  });

  test('reset starts from a fresh detection, and other analyzer calls do not disturb the track', async () => {
    const tracker = new LandmarkTracker(analyzer, { redetectEvery: 1000 });
    await tracker.track(frames[0]!);
    tracker.reset();
    const fresh = await tracker.track(frames[45]!);
    assert.ok(fresh && meanDistance(fresh, detected[45]!) < 1e-3, 'the first frame after reset is a full detection');
    const continued = await tracker.track(frames[46]!);
    assert.ok(continued);
    // A photo analysed in between (another face, another size) must not leak into the track.
    await analyzer.detect({ width: 300, height: 200, data: new Uint8Array(300 * 200 * 3).fill(30) });
    const resumed = await tracker.track(frames[47]!);
    assert.ok(resumed && meanDistance(resumed, detected[47]!) < 1e-3, 'after another call the tracker detects afresh');
  });
});
