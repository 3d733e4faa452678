import assert from 'node:assert/strict';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, test } from 'node:test';
import { decodeVideo } from '../src/media/decode.js';
import { spawnTool, waitForExit } from '../src/media/ffmpeg.js';
import { probeVideo } from '../src/media/probe.js';
import { measureFrameRate, openVideo, repairRecording } from '../src/media/repair.js';

/**
 * Records a 3 s, 30 fps WebM (VP8 + Opus) the way a browser's MediaRecorder does: streamed out
 * through a pipe, so the muxer can never go back to write the duration or an index, and with
 * frame times that wobble by a few milliseconds.
 */
async function recordLikeABrowser(path: string): Promise<void> {
  const child = spawnTool('ffmpeg', [
    '-hide_banner',
    '-nostdin',
    '-v',
    'error',
    '-f',
    'lavfi',
    '-i',
    'testsrc=size=160x120:rate=30',
    '-f',
    'lavfi',
    '-i',
    'sine=frequency=440',
    '-t',
    '3',
    '-vf',
    "setpts='(N/30+0.008*sin(N*1.7))/TB'",
    '-vsync',
    'passthrough',
    '-c:v',
    'libvpx',
    '-b:v',
    '1M',
    '-c:a',
    'libopus',
    '-f',
    'webm',
    '-live',
    '1',
    'pipe:1',
  ]);
  await pipeline(child.stdout!, createWriteStream(path));
  const { code } = await waitForExit(child);
  assert.equal(code, 0);
}

async function countFrames(path: string): Promise<number> {
  let count = 0;
  for await (const _frame of decodeVideo(path, { width: 32, height: 24 })) count++;
  return count;
}

describe('repairing recordings without a duration', () => {
  let folder: string;
  let recording: string;

  before(async () => {
    folder = await mkdtemp(join(tmpdir(), 'reenact-repair-'));
    recording = join(folder, 'recording.webm');
    await recordLikeABrowser(recording);
  });
  after(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  test('probe reports that the recording needs repair', async () => {
    const info = await probeVideo(recording);
    assert.equal(info.needsRepair, true);
    assert.equal(info.duration, 0);
    assert.match(info.repairReason ?? '', /duration/);
    assert.equal(info.videoCodec, 'vp8');
    assert.equal(info.hasAudio, true);
  });

  test('the frame rate is measured from the frame times', async () => {
    assert.equal(await measureFrameRate(recording), 30);
  });

  test('repairRecording writes a constant-rate MP4 with the right duration, frames and audio', async () => {
    const output = join(folder, 'repaired.mp4');
    const info = await repairRecording(recording, output);
    assert.equal(info.needsRepair, false);
    assert.equal(info.fps, 30);
    assert.equal(info.frameCount, 90);
    assert.ok(Math.abs(info.duration - 3) < 0.1, `duration ${info.duration}`);
    assert.equal(info.videoCodec, 'h264');
    assert.equal(info.audioCodec, 'aac');
    assert.equal(await countFrames(output), 90);
    assert.deepEqual((await probeVideo(output)).needsRepair, false);
  });

  test('openVideo repairs into a temporary copy and cleanup removes it', async () => {
    const opened = await openVideo(recording);
    assert.equal(opened.repaired, true);
    assert.notEqual(opened.path, recording);
    assert.equal(opened.info.frameCount, 90);
    assert.ok(existsSync(opened.path));
    await opened.cleanup();
    assert.equal(existsSync(opened.path), false);

    const plain = await openVideo(join(folder, 'repaired.mp4'));
    assert.equal(plain.repaired, false);
    assert.equal(plain.path, join(folder, 'repaired.mp4'));
    await plain.cleanup();
    assert.ok(existsSync(plain.path), 'cleanup of an unrepaired video leaves the original alone');
  });

  test('decodeVideo decodes through a repaired copy, also when the frame rate is unknown', async () => {
    assert.equal(await countFrames(recording), 90);
    // What probe reports for a MediaRecorder file whose stated rate is its 1 ms time base.
    const info = { ...(await probeVideo(recording)), fps: 0 };
    const before = (await readdir(tmpdir())).filter((name) => name.includes('reenact-repaired')).length;
    let count = 0;
    for await (const frame of decodeVideo(recording, { info })) {
      assert.equal(frame.index, count);
      assert.ok(Math.abs(frame.time - count / 30) < 1e-9);
      count++;
    }
    assert.equal(count, 90);
    const after = (await readdir(tmpdir())).filter((name) => name.includes('reenact-repaired')).length;
    assert.equal(after, before, 'the temporary copy is removed');
  });

  test('the output must be an MP4 path; nothing is written otherwise', async () => {
    await assert.rejects(repairRecording(recording, join(folder, 'fixed.webm')), { code: 'BAD_ARGUMENT' });
    assert.deepEqual(
      (await readdir(folder)).filter((name) => name.includes('fixed')),
      [],
    );
  });
});
