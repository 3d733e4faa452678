import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ReenactError, type ErrorCode } from '../src/errors.js';
import { decodeVideo } from '../src/media/decode.js';
import { VideoEncoder } from '../src/media/encode.js';
import { runFfmpeg } from '../src/media/ffmpeg.js';
import { probeVideo } from '../src/media/probe.js';
import { repairRecording } from '../src/media/repair.js';
import { shared, skipWithoutShared } from './shared.js';

const driving = shared('fixtures', 'driving-talking.mp4');

function isReenactError(code: ErrorCode) {
  return (error: unknown) => {
    assert.ok(error instanceof ReenactError, `expected a ReenactError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    assert.ok(error.message.length > 10 && error.hint && error.hint.length > 10, 'message and hint are filled in');
    return true;
  };
}

async function decodeAll(path: string): Promise<number> {
  let count = 0;
  for await (const _frame of decodeVideo(path)) count++;
  return count;
}

describe('bad video inputs', { skip: skipWithoutShared }, () => {
  let folder: string;
  const inputs: Record<string, string> = {};

  before(async () => {
    folder = await mkdtemp(join(tmpdir(), 'reenact-bad-input-'));
    inputs.missing = join(folder, 'no-such-video.mp4');
    inputs.text = join(folder, 'notes.mp4');
    await writeFile(inputs.text, 'These are meeting notes, not a video.\n'.repeat(20));
    inputs.image = shared('fixtures', 'portrait-studio.png');
    inputs.truncated = join(folder, 'truncated.mp4');
    const whole = await readFile(driving);
    await writeFile(inputs.truncated, whole.subarray(0, Math.floor(whole.length * 0.3)));
    inputs.audioOnly = join(folder, 'audio-only.mp4');
    await runFfmpeg(
      ['-f', 'lavfi', '-i', 'sine=frequency=440:duration=1', '-c:a', 'aac', inputs.audioOnly],
      'making an audio-only file',
    );
    inputs.noFrames = join(folder, 'no-frames.mp4');
    await runFfmpeg(
      [
        '-f',
        'lavfi',
        '-i',
        'testsrc=size=64x64:rate=25',
        '-t',
        '1',
        '-frames:v',
        '0',
        '-c:v',
        'libx264',
        inputs.noFrames,
      ],
      'making a video with no frames',
    );
  });
  after(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  const expectations: [name: string, code: ErrorCode][] = [
    ['missing', 'FILE_NOT_FOUND'],
    ['text', 'NOT_MEDIA'],
    ['image', 'NOT_MEDIA'],
    ['truncated', 'CORRUPT_MEDIA'],
    ['audioOnly', 'NO_FRAMES'],
    ['noFrames', 'NO_FRAMES'],
  ];

  const unreadable = ['missing', 'text', 'image', 'truncated'];

  for (const [name, code] of expectations) {
    test(`${name}: probe, decode and repair fail with ${code} and write nothing`, async () => {
      const path = inputs[name]!;
      await assert.rejects(probeVideo(path), isReenactError(code));
      await assert.rejects(decodeAll(path), isReenactError(code));
      const output = join(folder, `repaired-${name}.mp4`);
      await assert.rejects(repairRecording(path, output), isReenactError(code));
      if (unreadable.includes(name)) {
        // As an audio source an unreadable file is refused before a file is made (one without audio just gives silence).
        const encoded = join(folder, `encoded-${name}.mp4`);
        const created = VideoEncoder.create(encoded, { width: 64, height: 64, fps: 25, audioFrom: { path } });
        await assert.rejects(
          created.then((encoder) => encoder.abort()),
          isReenactError(code),
        );
      }
      const left = (await readdir(folder)).filter((file) => file.includes(`-${name}.`) || file.includes('partial'));
      assert.deepEqual(left, []);
    });
  }

  test('a file damaged part way yields the frames before the damage, then CORRUPT_MEDIA', async () => {
    // The header is intact (it lists all 240 frames), so give decode the whole file's info and let it find the damage.
    const info = { ...(await probeVideo(driving)), path: inputs.truncated! };
    let count = 0;
    await assert.rejects(
      (async () => {
        for await (const frame of decodeVideo(inputs.truncated!, { info })) {
          assert.equal(frame.index, count);
          count++;
        }
      })(),
      isReenactError('CORRUPT_MEDIA'),
    );
    assert.ok(count > 10 && count < 240, `decoded ${count} frames before the damage`);
  });
});
