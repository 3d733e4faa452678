import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runFfmpeg } from '../src/media/ffmpeg.js';
import { probeVideo } from '../src/media/probe.js';
import { assertRefused, reenact } from './cli-run.js';
import { shared, skipWithoutShared } from './shared.js';

const driving = shared('fixtures', 'driving-talking.mp4');

describe('reenact crop-video and inspect on videos', { skip: skipWithoutShared }, () => {
  let folder: string;

  before(async () => {
    folder = await mkdtemp(join(tmpdir(), 'reenact-cli-crop-'));
  });
  after(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  test('the talking-head clip gives a 256x256 crop with all 240 frames, its audio, and the tracks as JSON', async () => {
    const output = join(folder, 'crop.mp4');
    const tracksPath = join(folder, 'tracks.json');
    const result = await reenact('crop-video', driving, '-o', output, '--json', tracksPath, '--stride', '2');
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /256x256, 240 frames \(0\.00-8\.00 s\), with audio/);
    const info = await probeVideo(output);
    assert.deepEqual([info.width, info.height, info.frameCount, info.fps, info.hasAudio], [256, 256, 240, 30, true]);
    assert.ok(Math.abs(info.duration - 8) < 0.05, `duration ${info.duration}`);
    const document = JSON.parse(await readFile(tracksPath, 'utf8')) as { tracks: { start: number; end: number }[] };
    assert.deepEqual(
      document.tracks.map((t) => [t.start, t.end]),
      [[0, 240]],
    );
  });

  test('inspect on a video reports its properties and tracks', async () => {
    const result = await reenact('inspect', driving, '--json', '--stride', '4');
    assert.equal(result.code, 0, result.stderr);
    const report = JSON.parse(result.stdout) as {
      kind: string;
      video: { frameCount: number; hasAudio: boolean };
      firstFrame: { faces: unknown[] };
      tracks: { frames: number }[];
    };
    assert.equal(report.kind, 'video');
    assert.equal(report.video.frameCount, 240);
    assert.ok(report.video.hasAudio);
    assert.equal(report.firstFrame.faces.length, 1);
    assert.deepEqual(
      report.tracks.map((t) => t.frames),
      [240],
    );
  });

  test('bad videos are refused with a clear message and no output', async () => {
    const output = join(folder, 'bad.mp4');
    const truncated = join(folder, 'truncated.mp4');
    const whole = await readFile(driving);
    await writeFile(truncated, whole.subarray(0, Math.floor(whole.length * 0.3)));
    const text = join(folder, 'notes.mp4');
    await writeFile(text, 'These are meeting notes, not a video.\n'.repeat(20));
    const noFrames = join(folder, 'no-frames.mp4');
    await runFfmpeg(
      ['-f', 'lavfi', '-i', 'testsrc=size=64x64:rate=25', '-t', '1', '-frames:v', '0', '-c:v', 'libx264', noFrames],
      'making a video with no frames',
    );

    await assertRefused(
      await reenact('crop-video', join(folder, 'missing.mp4'), '-o', output),
      /missing\.mp4 does not exist/,
      output,
    );
    await assertRefused(
      await reenact('crop-video', truncated, '-o', output),
      /truncated\.mp4 is truncated or damaged/,
      output,
    );
    await assertRefused(await reenact('crop-video', text, '-o', output), /notes\.mp4 is not a video/, output);
    await assertRefused(
      await reenact('crop-video', noFrames, '-o', output),
      /no-frames\.mp4 has (no video stream|a video stream with no frames)/,
      output,
    );
    await assertRefused(await reenact('inspect', truncated), /truncated or damaged/, output);
  });

  test('a video without a face: NO_TRACK and no output', async () => {
    const faceless = join(folder, 'faceless.mp4');
    await runFfmpeg(
      [
        '-f',
        'lavfi',
        '-i',
        'testsrc=size=320x240:rate=25',
        '-t',
        '2',
        '-c:v',
        'libx264',
        '-preset',
        'ultrafast',
        faceless,
      ],
      'making a video without a face',
    );
    const output = join(folder, 'faceless-crop.mp4');
    const tracksPath = join(folder, 'faceless.json');
    const result = await reenact('crop-video', faceless, '-o', output, '--json', tracksPath);
    await assertRefused(result, /no face stays in view for 50 frames[\s\S]*--min-frames/, output);
    await assertRefused(result, /./, tracksPath);
  });

  test('an output folder that does not exist is refused before the detection pass', async () => {
    const output = join(folder, 'no-such-folder', 'crop.mp4');
    await assertRefused(await reenact('crop-video', driving, '-o', output), /Cannot write .*crop\.mp4/, output);
  });
});
