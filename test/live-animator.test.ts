import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { chooseFace } from '../src/align/source.js';
import { cropToEven } from '../src/compose/even.js';
import { readImage } from '../src/media/image.js';
import { decodeVideo } from '../src/media/decode.js';
import { probeVideo } from '../src/media/probe.js';
import { faceAnalyzer } from '../src/pipeline/animate.js';
import { LiveAnimator, type LiveFrame } from '../src/pipeline/live.js';
import type { VideoFrame } from '../src/types.js';
import { shared, skipWithoutShared } from './shared.js';

/** The streaming animator on real frames of driving-talking.mp4, offered as a camera would. */
describe('LiveAnimator', { skip: skipWithoutShared }, () => {
  let live: LiveAnimator;
  const frames: VideoFrame[] = [];

  before(async () => {
    const analyzer = await faceAnalyzer();
    const photo = cropToEven(await readImage(shared('fixtures', 'portrait-outdoor.jpg')));
    live = await LiveAnimator.create({ image: photo, face: chooseFace(await analyzer.detect(photo)) }, analyzer);
    const path = shared('fixtures', 'driving-talking.mp4');
    for await (const frame of decodeVideo(path, { info: await probeVideo(path) })) {
      frames.push(frame);
      if (frames.length === 12) break;
    }
  });

  after(() => live?.close());

  const differs = (a: LiveFrame, b: { data: Uint8Array }) => a.image.data.some((value, i) => value !== b.data[i]);

  test("the photo as it is while the reference is taken from the first frames, then animated at the photo's size", async () => {
    const results: LiveFrame[] = [];
    for (const frame of frames.slice(0, 8)) results.push((await live.offer(frame, frame.time))!);
    // The fifth face completes the reference, and its frame is the first animated.
    assert.deepEqual(
      results.map((r) => r.calibrating),
      [true, true, true, true, false, false, false, false],
    );
    assert.ok(results.every((r) => r.face));
    assert.ok(!differs(results[0]!, { data: results[1]!.image.data }), 'calibrating frames are the photo');
    assert.ok(differs(results[7]!, results[0]!.image), 'animated frames move the photo');
    assert.deepEqual([results[7]!.image.width, results[7]!.image.height], [586, 586]);
  });

  test('frames offered during a detection: only the newest waits, the others are dropped', async () => {
    const before = { ...live.stats };
    const [a, b, c] = frames.slice(8, 11);
    const answers = await Promise.all([live.offer(a!, a!.time), live.offer(b!, b!.time), live.offer(c!, c!.time)]);
    assert.ok(answers[0], 'the first frame is rendered');
    assert.equal(answers[1], undefined, 'the frame replaced by a newer one is dropped');
    assert.ok(answers[2], 'the newest frame is rendered after the first');
    assert.equal(live.stats.dropped - before.dropped, 1);
    assert.equal(live.stats.rendered - before.rendered, 2);
  });

  test('retakeReference: the next frames are the reference again', async () => {
    live.retakeReference();
    const frame = frames[11]!;
    const result = await live.offer(frame, frame.time);
    assert.equal(result?.calibrating, true);
  });
});
