import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { probeVideo } from '../media/probe.js';
import { isId } from './jobs.js';
import { HttpError, unknownIdError } from './errors.js';
import { bullId, type RedisJobQueue, type WorkerJobData } from './redis-queue.js';
import { writeThumbnail } from './thumbnail.js';
import { sendFile, sendJson } from './server.js';
import { receiveBody, type UploadStore } from './uploads.js';

/**
 * The HTTP side of `reenact worker`: workers take jobs from Redis, then fetch the job's inputs
 * from here and send the result back, so no filesystem is shared. A worker proves who it is with
 * a token this studio signed (POST /api/worker/tokens, itself behind the studio's own access
 * rules), and what it may touch with the lock BullMQ gave it on the job: a request names the
 * job, and is served only while that job is active, held under that lock, by a worker of that
 * name. A worker whose job was moved on (it stalled and another took it) is refused.
 */

const TOKEN_PREFIX = 'rw1';
const NAME = /^[A-Za-z0-9._-]{1,64}$/;
/** Results larger than this are refused: a minute of 4K video at a high bitrate is well under it. */
const MAX_RESULT_BYTES = 4e9;
const DEFAULT_TOKEN_SECONDS = 30 * 24 * 3600;

export interface WorkerClaims {
  name: string;
  /** Seconds since the epoch. */
  expires: number;
}

function sign(secret: Buffer, payload: string): string {
  return createHmac('sha256', secret).update(`${TOKEN_PREFIX}.${payload}`).digest('base64url');
}

export function issueWorkerToken(secret: Buffer, name: string, seconds: number): string {
  const payload = Buffer.from(JSON.stringify({ w: name, exp: Math.floor(Date.now() / 1000) + seconds })).toString(
    'base64url',
  );
  return `${TOKEN_PREFIX}.${payload}.${sign(secret, payload)}`;
}

/** The claims a token states, unchecked (a worker reads its own name from it). */
export function readWorkerToken(token: string): WorkerClaims | undefined {
  const [prefix, payload] = token.split('.');
  if (prefix !== TOKEN_PREFIX || !payload) return undefined;
  try {
    const { w, exp } = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { w?: unknown; exp?: unknown };
    if (typeof w === 'string' && NAME.test(w) && typeof exp === 'number') return { name: w, expires: exp };
  } catch {
    // Not a token of ours.
  }
  return undefined;
}

/** The token's claims when this secret signed it and it has not expired; a 401 otherwise. */
export function verifyWorkerToken(secret: Buffer, token: string | undefined): WorkerClaims {
  const refuse = (why: string) =>
    new HttpError(
      401,
      'BAD_WORKER_TOKEN',
      `the worker token is ${why}.`,
      'Issue the worker a new token from the studio (POST /api/worker/tokens) and pass it with --token.',
    );
  if (!token) throw refuse('missing');
  const parts = token.split('.');
  const claims = readWorkerToken(token);
  if (parts.length !== 3 || !claims) throw refuse('not one this studio issues');
  const expected = Buffer.from(sign(secret, parts[1]!));
  const offered = Buffer.from(parts[2]!);
  if (expected.length !== offered.length || !timingSafeEqual(expected, offered))
    throw refuse('not signed by this studio');
  if (claims.expires * 1000 <= Date.now()) throw refuse('expired');
  return claims;
}

/** The studio's signing key, made once and kept in its data folder (readable by its user only). */
export async function workerSecret(path: string): Promise<Buffer> {
  try {
    const secret = await readFile(path);
    if (secret.length >= 32) return secret;
  } catch {
    // Made below.
  }
  const secret = randomBytes(32);
  await writeFile(path, secret, { mode: 0o600 });
  return secret;
}

function bearer(request: IncomingMessage): string | undefined {
  return /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1];
}

export interface WorkerApi {
  /** Answers a request under /api/worker/; `studioAuthorised`: whether it carries the studio's own access. */
  handle(request: IncomingMessage, response: ServerResponse, url: URL, studioAuthorised: boolean): Promise<void>;
}

export function workerApi(queue: RedisJobQueue, uploads: UploadStore, secret: Buffer): WorkerApi {
  /** The job's data when the request's worker holds it. */
  const heldJob = async (request: IncomingMessage, id: string): Promise<WorkerJobData> => {
    const claims = verifyWorkerToken(secret, bearer(request));
    const lock = request.headers['x-reenact-lock'];
    const job = isId(id) ? await queue.queue.getJob(bullId(id)) : undefined;
    if (!job) throw unknownIdError('UNKNOWN_JOB', 'job', id, 'It may have been deleted; take the next job.');
    const held =
      typeof lock === 'string' &&
      lock.length > 0 &&
      (await queue.redis.get(queue.lockKey(id))) === lock &&
      job.processedBy === claims.name;
    if (!held)
      throw new HttpError(
        403,
        'NOT_YOUR_JOB',
        `job ${id} is not held by worker "${claims.name}" under that lock.`,
        'A worker may only fetch inputs and send results of the jobs it holds; its lock may have expired (the job went to another worker).',
      );
    return job.data as WorkerJobData;
  };

  const receiveResult = async (request: IncomingMessage, id: string): Promise<{ bytes: number }> => {
    const files = queue.files(id);
    const partial = `${files.result}.${randomBytes(4).toString('hex')}.partial`;
    queue.receiving.add(partial);
    try {
      const bytes = await receiveBody(
        request,
        partial,
        MAX_RESULT_BYTES,
        'Results are MP4 files from animate; check the worker.',
        'result',
      );
      const info = await probeVideo(partial).catch(() => {
        throw new HttpError(
          422,
          'BAD_RESULT',
          'the uploaded result is not a video.',
          'Send the MP4 that animate wrote.',
        );
      });
      await rename(partial, files.result);
      await writeThumbnail(files.result, files.thumbnail, info.duration);
      return { bytes };
    } finally {
      await rm(partial, { force: true });
      queue.receiving.delete(partial);
    }
  };

  return {
    async handle(request, response, url, studioAuthorised) {
      const parts = url.pathname.split('/').filter(Boolean).slice(2);
      const route = `${request.method} /${parts.map((part, i) => (i === 1 ? ':id' : part)).join('/')}`;
      const id = parts[1] ?? '';
      switch (route) {
        case 'GET /whoami': {
          const claims = verifyWorkerToken(secret, bearer(request));
          return sendJson(response, 200, { name: claims.name, expires: new Date(claims.expires * 1000).toISOString() });
        }
        case 'POST /tokens': {
          if (!studioAuthorised)
            throw new HttpError(
              401,
              'UNAUTHORIZED',
              "issuing worker tokens needs the studio's access token.",
              'Send the X-Reenact-Token header that reenact studio printed.',
            );
          let body: { name?: unknown; seconds?: unknown } = {};
          let text = '';
          for await (const chunk of request)
            if ((text += chunk).length > 4096)
              throw new HttpError(413, 'TOO_LARGE', 'the request body is too large.', 'Send {"name": "..."}.');
          try {
            body = JSON.parse(text || '{}') as typeof body;
          } catch {
            throw new HttpError(
              400,
              'BAD_JSON',
              'the request body is not JSON.',
              'Send {"name": "worker-1", "seconds": 86400}.',
            );
          }
          if (typeof body.name !== 'string' || !NAME.test(body.name))
            throw new HttpError(
              400,
              'BAD_NAME',
              'a worker needs a name of 1 to 64 letters, digits, dots, dashes or underscores.',
              'Send {"name": "worker-1"}.',
            );
          const seconds = body.seconds ?? DEFAULT_TOKEN_SECONDS;
          if (typeof seconds !== 'number' || !(seconds > 0 && seconds <= 10 * 365 * 24 * 3600))
            throw new HttpError(
              400,
              'BAD_OPTION',
              'seconds must be a number of seconds up to ten years.',
              'Leave it out for 30 days.',
            );
          const token = issueWorkerToken(secret, body.name, seconds);
          return sendJson(response, 201, {
            name: body.name,
            token,
            expires: new Date(readWorkerToken(token)!.expires * 1000).toISOString(),
          });
        }
        case 'GET /jobs/:id/photo':
        case 'GET /jobs/:id/clip': {
          const data = await heldJob(request, id);
          const upload = await uploads.get(parts[2] === 'photo' ? data.photo : data.clip);
          if (!upload)
            throw new HttpError(
              410,
              'INPUT_GONE',
              `the job's ${parts[2]} is no longer on the studio (pruned or deleted).`,
              'Upload it again and start a new job.',
            );
          return sendFile(request, response, uploads.path(upload), 'application/octet-stream');
        }
        case 'PUT /jobs/:id/result': {
          await heldJob(request, id);
          return sendJson(response, 201, await receiveResult(request, id));
        }
        default:
          throw new HttpError(
            404,
            'NOT_FOUND',
            `no worker API route ${request.method} ${url.pathname.slice(0, 80)}.`,
            'Workers use /api/worker/jobs/:id/{photo,clip,result}.',
          );
      }
    },
  };
}
