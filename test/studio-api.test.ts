import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request as httpRequest } from 'node:http';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { chooseFace, measureRoll } from '../src/align/source.js';
import { FaceAnalyzer } from '../src/face/detector.js';
import { runFfmpeg } from '../src/media/ffmpeg.js';
import { writeJson } from '../src/studio/disk-queue.js';
import { startStudio, type Studio } from '../src/studio/server.js';
import { shared, skipWithoutShared } from './shared.js';
import { waitFor } from './studio-run.js';

interface Refusal {
  status: number;
  error: { code: string; message: string; hint?: string };
}

async function request(
  studio: Studio,
  path: string,
  init: RequestInit = {},
): Promise<{ status: number; body: unknown; headers: Headers }> {
  const response = await fetch(new URL(path, studio.url), { redirect: 'manual', ...init });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON: kept as text for the assertion that fails.
  }
  return { status: response.status, body, headers: response.headers };
}

async function refused(studio: Studio, path: string, init: RequestInit = {}): Promise<Refusal> {
  const { status, body } = await request(studio, path, init);
  assert.ok(status >= 400 && status < 500, `expected a 4xx for ${path}, got ${status}: ${JSON.stringify(body)}`);
  const error = (body as { error?: Refusal['error'] }).error;
  assert.ok(
    error && typeof error.code === 'string' && typeof error.message === 'string' && error.hint,
    `a JSON error with code, message and hint: ${JSON.stringify(body)}`,
  );
  return { status, error };
}

/** Everything under the data folder but the empty folders the studio made itself. */
async function storedFiles(dataDir: string): Promise<string[]> {
  const entries = await readdir(dataDir, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile() || (entry.isDirectory() && !['uploads', 'jobs', 'tmp'].includes(entry.name)))
    .map((entry) => join(entry.parentPath, entry.name));
}

function upload(kind: 'photo' | 'clip', body: BodyInit, name?: string, extra: RequestInit = {}): [string, RequestInit] {
  return [`/api/uploads/${kind}`, { method: 'POST', body, headers: name ? { 'x-file-name': name } : {}, ...extra }];
}

describe('studio API: bad requests get a 4xx JSON error and leave nothing behind', () => {
  let folder: string;
  let dataDir: string;
  let studio: Studio;

  before(async () => {
    folder = await mkdtemp(join(tmpdir(), 'reenact-studio-api-'));
    dataDir = join(folder, 'data');
    studio = await startStudio({
      dataDir,
      port: 0,
      limits: { photoBytes: 100_000, clipBytes: 2_000_000, clipSeconds: 2 },
    });
  });
  after(async () => {
    await studio?.close();
    await rm(folder, { recursive: true, force: true });
  });

  test('an oversized upload: refused from its Content-Length, and when streamed without one', async () => {
    const big = new Uint8Array(300_000).fill(7);
    const declared = await refused(studio, ...upload('photo', big, 'big.jpg'));
    assert.equal(declared.status, 413);
    assert.equal(declared.error.code, 'TOO_LARGE');
    assert.match(declared.error.message, /larger than the studio's limit of 100 kB/);

    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 30; i++) controller.enqueue(new Uint8Array(10_000).fill(i));
        controller.close();
      },
    });
    const streamed = await refused(studio, ...upload('photo', stream, 'big.jpg', { duplex: 'half' } as RequestInit));
    assert.equal(streamed.status, 413);
    assert.equal(streamed.error.code, 'TOO_LARGE');
    assert.deepEqual(await storedFiles(dataDir), []);
  });

  test('a text file posted as a video is identified by its content, whatever its name', async () => {
    const text = 'this is not a video\n'.repeat(200);
    const result = await refused(studio, ...upload('clip', text, 'clip.mp4'));
    assert.equal(result.status, 415);
    assert.equal(result.error.code, 'NOT_MEDIA');
    assert.match(result.error.message, /^clip\.mp4 is not a video file/);
    assert.doesNotMatch(result.error.message, /\/tmp|\.upload/);
    const photo = await refused(studio, ...upload('photo', text, 'photo.jpg'));
    assert.equal(photo.error.code, 'NOT_MEDIA');
    assert.deepEqual(await storedFiles(dataDir), []);
  });

  test(
    'a clip longer than the limit, and one with an absurd frame rate, are refused before any work',
    { skip: skipWithoutShared },
    async () => {
      const long = join(folder, 'long.mp4');
      await runFfmpeg(
        [
          '-y',
          '-v',
          'error',
          '-i',
          shared('fixtures', 'driving-talking.mp4'),
          '-t',
          '3',
          '-vf',
          'scale=64:64',
          '-c:v',
          'libx264',
          '-c:a',
          'aac',
          long,
        ],
        'cutting a 3 s clip',
      );
      const tooLong = await refused(studio, ...upload('clip', await readFile(long), 'long.mp4'));
      assert.equal(tooLong.error.code, 'CLIP_TOO_LONG');
      assert.match(tooLong.error.message, /3\.0 s long; the studio's limit is 2\.0 s/);

      // 1000 frames in one second: what a job would spend an hour on for a short clip.
      const dense = join(folder, 'dense.mp4');
      await runFfmpeg(
        [
          '-y',
          '-v',
          'error',
          '-f',
          'lavfi',
          '-i',
          'testsrc=size=32x32:rate=1000',
          '-t',
          '1',
          '-c:v',
          'libx264',
          '-preset',
          'ultrafast',
          dense,
        ],
        'making a 1000 fps clip',
      );
      const absurd = await refused(studio, ...upload('clip', await readFile(dense), 'dense.mp4'));
      assert.equal(absurd.status, 422);
      assert.equal(absurd.error.code, 'ABSURD_FRAME_RATE');
      assert.deepEqual(await storedFiles(dataDir), []);
    },
  );

  test('a path-like file name is refused, not used', async () => {
    for (const name of ['..%2F..%2Fetc%2Fpasswd', '%2Fetc%2Fcron.d%2Fx', 'a%5Cb.jpg', '..']) {
      const result = await refused(studio, ...upload('photo', 'x', name));
      assert.equal(result.status, 400);
      assert.equal(result.error.code, 'BAD_FILE_NAME');
      assert.match(result.error.message, /looks like a path/);
    }
    assert.deepEqual(await storedFiles(dataDir), []);
  });

  test('unknown job and upload ids, bad JSON and bad options', async () => {
    for (const path of [
      '/api/jobs/0123456789abcdef',
      '/api/jobs/0123456789abcdef/result.mp4',
      '/api/jobs/..%2F..%2Fetc',
    ]) {
      const result = await refused(studio, path);
      assert.equal(result.status, 404);
      assert.equal(result.error.code, 'UNKNOWN_JOB');
    }
    const deleted = await refused(studio, '/api/jobs/0123456789abcdef', { method: 'DELETE' });
    assert.equal(deleted.error.code, 'UNKNOWN_JOB');
    const job = (body: unknown) =>
      [
        '/api/jobs',
        { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) },
      ] as [string, RequestInit];
    assert.equal(
      (await refused(studio, ...job({ photo: 'fedcba9876543210', clip: '0123456789abcdef' }))).error.code,
      'UNKNOWN_UPLOAD',
    );
    assert.equal((await refused(studio, '/api/jobs', { method: 'POST', body: '{not json' })).error.code, 'BAD_JSON');
    const noCheckpoint = await refused(
      studio,
      ...job({
        photo: 'fedcba9876543210',
        clip: '0123456789abcdef',
        options: { model: 'fomm', config: '../../etc/passwd', checkpoint: 'x.pth.tar' },
      }),
    );
    assert.equal(noCheckpoint.error.code, 'BAD_OPTION');
    assert.match(noCheckpoint.error.message, /fomm needs a config from the models folder/);
    assert.equal(
      (await refused(studio, ...job({ options: { model: 'mesh', startFrame: -3 } }))).error.code,
      'BAD_OPTION',
    );
    assert.equal((await refused(studio, '/api/nothing')).error.code, 'NOT_FOUND');
    assert.deepEqual(await storedFiles(dataDir), []);
  });
});

describe('studio API: jobs', { skip: skipWithoutShared }, () => {
  let folder: string;
  let dataDir: string;
  let studio: Studio;

  before(async () => {
    folder = await mkdtemp(join(tmpdir(), 'reenact-studio-jobs-'));
    dataDir = join(folder, 'data');
    studio = await startStudio({ dataDir, port: 0 });
  });
  after(async () => {
    await studio?.close();
    await rm(folder, { recursive: true, force: true });
  });

  test('an upload cut off mid-way leaves nothing behind', async () => {
    const { port } = new URL(studio.url);
    await new Promise<void>((resolve) => {
      const client = httpRequest({
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/api/uploads/clip',
        headers: { 'content-length': 1_000_000 },
      });
      client.on('error', () => resolve());
      client.write(Buffer.alloc(200_000, 1), () => setTimeout(() => client.destroy(), 200));
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.deepEqual(await storedFiles(dataDir), []);
  });

  test("a tilted photo's crop preview is level, its roll measured by straightening as animate --model fomm does", async () => {
    // One detector reading of a tilted face is pulled towards level: portrait-outdoor.jpg turned
    // by 20 and -18 degrees gave crops still tilted by -1.50 and -1.25 degrees that way.
    const analyzer = await FaceAnalyzer.create();
    for (const angle of [20, -18]) {
      const tilted = await sharp(shared('fixtures', 'portrait-outdoor.jpg'))
        .rotate(angle, { background: '#808080' })
        .png()
        .toBuffer();
      const { status, body } = await request(studio, '/api/uploads/photo', {
        method: 'POST',
        body: tilted,
        headers: { 'x-file-name': `tilted-${angle}.png` },
      });
      assert.equal(status, 201, JSON.stringify(body));
      const response = await fetch(new URL(`/api/uploads/${(body as { id: string }).id}/crop?face=0`, studio.url));
      assert.equal(response.status, 200);
      const png = await sharp(Buffer.from(await response.arrayBuffer()))
        .raw()
        .toBuffer({ resolveWithObject: true });
      const crop = { width: png.info.width, height: png.info.height, data: new Uint8Array(png.data) };
      const face = chooseFace(await analyzer.detect(crop));
      const roll = await measureRoll(crop, face, (image) => analyzer.detect(image));
      assert.ok(
        Math.abs(roll) < 1,
        `turned by ${angle}: the crop's face is level within 1 degree, not ${roll.toFixed(2)}`,
      );
    }
  });

  test('a running job is cancelled through its AbortSignal: no result, no partial file; then deleted', async () => {
    const post = async (path: string, body: BodyInit, headers: Record<string, string> = {}) => {
      const { status, body: answer } = await request(studio, path, { method: 'POST', body, headers });
      assert.ok(status < 300, `${path}: ${status} ${JSON.stringify(answer)}`);
      return answer as { id: string; state: string };
    };
    const photo = await post('/api/uploads/photo', await readFile(shared('fixtures', 'portrait-outdoor.jpg')), {
      'x-file-name': 'portrait-outdoor.jpg',
    });
    const clip = await post('/api/uploads/clip', await readFile(shared('fixtures', 'driving-talking.mp4')), {
      'x-file-name': 'driving-talking.mp4',
    });
    const job = await post(
      '/api/jobs',
      JSON.stringify({ photo: photo.id, clip: clip.id, options: { model: 'mesh', compare: true } }),
      { 'content-type': 'application/json' },
    );
    await waitFor(
      'the job to be under way',
      async () => ((await studio.queue.get(job.id))?.progress?.stage === 'animate' ? true : undefined),
      120_000,
    );
    const cancelled = await post(`/api/jobs/${job.id}/cancel`, '');
    assert.equal(cancelled.state, 'cancelled');
    assert.deepEqual(await readdir(join(dataDir, 'jobs', job.id)), ['job.json']);
    const result = await refused(studio, `/api/jobs/${job.id}/result.mp4`);
    assert.equal(result.error.code, 'NOT_DONE');

    const { status } = await request(studio, `/api/jobs/${job.id}`, { method: 'DELETE' });
    assert.equal(status, 200);
    assert.equal((await refused(studio, `/api/jobs/${job.id}`)).status, 404);
    assert.deepEqual(await readdir(join(dataDir, 'jobs')), []);
  });
});

describe('studio API: FOMM files uploaded through the page', { skip: skipWithoutShared }, () => {
  let folder: string;
  let studio: Studio;

  before(async () => {
    folder = await mkdtemp(join(tmpdir(), 'reenact-studio-models-'));
    studio = await startStudio({ dataDir: join(folder, 'data'), port: 0 });
  });
  after(async () => {
    await studio?.close();
    await rm(folder, { recursive: true, force: true });
  });

  test('a config is parsed and listed; a text file as a checkpoint or config, a second copy and an unknown kind are refused', async () => {
    const send = (name: string, body: BodyInit): [string, RequestInit] => [
      '/api/models',
      { method: 'POST', body, headers: { 'x-file-name': name } },
    ];
    const yaml = await readFile(shared('fomm', 'configs', 'vox-adv-256.yaml'));
    const added = await request(studio, ...send('vox-adv-256.yaml', yaml));
    assert.equal(added.status, 201, JSON.stringify(added.body));
    const listed = (await request(studio, '/api/config')).body as { models: unknown };
    assert.deepEqual(listed.models, { configs: ['vox-adv-256.yaml'], checkpoints: [] });
    assert.equal((await refused(studio, ...send('vox-adv-256.yaml', yaml))).error.code, 'MODEL_EXISTS');
    const notCheckpoint = await refused(studio, ...send('vox-cpk.pth.tar', 'not a checkpoint'));
    assert.equal(notCheckpoint.status, 415);
    assert.equal(notCheckpoint.error.code, 'NOT_CHECKPOINT');
    const badConfig = await refused(studio, ...send('broken.yaml', 'model_params: [unclosed'));
    assert.equal(badConfig.error.code, 'BAD_CONFIG');
    assert.doesNotMatch(badConfig.error.message, /\.model/);
    assert.equal((await refused(studio, ...send('weights.bin', 'x'))).error.code, 'BAD_FILE_NAME');
    assert.deepEqual(await readdir(join(folder, 'data', 'models')), ['vox-adv-256.yaml']);
    assert.deepEqual(await readdir(join(folder, 'data', 'tmp')), []);
  });
});

describe('studio API: access token on non-loopback binds', () => {
  let folder: string;
  let studio: Studio;

  before(async () => {
    folder = await mkdtemp(join(tmpdir(), 'reenact-studio-token-'));
    // Bound to all addresses, but the test only ever talks to 127.0.0.1.
    const bound = await startStudio({ dataDir: join(folder, 'data'), host: '0.0.0.0', port: 0 });
    studio = { ...bound, url: bound.url.replace('0.0.0.0', '127.0.0.1') };
  });
  after(async () => {
    await studio?.close();
    await rm(folder, { recursive: true, force: true });
  });

  test('requests without the token get 401; the header, or the cookie set by ?token=, let them in', async () => {
    assert.ok(studio.token && studio.token.length >= 20, 'a random token is made for a non-loopback bind');
    for (const path of ['/', '/api/jobs', '/api/events']) {
      const result = await refused(studio, path);
      assert.equal(result.status, 401);
      assert.equal(result.error.code, 'UNAUTHORIZED');
      assert.match(result.error.message, /needs its access token/);
    }
    assert.equal((await refused(studio, ...upload('photo', 'x', 'a.jpg'))).status, 401);
    assert.equal(
      (await refused(studio, '/api/jobs', { headers: { 'x-reenact-token': `${studio.token}x` } })).status,
      401,
    );
    assert.equal((await request(studio, '/api/jobs', { headers: { 'x-reenact-token': studio.token! } })).status, 200);
    const login = await request(studio, `/?token=${encodeURIComponent(studio.token!)}`);
    assert.equal(login.status, 303);
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    assert.match(login.headers.get('set-cookie')!, /HttpOnly; SameSite=Strict/);
    assert.equal((await request(studio, '/api/jobs', { headers: { cookie } })).status, 200);
    assert.deepEqual(await readdir(join(folder, 'data', 'uploads')), []);
  });
});

describe('studio retention', () => {
  test('finished jobs beyond --keep and older than --keep-days are deleted at start, with the uploads only they used', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'reenact-studio-retention-'));
    try {
      const dataDir = join(folder, 'data');
      const day = 24 * 3600 * 1000;
      // Records as an earlier studio left them: four finished jobs of different ages and their uploads.
      const ids = ['000000000000000a', '000000000000000b', '000000000000000c', '000000000000000d'];
      const uploads = ids.map((_id, i) => `f00000000000000${i}`);
      const ages = [0.1, 2, 3, 40];
      for (const [i, id] of ids.entries()) {
        const createdAt = new Date(Date.now() - ages[i]! * day).toISOString();
        const upload = uploads[i]!;
        await mkdir(join(dataDir, 'uploads', upload), { recursive: true });
        await writeJson(join(dataDir, 'uploads', upload, 'upload.json'), {
          id: upload,
          kind: 'photo',
          name: 'p.jpg',
          createdAt,
          file: 'photo.jpg',
          bytes: 1,
        });
        await mkdir(join(dataDir, 'jobs', id), { recursive: true });
        await writeJson(join(dataDir, 'jobs', id, 'job.json'), {
          id,
          state: 'done',
          createdAt,
          photo: upload,
          clip: upload,
          photoName: 'p.jpg',
          clipName: 'c.mp4',
          options: { model: 'mesh', compare: false, label: true },
        });
      }
      const listed = async () => [
        (await readdir(join(dataDir, 'jobs'))).sort(),
        (await readdir(join(dataDir, 'uploads'))).sort(),
      ];
      // The 40-day-old job is over the age limit; the other three fit in --keep 3.
      await (await startStudio({ dataDir, port: 0, retention: { keep: 3, maxAgeDays: 30 } })).close();
      assert.deepEqual(await listed(), [ids.slice(0, 3), uploads.slice(0, 3)]);
      // --keep 1: only the newest job stays; the older jobs' uploads (over a day old) go with them.
      await (await startStudio({ dataDir, port: 0, retention: { keep: 1, maxAgeDays: 30 } })).close();
      assert.deepEqual(await listed(), [ids.slice(0, 1), uploads.slice(0, 1)]);
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });
});
