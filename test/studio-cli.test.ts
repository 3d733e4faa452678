import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { shared, skipWithoutShared } from './shared.js';
import { startStudioProcess, waitFor } from './studio-run.js';

test(
  'reenact studio: Ctrl-C with a job running marks it interrupted, removes temporary files and exits 130',
  { skip: skipWithoutShared },
  async () => {
    const folder = await mkdtemp(join(tmpdir(), 'reenact-studio-cli-'));
    try {
      const dataDir = join(folder, 'data');
      const studio = await startStudioProcess(dataDir);
      const post = async (path: string, body: BodyInit, headers: Record<string, string>) => {
        const response = await fetch(new URL(path, studio.url), { method: 'POST', body, headers });
        const text = await response.text();
        assert.ok(response.ok, `${path}: ${response.status} ${text}`);
        return JSON.parse(text) as { id: string };
      };
      const photo = await post(
        '/api/uploads/photo',
        new Blob([await readFile(shared('fixtures', 'portrait-outdoor.jpg'))]),
        { 'x-file-name': 'portrait-outdoor.jpg' },
      );
      const clip = await post(
        '/api/uploads/clip',
        new Blob([await readFile(shared('fixtures', 'driving-talking.mp4'))]),
        { 'x-file-name': 'driving-talking.mp4' },
      );
      const job = await post('/api/jobs', JSON.stringify({ photo: photo.id, clip: clip.id }), {
        'content-type': 'application/json',
      });
      await waitFor(
        'the job to write frames',
        async () => {
          const files = await readdir(join(dataDir, 'jobs', job.id));
          return files.some((file) => file.includes('.partial')) ? true : undefined;
        },
        120_000,
      );

      assert.equal(await studio.stop('SIGINT'), 130, studio.output()); // every command exits 130 after Ctrl-C
      assert.match(studio.output(), /SIGINT, stopping[\s\S]*reenact studio: stopped/);
      const record = JSON.parse(await readFile(join(dataDir, 'jobs', job.id, 'job.json'), 'utf8')) as { state: string };
      assert.equal(record.state, 'interrupted');
      assert.deepEqual(await readdir(join(dataDir, 'jobs', job.id)), ['job.json']);
      assert.equal((await readdir(dataDir)).includes('tmp'), false, 'the temporary upload folder is removed');
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  },
);
