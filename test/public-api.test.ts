/**
 * The package as a user meets it: imported by its name through package.json's `exports` map (npm
 * test resolves it to src/index.ts with the `reenact-source` condition; without that condition it
 * is the built dist/index.js), and a whole animate run with nothing but public names.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { animate, probeVideo, ReenactError, type AnimateOptions, type AnimateStage, type ProgressEvent } from 'reenact';
import { makeClip, scratchFolder } from './animate-measure.js';
import { shared, skipWithoutShared } from './shared.js';

describe('the public API', () => {
  test('resolves by the package name, and internals are not reachable past the exports map', async (t) => {
    t.diagnostic(`reenact resolves to ${import.meta.resolve('reenact')}`);
    assert.match(import.meta.resolve('reenact'), /\/(src\/index\.ts|dist\/index\.js)$/);
    await assert.rejects(
      import('reenact/src/fomm/model.js' as string),
      (error: unknown) => (error as { code?: string }).code === 'ERR_PACKAGE_PATH_NOT_EXPORTED',
    );
  });

  test('a bad option is a ReenactError naming the option as the library spells it', async () => {
    await assert.rejects(
      animate({ source: 'photo.jpg', driving: 'clip.mp4', output: 'out.mp4', startFrame: -2 }),
      (error: unknown) =>
        error instanceof ReenactError &&
        error.code === 'BAD_ARGUMENT' &&
        /`startFrame` must be/.test(error.message) &&
        !/--/.test(error.message),
    );
  });
});

describe('the public API: a whole animate run', { skip: skipWithoutShared }, () => {
  test('animate writes the labelled video and reports its stages through onProgress', async (t) => {
    const folder = await scratchFolder();
    t.after(() => rm(folder, { recursive: true, force: true }));
    const clipArgs = ['-t', '1', '-c:v', 'libx264', '-crf', '16', '-c:a', 'aac'];
    const clip = await makeClip(['-i', shared('fixtures', 'driving-talking.mp4')], clipArgs, join(folder, 'clip.mp4'));
    const events: ProgressEvent<AnimateStage>[] = [];
    const options: AnimateOptions = {
      source: shared('fixtures', 'portrait-outdoor.jpg'),
      driving: clip,
      output: join(folder, 'out.mp4'),
      onProgress: (event) => events.push(event),
    };
    const result = await animate(options);
    assert.ok(existsSync(result.output));
    const info = await probeVideo(result.output);
    assert.equal(info.width, result.width);
    assert.equal(info.height, result.height);
    assert.equal(info.frameCount, result.frames);
    assert.equal(result.frames, 30);
    assert.equal(result.model, 'mesh');
    assert.ok(result.labelled);
    const stages = [...new Set(events.map((event) => event.stage))];
    assert.deepEqual(stages, ['prepare', 'animate']);
    const last = events.at(-1);
    assert.deepEqual(last && { done: last.done, total: last.total }, { done: 30, total: 30 });
  });
});
