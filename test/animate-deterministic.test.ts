/**
 * The mesh mode's output is the same video however its landmark detections are spread over
 * threads: the landmark pool's groups (a frame cropped by the regions of the frame before) read
 * nothing but their own frames, so the calling thread alone and the default worker threads give
 * bit-identical frames, run after run.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { decodeVideo } from '../src/media/decode.js';
import { animate } from '../src/pipeline/animate.js';
import { scratchFolder } from './animate-measure.js';
import { shared, skipWithoutShared } from './shared.js';

/** A hash of each decoded frame of a video. */
async function frameHashes(path: string): Promise<string[]> {
  const hashes: string[] = [];
  for await (const frame of decodeVideo(path)) hashes.push(createHash('sha256').update(frame.data).digest('hex'));
  return hashes;
}

describe('animate (mesh) is reproducible', { skip: skipWithoutShared }, () => {
  let folder: string;
  before(async () => {
    folder = await scratchFolder();
  });
  after(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  test('the same frames with worker threads (default) and on the calling thread alone (--threads 1)', async () => {
    const runs: string[][] = [];
    for (const [name, threads] of [
      ['default', undefined],
      ['one-thread', 1],
    ] as const) {
      const output = join(folder, `${name}.mp4`);
      // One content id for both runs: the watermark is then the same too.
      await animate({
        source: shared('fixtures', 'portrait-outdoor.jpg'),
        driving: shared('fixtures', 'driving-talking.mp4'),
        output,
        contentId: '0a1b2c3d',
        ...(threads ? { threads } : {}),
      });
      runs.push(await frameHashes(output));
    }
    const [withWorkers, alone] = runs as [string[], string[]];
    assert.equal(withWorkers.length, 240);
    assert.equal(alone.length, withWorkers.length);
    const differing = withWorkers.flatMap((hash, i) => (hash === alone[i] ? [] : [i]));
    assert.deepEqual(differing, [], `frames that differ: ${differing.join(', ')}`);
  });
});
