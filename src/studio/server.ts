import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createReadStream, rmSync } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { alignSource, chooseFace } from '../align/source.js';
import { readImage } from '../media/image.js';
import { faceAnalyzer } from '../pipeline/animate.js';
import { DiskJobQueue } from './disk-queue.js';
import { isId, type Job, type JobOptions, type JobQueue } from './jobs.js';
import { LiveSessions } from './live.js';
import { HttpError, toHttpError, unknownIdError } from './errors.js';
import { ModelFolder } from './models.js';
import { RedisJobQueue } from './redis-queue.js';
import { animateJobRunner } from './runner.js';
import { DEFAULT_LIMITS, UploadStore, type UploadLimits } from './uploads.js';
import { workerApi, workerSecret } from './worker-api.js';

export interface StudioOptions {
  /** Folder for uploads, jobs and results (created if missing). */
  dataDir: string;
  host?: string;
  /** 0 picks a free port. Default 7860. */
  port?: number;
  /** Required on any bind that is not loopback; generated there when not given. */
  token?: string;
  concurrency?: number;
  limits?: Partial<UploadLimits>;
  /** Finished jobs kept: the newest `keep`, none older than `maxAgeDays`. */
  retention?: { keep?: number; maxAgeDays?: number };
  /** FOMM configs and checkpoints offered in the page. Default `<dataDir>/models`. */
  modelsDir?: string;
  threads?: number;
  /** Where the built page is (default: dist/studio/page of this package). */
  pageDir?: string;
  /** Jobs go to Redis (BullMQ) for `reenact worker` processes instead of running in this process. */
  redis?: { url: string; attempts?: number };
  /** Where refused requests and Redis trouble are reported (the CLI: stderr). */
  log?: (line: string) => void;
}

export interface Studio {
  url: string;
  /** Set when the bind is not loopback: clients send it (header, cookie, or ?token= once). */
  token?: string;
  queue: JobQueue;
  /** Stops taking requests, interrupts running jobs and removes temporary files. */
  close(): Promise<void>;
  /** Synchronous last resort for a process exiting before close() finished: removes temporary files. */
  removeTemporaryFilesSync(): void;
}

const PAGE_DIR = fileURLToPath(new URL('../../dist/studio/page/', import.meta.url));
const PAGE_FILES: Record<string, [string, string]> = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/live': ['live.html', 'text/html; charset=utf-8'],
  '/live/output': ['output.html', 'text/html; charset=utf-8'],
  '/app.js': ['app.js', 'text/javascript; charset=utf-8'],
  '/live.js': ['live.js', 'text/javascript; charset=utf-8'],
  '/live-encoder.js': ['live-encoder.js', 'text/javascript; charset=utf-8'],
  '/output.js': ['output.js', 'text/javascript; charset=utf-8'],
  '/style.css': ['style.css', 'text/css; charset=utf-8'],
};
const MAX_JSON_BYTES = 16 * 1024;
const TOKEN_COOKIE = 'reenact_token';
const DAY_MS = 24 * 3600 * 1000;

export function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '');
  return bare === 'localhost' || bare === '::1' || (isIP(bare) === 4 && bare.startsWith('127.'));
}

function safeDecode(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}

function originHost(origin: string): string | undefined {
  try {
    return new URL(origin).host;
  } catch {
    return undefined;
  }
}

export function sendJson(response: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  response.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  response.end(body);
}

/** Sends a file, honouring a single byte range (video elements seek with them). */
export async function sendFile(
  request: IncomingMessage,
  response: ServerResponse,
  path: string,
  type: string,
  headers: Record<string, string> = {},
): Promise<void> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch {
    throw new HttpError(
      404,
      'NOT_FOUND',
      'that file is not on the server (still being made, or deleted).',
      'Reload the page.',
    );
  }
  const range = /^bytes=(\d*)-(\d*)$/.exec(request.headers.range ?? '');
  let start = 0;
  let end = size - 1;
  let status = 200;
  if (range && (range[1] || range[2])) {
    start = range[1] ? Number(range[1]) : Math.max(0, size - Number(range[2]));
    end = range[1] && range[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
    if (start > end || start >= size) {
      response.writeHead(416, { 'content-range': `bytes */${size}` });
      response.end();
      return;
    }
    status = 206;
    headers['content-range'] = `bytes ${start}-${end}/${size}`;
  }
  response.writeHead(status, {
    'content-type': type,
    'content-length': end - start + 1,
    'accept-ranges': 'bytes',
    'cache-control': 'no-cache',
    ...headers,
  });
  if (request.method === 'HEAD') {
    response.end();
    return;
  }
  createReadStream(path, { start, end }).pipe(response);
}

async function readJson(request: IncomingMessage): Promise<Record<string, unknown>> {
  let text = '';
  for await (const chunk of request) {
    text += chunk;
    if (text.length > MAX_JSON_BYTES)
      throw new HttpError(413, 'TOO_LARGE', 'the request body is too large.', 'Send the job as a small JSON object.');
  }
  try {
    const value = JSON.parse(text) as unknown;
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // Answered below.
  }
  throw new HttpError(
    400,
    'BAD_JSON',
    'the request body is not a JSON object.',
    'Send Content-Type: application/json with an object body.',
  );
}

function badOption(message: string, hint: string): HttpError {
  return new HttpError(400, 'BAD_OPTION', message, hint);
}

async function jobOptions(body: Record<string, unknown>, models: ModelFolder): Promise<JobOptions> {
  const raw = (body.options ?? {}) as Record<string, unknown>;
  const model = raw.model ?? 'mesh';
  if (model !== 'mesh' && model !== 'fomm')
    throw badOption(`unknown model "${String(model)}".`, 'Use "mesh" or "fomm".');
  const options: JobOptions = { model, compare: raw.compare === true, label: raw.label !== false };
  if (model === 'fomm') {
    const { configs, checkpoints } = await models.list();
    const hint =
      "Upload the FOMM .yaml and .pth.tar files in the page (or put them in the studio's --models folder) and choose them.";
    if (typeof raw.config !== 'string' || !configs.includes(raw.config))
      throw badOption('fomm needs a config from the models folder.', hint);
    if (typeof raw.checkpoint !== 'string' || !checkpoints.includes(raw.checkpoint))
      throw badOption('fomm needs a checkpoint from the models folder.', hint);
    options.config = raw.config;
    options.checkpoint = raw.checkpoint;
  }
  if (raw.face !== undefined) {
    if (!Number.isInteger(raw.face) || (raw.face as number) < 0)
      throw badOption('face must be a face number of 0 or more.', 'Faces are numbered from 0, largest first.');
    options.face = raw.face as number;
  }
  if (raw.startFrame !== undefined) {
    if (raw.startFrame !== 'best' && !(Number.isInteger(raw.startFrame) && (raw.startFrame as number) >= 0))
      throw badOption(
        'startFrame must be "best" or a frame number of 0 or more.',
        'Leave it out to start from the first frame with a face.',
      );
    options.startFrame = raw.startFrame as number | 'best';
  }
  return options;
}

/** Starts the studio's HTTP server over a data folder; resolves once it listens. */
export async function startStudio(options: StudioOptions): Promise<Studio> {
  const host = options.host ?? '127.0.0.1';
  const dataDir = resolve(options.dataDir);
  const modelsDir = resolve(options.modelsDir ?? join(dataDir, 'models'));
  const pageDir = options.pageDir ?? PAGE_DIR;
  const token = isLoopback(host) ? options.token : (options.token ?? randomBytes(18).toString('base64url'));
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  const retention = { keep: options.retention?.keep ?? 100, maxAgeMs: (options.retention?.maxAgeDays ?? 30) * DAY_MS };
  await mkdir(dataDir, { recursive: true });

  const uploads = new UploadStore(join(dataDir, 'uploads'), join(dataDir, 'tmp'), limits, faceAnalyzer);
  await uploads.init();
  const models = new ModelFolder(modelsDir, join(dataDir, 'tmp'), limits.modelBytes);
  const queue = options.redis
    ? await RedisJobQueue.open({
        redisUrl: options.redis.url,
        folder: join(dataDir, 'jobs'),
        ...(options.redis.attempts ? { attempts: options.redis.attempts } : {}),
        ...(options.log ? { log: options.log } : {}),
      })
    : await DiskJobQueue.open({
        folder: join(dataDir, 'jobs'),
        runner: animateJobRunner(uploads, modelsDir, options.threads),
        concurrency: options.concurrency,
      });
  const workers =
    queue instanceof RedisJobQueue
      ? workerApi(queue, uploads, await workerSecret(join(dataDir, 'worker-secret')))
      : undefined;
  const shutdown = new AbortController();

  const streams = new Set<ServerResponse>();
  const broadcast = (event: string, data: unknown) => {
    const message = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const stream of streams) stream.write(message);
  };
  const prune = async () => {
    const removed = await queue.prune(retention);
    for (const id of removed) broadcast('removed', { id });
    const inUse = new Set((await queue.list()).flatMap((job) => [job.photo, job.clip]));
    await uploads.prune(inUse, Math.min(DAY_MS, retention.maxAgeMs));
  };
  let pruning: Promise<void> = prune();
  queue.subscribe((job) => {
    broadcast('job', job);
    if (job.state !== 'queued' && job.state !== 'running') pruning = pruning.then(prune, prune);
  });

  const isToken = (offered: string | undefined): boolean => {
    if (!token || offered === undefined) return false;
    const a = Buffer.from(offered);
    const b = Buffer.from(token);
    return a.length === b.length && timingSafeEqual(a, b);
  };
  const authorised = (request: IncomingMessage): boolean => {
    if (!token) return true;
    const cookie = /(?:^|;\s*)reenact_token=([^;]+)/.exec(request.headers.cookie ?? '')?.[1];
    const bearer = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1];
    return isToken(
      (request.headers['x-reenact-token'] as string | undefined) ?? bearer ?? (cookie ? safeDecode(cookie) : undefined),
    );
  };

  const uploadOf = async (id: string, kind?: 'photo' | 'clip') => {
    const upload = await uploads.get(id);
    if (!upload || (kind && upload.kind !== kind))
      throw unknownIdError('UNKNOWN_UPLOAD', kind ?? 'upload', id, 'Upload the file again.');
    return upload;
  };
  const jobOf = async (id: string): Promise<Job> => {
    const job = isId(id) ? await queue.get(id) : undefined;
    if (!job) throw unknownIdError('UNKNOWN_JOB', 'job', id, 'It may have been deleted or pruned; reload the history.');
    return job;
  };

  /** A page on another site must not drive a studio it can reach through the user's browser. */
  const checkSite = (request: IncomingMessage): void => {
    const hostName = (request.headers.host ?? '').replace(/:\d+$/, '');
    if (isLoopback(host) && !isLoopback(hostName))
      throw new HttpError(
        403,
        'WRONG_HOST',
        `requests must be addressed to localhost, not "${hostName.slice(0, 80)}".`,
        'Open the URL that reenact studio printed.',
      );
    const origin = request.headers.origin;
    if (origin && origin !== 'null' && originHost(origin) !== request.headers.host)
      throw new HttpError(403, 'CROSS_ORIGIN', 'requests from other sites are refused.', "Use the studio's own page.");
  };
  const live = new LiveSessions(uploads, queue, join(dataDir, 'tmp'));

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const url = new URL(request.url ?? '/', 'http://studio');
    const method = request.method ?? 'GET';
    checkSite(request);

    // Workers carry their own tokens, checked per job (worker-api.ts).
    if (workers && url.pathname.startsWith('/api/worker/'))
      return workers.handle(request, response, url, authorised(request));
    if (token && method === 'GET' && url.pathname === '/' && url.searchParams.has('token')) {
      if (isToken(url.searchParams.get('token') ?? '')) {
        response.writeHead(303, {
          location: '/',
          'set-cookie': `${TOKEN_COOKIE}=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/`,
        });
        response.end();
        return;
      }
    }
    if (!authorised(request))
      throw new HttpError(
        401,
        'UNAUTHORIZED',
        'this studio needs its access token, and the request has none or a wrong one.',
        'Open the URL with ?token=... that reenact studio printed, or send the X-Reenact-Token header.',
      );

    const page = PAGE_FILES[url.pathname];
    if (page && (method === 'GET' || method === 'HEAD')) {
      await sendFile(request, response, join(pageDir, page[0]), page[1]).catch(() => {
        throw new HttpError(
          500,
          'PAGE_NOT_BUILT',
          'the studio page has not been built.',
          'Run npm run build in the reenact folder.',
        );
      });
      return;
    }
    const parts = url.pathname.split('/').filter(Boolean);
    if (parts[0] !== 'api')
      throw new HttpError(404, 'NOT_FOUND', `nothing at ${url.pathname.slice(0, 80)}.`, 'Open the studio at /.');
    const route = `${method} /${parts
      .slice(1)
      .map((part, i) => (i === 1 ? ':id' : part))
      .join('/')}`;
    const id = parts[2] ?? '';

    switch (route) {
      case 'GET /config':
        return sendJson(response, 200, { limits, models: await models.list(), tokenRequired: token !== undefined });
      case 'POST /uploads/:id':
        if (id !== 'photo' && id !== 'clip')
          throw new HttpError(
            404,
            'NOT_FOUND',
            `uploads are of a photo or a clip, not "${id.slice(0, 40)}".`,
            'POST to /api/uploads/photo or /api/uploads/clip.',
          );
        return sendJson(response, 201, await uploads.receive(request, id, shutdown.signal));
      case 'POST /models':
        return sendJson(response, 201, await models.receive(request));
      case 'GET /uploads/:id':
        return sendJson(response, 200, await uploadOf(id));
      case 'GET /uploads/:id/file': {
        const upload = await uploadOf(id);
        return sendFile(
          request,
          response,
          uploads.path(upload),
          upload.kind === 'clip' ? 'video/mp4' : `image/${upload.file.split('.').pop()}`,
        );
      }
      case 'GET /uploads/:id/track.jpg':
        return sendFile(request, response, uploads.path(await uploadOf(id, 'clip'), 'track.jpg'), 'image/jpeg');
      case 'GET /uploads/:id/crop': {
        const upload = await uploadOf(id, 'photo');
        const index = Number(url.searchParams.get('face') ?? 0);
        const face = chooseFace(await uploads.faces(upload), Number.isInteger(index) ? index : -1, upload.name);
        const photo = await readImage(uploads.path(upload));
        // The roll measured as `animate --model fomm` measures it, so the preview is its crop.
        const { crop } = alignSource(photo, face, { roll: await uploads.measureRoll(photo, face) });
        const png = await sharp(crop.data, { raw: { width: crop.width, height: crop.height, channels: 3 } })
          .png()
          .toBuffer();
        response.writeHead(200, {
          'content-type': 'image/png',
          'content-length': png.length,
          'cache-control': 'private, max-age=3600',
        });
        response.end(png);
        return;
      }
      case 'GET /jobs':
        return sendJson(response, 200, await queue.list());
      case 'POST /jobs': {
        const body = await readJson(request);
        const jobOptionsValue = await jobOptions(body, models);
        const photo = await uploadOf(String(body.photo ?? ''), 'photo');
        const clip = await uploadOf(String(body.clip ?? ''), 'clip');
        if (photo.photo?.problem)
          throw new HttpError(422, photo.photo.problem.code, photo.photo.problem.message, photo.photo.problem.hint);
        const job = await queue.submit({
          photo: photo.id,
          clip: clip.id,
          photoName: photo.name,
          clipName: clip.name,
          options: jobOptionsValue,
        });
        return sendJson(response, 201, job);
      }
      case 'GET /jobs/:id':
        return sendJson(response, 200, await jobOf(id));
      case 'DELETE /jobs/:id':
        await jobOf(id);
        await queue.remove(id);
        broadcast('removed', { id });
        return sendJson(response, 200, { id, deleted: true });
      case 'POST /jobs/:id/cancel':
        await jobOf(id);
        return sendJson(response, 200, await queue.cancel(id));
      case 'POST /jobs/:id/retry':
        await jobOf(id);
        return sendJson(response, 200, await queue.retry(id));
      case 'GET /jobs/:id/result.mp4': {
        const job = await jobOf(id);
        if (job.state !== 'done')
          throw new HttpError(
            409,
            'NOT_DONE',
            `job ${id} is ${job.state}, so it has no result yet.`,
            'Wait for it to finish.',
          );
        const download: Record<string, string> = url.searchParams.has('download')
          ? { 'content-disposition': `attachment; filename="reenact-${id}.mp4"` }
          : {};
        return sendFile(request, response, queue.files(id).result, 'video/mp4', download);
      }
      case 'GET /jobs/:id/thumb.jpg':
        await jobOf(id);
        return sendFile(request, response, queue.files(id).thumbnail, 'image/jpeg');
      case 'GET /live':
        return sendJson(response, 200, live.list());
      case 'POST /live/:id/recording':
        return sendJson(response, 201, await live.receiveRecording(id, request));
      case 'GET /events': {
        response.writeHead(200, {
          'content-type': 'text/event-stream',
          'cache-control': 'no-store',
          connection: 'keep-alive',
        });
        response.write(`retry: 2000\nevent: jobs\ndata: ${JSON.stringify(await queue.list())}\n\n`);
        streams.add(response);
        const keepAlive = setInterval(() => response.write(': keep-alive\n\n'), 15_000);
        request.on('close', () => {
          clearInterval(keepAlive);
          streams.delete(response);
        });
        return;
      }
      default:
        throw new HttpError(
          404,
          'NOT_FOUND',
          `no API route ${method} ${url.pathname.slice(0, 80)}.`,
          'See the studio page for what it calls.',
        );
    }
  };

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      let http: HttpError;
      try {
        http = toHttpError(error);
      } catch {
        process.stderr.write(`reenact studio: ${(error as Error).stack ?? String(error)}\n`);
        http = new HttpError(
          500,
          'INTERNAL',
          `the server failed: ${(error as Error).message}`,
          "See the studio's terminal for details.",
        );
      }
      options.log?.(
        `${http.status} ${http.code} for ${request.method} ${(request.url ?? '').replace(/\?.*/, '')}: ${http.message}`,
      );
      if (response.headersSent) {
        response.destroy();
        return;
      }
      // The rest of a refused upload is not read: the connection closes after the answer.
      response.setHeader('connection', 'close');
      sendJson(response, http.status, http.body);
    });
  });
  // The live mode's WebSocket (live.ts): the same checks as any request, then the session's.
  server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(request.url ?? '/', 'http://studio');
    let refusal: HttpError | undefined;
    try {
      checkSite(request);
      if (!authorised(request))
        refusal = new HttpError(
          401,
          'UNAUTHORIZED',
          'this studio needs its access token.',
          'Open the URL with ?token=... that reenact studio printed.',
        );
      else if (url.pathname !== '/api/live')
        refusal = new HttpError(
          404,
          'NOT_FOUND',
          `no WebSocket at ${url.pathname.slice(0, 80)}.`,
          'Live pages connect to /api/live.',
        );
    } catch (error) {
      refusal = error as HttpError;
    }
    if (refusal) {
      options.log?.(`${refusal.status} ${refusal.code} for WebSocket ${url.pathname}: ${refusal.message}`);
      socket.end(`HTTP/1.1 ${refusal.status} Refused\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
      return;
    }
    live.handleUpgrade(request, socket, head, url);
  });
  // A 500 MB clip over a slow link, then its analysis, can take longer than Node's default 5 minutes.
  server.requestTimeout = 3600_000;
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 7860, host, () => resolveListen());
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${shownHost}:${address.port}/`;

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      shutdown.abort();
      const stopped = new Promise<void>((done) => server.close(() => done()));
      await live.close();
      for (const stream of streams) stream.end();
      server.closeAllConnections();
      await queue.close();
      await pruning.catch(() => {});
      await uploads.clearTemporary();
      await stopped;
    })());
  const removeTemporaryFilesSync = () => {
    queue.removeTemporaryFilesSync();
    rmSync(join(dataDir, 'tmp'), { recursive: true, force: true });
  };
  return { url, ...(token ? { token } : {}), queue, close, removeTemporaryFilesSync };
}
