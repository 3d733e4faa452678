import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ReenactError } from '../src/errors.js';
import { writeNpy } from '../src/fomm/tools/npy.js';
import { readImage, writeImage } from '../src/media/image.js';
import { repairRecording } from '../src/media/repair.js';
import { animate } from '../src/pipeline/animate.js';
import { makeClip, scratchFolder } from './animate-measure.js';
import { projectRoot, shared, skipWithoutShared } from './shared.js';

const EVENTS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'exit', 'beforeExit'] as const;
const listenerCounts = () => EVENTS.map((event) => `${event}: ${process.listenerCount(event)}`);

function isCancelled(error: unknown): boolean {
  assert.ok(error instanceof ReenactError, `expected a ReenactError, got ${String(error)}`);
  assert.equal(error.code, 'CANCELLED', error.describe());
  return true;
}

/** Everything in `folder` but the inputs: outputs and their temporary files. */
async function written(folder: string, inputs: string[]): Promise<string[]> {
  return (await readdir(folder)).filter((name) => !inputs.includes(name));
}

describe(
  'the library can be hosted: signals belong to the program, the library takes an AbortSignal',
  { skip: skipWithoutShared },
  () => {
    let folder: string;
    let clip: string;
    const photo = shared('fixtures', 'portrait-outdoor.jpg');
    const inputs = ['clip.mp4', 'recording.webm'];
    before(async () => {
      folder = await scratchFolder();
      clip = await makeClip(
        ['-i', shared('fixtures', 'driving-talking.mp4')],
        ['-t', '2', '-c:v', 'libx264', '-crf', '16', '-c:a', 'aac'],
        join(folder, 'clip.mp4'),
      );
    });
    after(async () => {
      if (folder) await rm(folder, { recursive: true, force: true });
    });

    test('running the stages installs no signal or exit listeners', async () => {
      const before = listenerCounts();
      const recording = await makeClip(
        ['-i', clip],
        ['-t', '1', '-c:v', 'libvpx', '-b:v', '1M', '-an', '-f', 'webm'],
        join(folder, 'recording.webm'),
      );
      await repairRecording(recording, join(folder, 'repaired.mp4'));
      await writeImage(join(folder, 'photo.png'), await readImage(photo));
      await writeNpy(join(folder, 'a.npy'), { shape: [2], data: new Float32Array([1, 2]) });
      const controller = new AbortController();
      await animate({ source: photo, driving: clip, output: join(folder, 'out.mp4'), signal: controller.signal });
      assert.deepEqual(listenerCounts(), before);
      for (const name of await written(folder, inputs)) await rm(join(folder, name));
    });

    test('aborting a FOMM animate mid-run rejects with CANCELLED and leaves no output or partial file', async () => {
      const controller = new AbortController();
      let framesWhenAborted = 0;
      await assert.rejects(
        animate({
          source: photo,
          driving: clip,
          output: join(folder, 'out-fomm.mp4'),
          model: 'fomm',
          config: shared('fomm', 'golden-tiny', 'config.yaml'),
          checkpoint: shared('fomm', 'golden-tiny', 'checkpoint.zip.pth.tar'),
          threads: 1,
          signal: controller.signal,
          onProgress: (event) => {
            if (event.stage === 'animate' && event.done === 5) {
              framesWhenAborted = event.done;
              controller.abort();
            }
          },
        }),
        isCancelled,
      );
      assert.equal(framesWhenAborted, 5, 'aborted while frames were being written');
      assert.deepEqual(await written(folder, inputs), []);
    });

    test('an aborted writeImage leaves nothing', async () => {
      const controller = new AbortController();
      const image = await readImage(photo);
      const writing = writeImage(join(folder, 'aborted.png'), image, { signal: controller.signal });
      controller.abort();
      await assert.rejects(writing, isCancelled);
      assert.deepEqual(await written(folder, inputs), []);
    });

    for (const [signal, code] of [
      ['SIGINT', 130],
      ['SIGTERM', 143],
    ] as const) {
      test(`reenact animate: ${signal} mid-run exits ${code} and removes the half-written output`, async () => {
        const output = join(folder, `out-${signal}.mp4`);
        const child = spawn(
          process.execPath,
          [
            '--import',
            'tsx',
            join(projectRoot, 'src', 'cli', 'run.ts'),
            'animate',
            '--source',
            photo,
            '--driving',
            clip,
            '-o',
            output,
          ],
          {
            cwd: projectRoot,
            stdio: ['ignore', 'ignore', 'pipe'],
          },
        );
        let stderr = '';
        child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
        // Interrupted once the encoder's temporary file exists, i.e. with frames half-written.
        let sawPartial = false;
        while (child.exitCode === null) {
          if ((await readdir(folder)).some((name) => name.includes('.partial'))) {
            sawPartial = true;
            child.kill(signal);
            break;
          }
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        const exitCode = await exited;
        assert.ok(sawPartial, `the run ended before it was interrupted: ${stderr}`);
        assert.equal(exitCode, code, stderr);
        assert.match(stderr, /cancelled/);
        assert.equal(existsSync(output), false);
        assert.deepEqual(await written(folder, inputs), []);
      });
    }
  },
);
