import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { runFfmpeg } from '../src/media/ffmpeg.js';
import type { Job } from '../src/studio/jobs.js';
import { probeTags } from './animate-measure.js';
import {
  freePort,
  skipWithoutRedis,
  startRedis,
  startWorkerProcess,
  watchJobEvents,
  type RedisProcess,
  type WorkerProcess,
} from './redis-run.js';
import { shared, skipWithoutShared } from './shared.js';
import { startStudioProcess, waitFor, type StudioProcess } from './studio-run.js';

/** Every job event the studio's page would have received, in order. */
function watchEvents(url: string, signal: AbortSignal): { jobEvents: (id: string) => Job[] } {
  const events: Job[] = [];
  watchJobEvents(url, signal, (job) => events.push(job));
  return { jobEvents: (id) => events.filter((job) => job.id === id) };
}

const skip = skipWithoutShared || skipWithoutRedis;
const REDIS_PASSWORD = 'pw-that-must-never-be-logged';

describe('studio --redis with two reenact worker processes', { skip }, () => {
  let folder: string;
  let redis: RedisProcess;
  let studio: StudioProcess;
  let studioArgs: string[];
  const workers: Record<string, WorkerProcess> = {};
  const tokens: Record<string, string> = {};
  const stopEvents = new AbortController();
  let api: (path: string, init?: RequestInit) => Promise<{ status: number; body: any }>;

  before(async () => {
    folder = await mkdtemp(join(tmpdir(), 'reenact-workers-'));
    redis = await startRedis(folder, REDIS_PASSWORD);
    // A fixed port: the workers find the studio again after it restarts.
    studioArgs = ['--redis', redis.url, '--port', String(await freePort())];
    studio = await startStudioProcess(join(folder, 'studio'), ...studioArgs);
    api = async (path, init = {}) => {
      const response = await fetch(new URL(path, studio.url), init);
      const text = await response.text();
      return { status: response.status, body: text.startsWith('{') || text.startsWith('[') ? JSON.parse(text) : text };
    };
    for (const name of ['w1', 'w2']) {
      const issued = await api('/api/worker/tokens', { method: 'POST', body: JSON.stringify({ name }) });
      assert.equal(issued.status, 201);
      tokens[name] = issued.body.token;
      // One thread each: the two workers share this machine's two cores.
      workers[name] = startWorkerProcess(
        ['--server', studio.url, '--stall-seconds', '8', '--threads', '1', '--grace-seconds', '0'],
        { REENACT_REDIS_URL: redis.url, REENACT_WORKER_TOKEN: tokens[name]! },
      );
    }
    for (const worker of Object.values(workers))
      await waitFor(
        'the worker to start',
        async () => (/taking jobs/.test(worker.output()) ? true : undefined),
        60_000,
      );
  });

  after(async () => {
    stopEvents.abort();
    for (const worker of Object.values(workers))
      if (worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill('SIGKILL');
    await studio?.stop('SIGTERM');
    await redis?.stop();
    await rm(folder, { recursive: true, force: true });
  });

  test("six jobs survive a Redis restart, a studio restart and a SIGKILLed worker: each done once, labelled; the moved job's progress resumes on the other worker; a no-face job fails once; bad worker requests are refused and logged", async () => {
    const events = watchEvents(studio.url, stopEvents.signal);
    const upload = async (kind: 'photo' | 'clip', path: string) => {
      const response = await api(`/api/uploads/${kind}`, {
        method: 'POST',
        body: await readFile(path),
        headers: { 'x-file-name': path.split('/').pop()! },
      });
      assert.equal(response.status, 201, JSON.stringify(response.body));
      return response.body.id as string;
    };
    const photo = await upload('photo', shared('fixtures', 'portrait-outdoor.jpg'));
    const clips: { id: string; seconds: number }[] = [];
    for (let i = 0; i < 6; i++) {
      // Long enough that a job is still running while the test works on it (below), on fast machines too.
      const seconds = i % 2 ? 3.5 : 3;
      const path = join(folder, `clip-${i}.mp4`);
      await runFfmpeg(
        [
          '-y',
          '-v',
          'error',
          '-ss',
          String(i * 0.8),
          '-t',
          String(seconds),
          '-i',
          shared('fixtures', 'driving-talking.mp4'),
          '-c:v',
          'libx264',
          '-preset',
          'ultrafast',
          '-c:a',
          'aac',
          path,
        ],
        'cutting a test clip',
      );
      clips.push({ id: await upload('clip', path), seconds });
    }
    // A driving clip without a face: an input error found only when the job runs.
    const faceless = join(folder, 'no-face.mp4');
    await runFfmpeg(
      [
        '-y',
        '-v',
        'error',
        '-loop',
        '1',
        '-t',
        '1',
        '-i',
        shared('fixtures', 'cartoon-no-face.jpg'),
        '-vf',
        'scale=320:-2,fps=30',
        '-c:v',
        'libx264',
        '-preset',
        'ultrafast',
        '-pix_fmt',
        'yuv420p',
        faceless,
      ],
      'making a clip without a face',
    );
    const facelessClip = await upload('clip', faceless);

    // A job naming a missing upload: refused, logged, nothing queued.
    const missing = await api('/api/jobs', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ photo, clip: '0123456789abcdef' }),
    });
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, 'UNKNOWN_UPLOAD');
    // Logged (the studio's stderr may reach this process after its answer).
    await waitFor(
      "the refusal in the studio's log",
      async () => (/404 UNKNOWN_UPLOAD for POST \/api\/jobs/.test(studio.output()) ? true : undefined),
      10_000,
    );
    assert.deepEqual((await api('/api/jobs')).body, []);

    const submit = async (clip: string) => {
      const response = await api('/api/jobs', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ photo, clip }),
      });
      assert.equal(response.status, 201, JSON.stringify(response.body));
      return response.body.id as string;
    };
    const ids: string[] = [];
    for (const clip of clips) ids.push(await submit(clip.id));
    const noFace = await submit(facelessClip);

    // Redis restarts between submission and completion, then the studio does.
    await redis.restart();
    await waitFor(
      'a job to start',
      async () => ((await api('/api/jobs')).body as Job[]).find((job) => job.state === 'running'),
      120_000,
    );
    const stopped = await Promise.race([
      studio.stop('SIGTERM'),
      new Promise((resolve) => setTimeout(() => resolve('still running 30 s after SIGTERM'), 30_000)),
    ]);
    assert.equal(stopped, 143, studio.output()); // stopped cleanly, with SIGTERM's exit code like every command
    const firstStudioOutput = studio.output();
    studio = await startStudioProcess(join(folder, 'studio'), ...studioArgs);

    // The job w1 is working on, into its frames and with most of them to go: 1 s clips finished
    // during the bad requests below on a machine animating 65 frames a second.
    const moved = await waitFor(
      'w1 to be animating a job',
      async () => {
        const jobs = (await api('/api/jobs')).body as Job[];
        return jobs.find(
          (job) =>
            job.worker === 'w1' &&
            job.state === 'running' &&
            job.progress?.stage === 'animate' &&
            job.progress.done >= 5 &&
            job.progress.done <= 30 &&
            ids.includes(job.id),
        );
      },
      180_000,
    );

    // Bad worker requests while w1 holds it: nothing changes.
    const lock = await (async () => {
      const client = new Redis(redis.url);
      client.on('error', () => {});
      try {
        return (await client.get(`bull:reenact:job-${moved.id}:lock`))!;
      } finally {
        client.disconnect();
      }
    })();
    assert.ok(lock, 'w1 holds a lock on the job');
    const put = (token: string, lockValue: string) =>
      api(`/api/worker/jobs/${moved.id}/result`, {
        method: 'PUT',
        body: 'not a video',
        headers: { authorization: `Bearer ${token}`, 'x-reenact-lock': lockValue },
      });
    const [header, payload] = tokens.w1!.split('.');
    const forgedPayload = Buffer.from(JSON.stringify({ w: 'w1', exp: 4_000_000_000 })).toString('base64url');
    const expiring = (
      await api('/api/worker/tokens', { method: 'POST', body: JSON.stringify({ name: 'w1', seconds: 1 }) })
    ).body.token as string;
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const refusals = [
      [await put(tokens.w2!, lock), 403, 'NOT_YOUR_JOB'],
      [await put(tokens.w1!, 'w1-guess'), 403, 'NOT_YOUR_JOB'],
      [await put(`${header}.${forgedPayload}.${tokens.w1!.split('.')[2]}`, lock), 401, 'BAD_WORKER_TOKEN'],
      [await put(`${header}.${payload}.${'A'.repeat(43)}`, lock), 401, 'BAD_WORKER_TOKEN'],
      [await put(expiring, lock), 401, 'BAD_WORKER_TOKEN'],
      [
        await api(`/api/worker/jobs/${moved.id}/photo`, {
          headers: { authorization: `Bearer ${tokens.w2}`, 'x-reenact-lock': lock },
        }),
        403,
        'NOT_YOUR_JOB',
      ],
    ] as const;
    for (const [response, status, code] of refusals) {
      assert.equal(response.status, status, JSON.stringify(response.body));
      assert.equal(response.body.error.code, code);
    }
    assert.match(refusals[4][0].body.error.message, /expired/);
    const logged = () =>
      studio
        .output()
        .match(new RegExp(`40[13] (NOT_YOUR_JOB|BAD_WORKER_TOKEN) for (PUT|GET) /api/worker/jobs/${moved.id}/`, 'g'))
        ?.length ?? 0;
    await waitFor(
      "each refusal in the studio's log",
      async () => (logged() >= refusals.length ? true : undefined),
      10_000,
    ).catch(() => {});
    assert.equal(logged(), refusals.length, `each refusal is logged:\n${studio.output()}`);
    assert.deepEqual(await readdir(join(folder, 'studio', 'jobs', moved.id)), [], 'no result was written');
    assert.equal(((await api(`/api/jobs/${moved.id}`)).body as Job).state, 'running');

    const eventsBeforeKill = events.jobEvents(moved.id).length;
    workers.w1!.child.kill('SIGKILL');
    await workers.w1!.exited;

    const finished = await waitFor(
      'every job to finish',
      async () => {
        const jobs = (await api('/api/jobs')).body as Job[];
        return jobs.length === 7 && jobs.every((job) => job.state === 'done' || job.state === 'failed')
          ? jobs
          : undefined;
      },
      300_000,
    );

    // The no-face job failed once, with the library's message naming the user's clip.
    const failed = finished.find((job) => job.id === noFace)!;
    assert.equal(failed.state, 'failed');
    assert.match(failed.error!.message, /face/i);
    assert.match(failed.error!.message, /no-face\.mp4/);
    const workerLogs = workers.w1!.output() + workers.w2!.output();
    assert.equal(workerLogs.match(new RegExp(`job ${noFace}: started`, 'g'))?.length, 1, 'the no-face job ran once');

    for (const [i, id] of ids.entries()) {
      const job = finished.find((candidate) => candidate.id === id)!;
      assert.equal(job.state, 'done', `job ${i}: ${JSON.stringify(job.error)}`);
      // Finished once: one worker says so, and the page was told at most once (not while the studio was down).
      assert.equal(workerLogs.match(new RegExp(`job ${id}: done`, 'g'))?.length, 1, `job ${i} finished exactly once`);
      assert.ok(events.jobEvents(id).filter((event) => event.state === 'done').length <= 1);
      assert.equal(job.result!.labelled, true);
      const response = await fetch(new URL(`/api/jobs/${id}/result.mp4`, studio.url));
      assert.equal(response.status, 200);
      const path = join(folder, `result-${i}.mp4`);
      await writeFile(path, Buffer.from(await response.arrayBuffer()));
      assert.equal((await stat(path)).size, job.result!.bytes);
      const { tags, streams } = await probeTags(path);
      assert.match(tags.comment ?? '', /AI-generated/);
      assert.deepEqual(streams.map((stream) => stream.codec_type).sort(), ['audio', 'video']);
      assert.ok(
        Math.abs(job.result!.duration - clips[i]!.seconds) < 0.1,
        `job ${i}: ${job.result!.duration} s for a ${clips[i]!.seconds} s clip`,
      );
    }

    // The moved job: taken again by w2 after the stall timeout, its progress shown again from the start to the end.
    const afterKill = events.jobEvents(moved.id).slice(eventsBeforeKill);
    assert.ok(
      afterKill.some((job) => job.state === 'queued'),
      'the job went back to the queue',
    );
    const resumed = afterKill
      .filter((job) => job.worker === 'w2' && job.progress?.stage === 'animate')
      .map((job) => job.progress!.done);
    assert.ok(resumed.length >= 3, `progress events after the move: ${resumed.join(', ')}`);
    assert.equal(resumed.at(-1), finished.find((job) => job.id === moved.id)!.result!.frames);
    assert.equal(finished.find((job) => job.id === moved.id)!.worker, 'w2');
    assert.match(workers.w2!.output(), new RegExp(`job ${moved.id}: started \\(attempt 2, after 1 stopped worker`));

    // SIGTERM with a job running and no grace: the job goes back to the queue, the worker exits cleanly.
    const last = await submit(clips[0]!.id);
    await waitFor('w2 to be animating the last job', async () => {
      const job = (await api(`/api/jobs/${last}`)).body as Job;
      return job.state === 'running' && job.progress?.stage === 'animate' ? job : undefined;
    });
    workers.w2!.child.kill('SIGTERM');
    assert.equal(await workers.w2!.exited, 0);
    assert.match(workers.w2!.output(), new RegExp(`job ${last}: handed back`));
    const handedBack = await waitFor('the job to be queued again', async () => {
      const job = (await api(`/api/jobs/${last}`)).body as Job;
      return job.state === 'queued' ? job : undefined;
    });
    assert.equal(handedBack.result, undefined);

    // The Redis password never reaches a log, though Redis restarted under every process.
    for (const output of [firstStudioOutput, studio.output(), workers.w1!.output(), workers.w2!.output()])
      assert.ok(!output.includes(REDIS_PASSWORD));
    assert.match(workers.w2!.output(), /redis:\/\/:\*\*\*@127\.0\.0\.1/);
  });
});
