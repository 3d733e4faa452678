import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ReenactError } from '../src/errors.js';
import { FaceAnalyzer } from '../src/face/detector.js';
import { animate } from '../src/pipeline/animate.js';
import { framesAt, makeClip, measureVideo, probeTags, psnr, scratchFolder } from './animate-measure.js';
import { shared, skipWithoutShared } from './shared.js';

function rejectsWith(code: string) {
  return (error: unknown) => {
    assert.ok(error instanceof ReenactError, `expected a ReenactError, got ${String(error)}`);
    assert.equal(error.code, code, error.describe());
    assert.ok(error.hint, 'says what to do');
    return true;
  };
}

describe('animate: bad and awkward inputs', { skip: skipWithoutShared }, () => {
  let folder: string;
  let short: string;
  const photo = shared('fixtures', 'portrait-outdoor.jpg');
  before(async () => {
    folder = await scratchFolder();
    short = await makeClip(
      ['-i', shared('fixtures', 'driving-talking.mp4')],
      ['-t', '1', '-c:v', 'libx264', '-crf', '16', '-c:a', 'aac'],
      join(folder, 'short.mp4'),
    );
  });
  after(async () => {
    if (folder) await rm(folder, { recursive: true, force: true });
  });

  /** Nothing but the inputs the tests made: no output, no partial file. */
  async function assertNothingWritten(): Promise<void> {
    const left = (await readdir(folder)).filter((name) => name.includes('out'));
    assert.deepEqual(left, [], 'no output or partial file left');
  }

  test('a photo without a face: NO_FACE with advice, no output', async () => {
    const output = join(folder, 'out-noface.mp4');
    await assert.rejects(
      animate({ source: shared('fixtures', 'cartoon-no-face.jpg'), driving: short, output }),
      (error: unknown) => {
        rejectsWith('NO_FACE')(error);
        assert.match((error as ReenactError).hint!, /face/);
        return true;
      },
    );
    await assertNothingWritten();
  });

  test('a driving clip without any face: NO_TRACK, no output', async () => {
    const noFace = await makeClip(
      ['-f', 'lavfi', '-i', 'testsrc=duration=1:size=256x256:rate=30'],
      ['-c:v', 'libx264', '-pix_fmt', 'yuv420p'],
      join(folder, 'testsrc.mp4'),
    );
    await assert.rejects(
      animate({ source: photo, driving: noFace, output: join(folder, 'out-notrack.mp4') }),
      rejectsWith('NO_TRACK'),
    );
    await assertNothingWritten();
  });

  test('an unwritable output path fails before any work, even before the inputs are read', async () => {
    const output = join(folder, 'no-such-folder', 'out.mp4');
    await assert.rejects(animate({ source: photo, driving: short, output }), rejectsWith('OUTPUT_UNWRITABLE'));
    // Checked first: a missing driving video is not even looked at.
    await assert.rejects(
      animate({ source: photo, driving: join(folder, 'missing.mp4'), output }),
      rejectsWith('OUTPUT_UNWRITABLE'),
    );
  });

  test('options that cannot work are refused up front', async () => {
    const output = join(folder, 'out-args.mp4');
    await assert.rejects(animate({ source: photo, driving: short, output, model: 'fomm' }), (error: unknown) => {
      rejectsWith('BAD_ARGUMENT')(error);
      assert.match((error as ReenactError).describe(), /vox-adv-256\.yaml/);
      assert.match((error as ReenactError).describe(), /vox-adv-cpk\.pth\.tar/);
      return true;
    });
    await assert.rejects(animate({ source: photo, driving: short, output: short }), rejectsWith('BAD_ARGUMENT'));
    await assert.rejects(
      animate({ source: photo, driving: short, output: join(folder, 'out.webm') }),
      rejectsWith('BAD_ARGUMENT'),
    );
    await assert.rejects(
      animate({ source: photo, driving: short, output, startFrame: -1 }),
      rejectsWith('BAD_ARGUMENT'),
    );
    await assert.rejects(animate({ source: photo, driving: short, output, face: 3 }), rejectsWith('FACE_INDEX'));
    await assertNothingWritten();
  });

  test('a driving clip without audio gives an output without audio', async () => {
    const silent = await makeClip(['-i', short], ['-an', '-c:v', 'copy'], join(folder, 'silent.mp4'));
    const output = join(folder, 'out-silent.mp4');
    const result = await animate({ source: photo, driving: silent, output });
    assert.equal(result.hasAudio, false);
    assert.equal(result.frames, 30);
    const { streams } = await probeTags(output);
    assert.deepEqual(
      streams.map((s) => s.codec_type),
      ['video'],
    );
    // The content credential is in the MP4 itself: nothing is left beside it.
    assert.equal(result.credential, output);
    await rm(output);
  });

  test('aborting mid-run stops with CANCELLED and leaves no file', async () => {
    const controller = new AbortController();
    const output = join(folder, 'out-aborted.mp4');
    await assert.rejects(
      animate({
        source: photo,
        driving: short,
        output,
        signal: controller.signal,
        onProgress: (event) => {
          if (event.stage === 'animate' && event.done === 10) controller.abort();
        },
      }),
      rejectsWith('CANCELLED'),
    );
    assert.equal(existsSync(output), false);
    await assertNothingWritten();
  });

  test('a driver whose face is lost for frames 60-70 holds the pose, then follows again', async () => {
    const lost = await makeClip(
      ['-i', shared('fixtures', 'driving-talking.mp4')],
      [
        '-t',
        '4',
        '-vf',
        "drawbox=enable='between(n,60,70)':x=0:y=0:w=iw:h=ih:color=black:t=fill",
        '-c:v',
        'libx264',
        '-crf',
        '16',
        '-c:a',
        'aac',
      ],
      join(folder, 'lost.mp4'),
    );
    const output = join(folder, 'out-lost.mp4');
    const result = await animate({ source: photo, driving: lost, output });
    assert.equal(result.frames, 120);
    assert.equal(result.framesWithoutFace, 11);
    const frames = await framesAt(output, [59, 62, 66, 70, 95]);
    // Held: the frames without a face repeat the last pose (up to the encoder's noise).
    for (const index of [62, 66, 70])
      assert.ok(psnr(frames.get(index)!, frames.get(59)!) > 38, `frame ${index} holds frame 59's pose`);
    assert.ok(psnr(frames.get(95)!, frames.get(59)!) < 35, 'moving again after the face returns');
    // Recovered: from frame 72 on, the head follows the driver's turns again (it rolls by
    // some 35 degrees there), each sampled frame within a few degrees.
    const analyzer = await FaceAnalyzer.create();
    const out = await measureVideo(output, analyzer, 2);
    const driver = await measureVideo(lost, analyzer, 2);
    const after = (list: typeof out) => list.filter((m) => m.index >= 72);
    const before = (list: typeof out) => list.filter((m) => m.index < 60);
    assert.equal(after(out).length, after(driver).length);
    assert.equal(before(out).length, before(driver).length);
    const driverRolls = after(driver).map((m) => m.roll);
    assert.ok(Math.max(...driverRolls) - Math.min(...driverRolls) > 20, 'the driver turns its head after the gap');
    // The output's roll minus the driver's, after the gap, against the same difference before
    // it (its mean over the 30 frames measured there; one frame's reading moves with the
    // watermark's random pattern by up to a degree, and every turn measured from it with it).
    const offsets = before(out).map((m, i) => m.roll - before(driver)[i]!.roll);
    const offset = offsets.reduce((sum, value) => sum + value, 0) / offsets.length;
    const errors = after(out).map((m, i) => Math.abs(m.roll - driverRolls[i]! - offset));
    const meanError = errors.reduce((sum, error) => sum + error, 0) / errors.length;
    assert.ok(meanError < 3, `roll after the gap follows the driver within ${meanError.toFixed(2)} degrees on average`);
    await rm(output);
  });
});
