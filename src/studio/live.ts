import type { IncomingMessage } from 'node:http';
import { rm } from 'node:fs/promises';
import type { Duplex } from 'node:stream';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { workerEntry } from '../worker-entry.js';
import { HttpError } from './errors.js';
import { newId, type Job, type JobQueue } from './jobs.js';
import type { LiveThreadIn, LiveThreadOut, RenderedHeader } from './live-thread.js';
import { receiveBody, type UploadStore } from './uploads.js';

/**
 * The studio's live mode: each page on /live holds a WebSocket to /api/live and gets a session, a
 * thread of its own (live-thread.ts) animating its photo with the page's camera frames. Frames
 * go both ways as binary messages: a 4-byte little-endian length, that many bytes of JSON
 * header, then a JPEG. Output-only pages (/live/output, for OBS) connect with ?view= and get the
 * rendered frames of the newest session (or the one named), skipped while they fall behind.
 */

/** Largest message a page may send: a camera frame as JPEG, or a control message. */
const MAX_MESSAGE_BYTES = 8 * 1024 * 1024;
/** Frames are skipped for a socket with more than this still unsent (a slow viewer, a stalled tab). */
const MAX_BUFFERED_BYTES = 2 * 1024 * 1024;
/** Longest recording's microphone audio accepted (Opus at ~32 kbit/s is ~15 MB an hour). */
const MAX_AUDIO_BYTES = 100 * 1024 * 1024;
/** Frames a session's thread holds at most: the Live page sends two at a time, and one more may be crossing. */
const MAX_FRAMES_IN_THREAD = 3;
/** How long a closing session's thread gets to stop its encoder and detection thread. */
const CLOSE_GRACE_MS = 3000;

/** What GET /api/live lists of each session. */
export interface LiveSessionInfo {
  id: string;
  photoName?: string;
  startedAt: string;
  viewers: number;
  recording: boolean;
}

export function packFrame(header: object, jpeg: Uint8Array): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(4);
  length.writeUInt32LE(json.length);
  return Buffer.concat([length, json, jpeg]);
}

export function unpackFrame(data: Buffer): { header: Record<string, unknown>; jpeg: Uint8Array } | undefined {
  if (data.length < 4) return undefined;
  const length = data.readUInt32LE(0);
  if (4 + length > data.length) return undefined;
  try {
    const header = JSON.parse(data.subarray(4, 4 + length).toString()) as unknown;
    if (!header || typeof header !== 'object') return undefined;
    return { header: header as Record<string, unknown>, jpeg: new Uint8Array(data.subarray(4 + length)) };
  } catch {
    return undefined;
  }
}

function toBuffer(data: RawData): Buffer {
  return Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
}

class LiveSession {
  readonly id = newId();
  readonly startedAt = new Date().toISOString();
  readonly viewers = new Set<WebSocket>();
  photo: { id: string; name: string } | undefined;
  recording = false;
  private ready = false;
  /** Frames handed to the thread and not yet answered. */
  private inThread = 0;
  private closing: Promise<void> | undefined;
  private finishing: ((message: LiveThreadOut & { type: 'recorded' | 'record-failed' }) => void) | undefined;
  private readonly worker: Worker;

  constructor(
    private readonly socket: WebSocket,
    private readonly owner: LiveSessions,
  ) {
    this.worker = new Worker(workerEntry(import.meta.url, 'live-thread'));
    this.worker.on('message', (message: LiveThreadOut) => this.fromThread(message));
    this.worker.on('error', (error) => this.fail(`the live session stopped: ${error.message}`));
    this.worker.on('exit', () => {
      if (!this.closing) this.fail('the live session stopped unexpectedly.');
    });
    this.sendJson({ type: 'session', id: this.id });
  }

  private post(message: LiveThreadIn, transfer: ArrayBuffer[] = []): void {
    this.worker.postMessage(message, transfer);
  }

  private sendJson(message: object): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.send(JSON.stringify(message));
  }

  private fail(message: string): void {
    this.sendJson({ type: 'error', code: 'LIVE_FAILED', message, hint: 'Reload the page to start again.' });
    this.socket.close();
  }

  private fromThread(message: LiveThreadOut): void {
    if (message.type === 'frame' || message.type === 'dropped') this.inThread--;
    switch (message.type) {
      case 'frame': {
        const { type: _type, jpeg, ...header } = message;
        const packed = packFrame(header satisfies RenderedHeader, jpeg);
        if (this.socket.bufferedAmount > MAX_BUFFERED_BYTES) this.sendJson({ type: 'dropped', seq: message.seq });
        else this.socket.send(packed);
        for (const viewer of this.viewers) if (viewer.bufferedAmount <= MAX_BUFFERED_BYTES) viewer.send(packed);
        return;
      }
      case 'ready':
        this.ready = true;
        this.sendJson(message);
        return;
      case 'recorded':
      case 'record-failed':
        this.recording = false;
        if (message.type === 'record-failed') this.sendJson({ ...message, type: 'error' });
        this.finishing?.(message);
        this.finishing = undefined;
        return;
      case 'closed':
        return;
      default:
        this.sendJson(message);
    }
  }

  async onMessage(data: RawData, isBinary: boolean): Promise<void> {
    if (isBinary) {
      const frame = unpackFrame(toBuffer(data));
      const seq = Number(frame?.header.seq);
      const time = Number(frame?.header.time);
      if (!frame || !Number.isFinite(seq) || !Number.isFinite(time))
        return this.sendJson({
          type: 'error',
          code: 'BAD_MESSAGE',
          message: 'a camera frame could not be read.',
          hint: 'Reload the page.',
        });
      // A page that sends faster than it is answered (the Live page never does) gets its extra frames dropped here.
      if (!this.ready || this.inThread >= MAX_FRAMES_IN_THREAD) return this.sendJson({ type: 'dropped', seq });
      this.inThread++;
      this.post({ type: 'frame', seq, time, jpeg: frame.jpeg }, [frame.jpeg.buffer as ArrayBuffer]);
      return;
    }
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(toBuffer(data).toString()) as Record<string, unknown>;
    } catch {
      return this.sendJson({
        type: 'error',
        code: 'BAD_MESSAGE',
        message: 'a message from the page could not be read.',
        hint: 'Reload the page.',
      });
    }
    switch (message.type) {
      case 'photo': {
        const upload = await this.owner.uploads.get(String(message.photo ?? ''));
        if (!upload || upload.kind !== 'photo')
          return this.sendJson({
            type: 'error',
            code: 'UNKNOWN_UPLOAD',
            message: 'that photo is not on the server.',
            hint: 'Choose the photo again.',
          });
        if (upload.photo?.problem) return this.sendJson({ type: 'error', ...upload.photo.problem });
        const face = Number.isInteger(message.face) ? (message.face as number) : 0;
        this.photo = { id: upload.id, name: upload.name };
        this.post({ type: 'photo', path: this.owner.uploads.path(upload), face, name: upload.name });
        return;
      }
      case 'reference':
        return this.post({ type: 'reference' });
      case 'record': {
        if (this.recording) return;
        this.recording = true;
        this.post({
          type: 'record',
          time: Number(message.time),
          video: join(this.owner.temporary, `live-${this.id}-${newId()}.mp4`),
        });
        return;
      }
      case 'record-stop':
        return this.post({ type: 'record-stop', time: Number(message.time) });
      default:
        return this.sendJson({
          type: 'error',
          code: 'BAD_MESSAGE',
          message: `unknown message "${String(message.type).slice(0, 40)}".`,
          hint: 'Reload the page.',
        });
    }
  }

  /** Ends the recording with the microphone's audio at `audio` (none: silent) as a done job in the history. */
  finishRecording(audio: string | undefined): Promise<Job> {
    if (!this.recording || !this.photo)
      throw new HttpError(409, 'NOT_RECORDING', 'this live session is not recording.', 'Press Record first.');
    const photo = this.photo;
    return this.owner.queue.addDone(
      {
        photo: photo.id,
        clip: '',
        photoName: photo.name,
        clipName: 'Live camera',
        options: { model: 'mesh', compare: false, label: true },
      },
      (files) =>
        new Promise((resolve, reject) => {
          this.finishing = (message) => {
            if (message.type === 'recorded') resolve(message.result);
            else reject(new HttpError(422, message.code, message.message, message.hint));
          };
          this.post({
            type: 'record-finish',
            ...(audio ? { audio } : {}),
            output: files.result,
            thumbnail: files.thumbnail,
          });
        }),
    );
  }

  info(): LiveSessionInfo {
    return {
      id: this.id,
      ...(this.photo ? { photoName: this.photo.name } : {}),
      startedAt: this.startedAt,
      viewers: this.viewers.size,
      recording: this.recording,
    };
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.finishing?.({
        type: 'record-failed',
        code: 'CANCELLED',
        message: 'the live session ended before the recording was saved.',
      });
      const closed = new Promise<void>((resolve) => {
        this.worker.on('message', (message: LiveThreadOut) => message.type === 'closed' && resolve());
        this.worker.once('exit', () => resolve());
      });
      this.post({ type: 'close' });
      await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, CLOSE_GRACE_MS))]);
      await this.worker.terminate();
      if (this.socket.readyState === this.socket.OPEN) this.socket.close();
    })();
    return this.closing;
  }
}

/** The live sessions of one studio and the viewers of their output. */
export class LiveSessions {
  private readonly server = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES });
  private readonly sessions = new Map<string, LiveSession>();
  /** Viewers of the newest session, whichever that is when a frame comes. */
  private readonly followers = new Set<WebSocket>();

  constructor(
    readonly uploads: UploadStore,
    readonly queue: JobQueue,
    readonly temporary: string,
  ) {}

  /** Takes an upgrade to /api/live (checked by the server: host, origin, token). */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer, url: URL): void {
    this.server.handleUpgrade(request, socket, head, (ws) => {
      const view = url.searchParams.get('view');
      if (view !== null) return this.addViewer(ws, view);
      const session = new LiveSession(ws, this);
      this.sessions.set(session.id, session);
      this.refollow();
      ws.on('message', (data, isBinary) => void session.onMessage(data, isBinary).catch(() => ws.close()));
      ws.on('close', () => {
        this.sessions.delete(session.id);
        this.refollow();
        void session.close();
      });
      ws.on('error', () => ws.close());
    });
  }

  private addViewer(ws: WebSocket, view: string): void {
    const session = view === '' || view === 'latest' ? undefined : this.sessions.get(view);
    if (view !== '' && view !== 'latest' && !session) {
      ws.send(
        JSON.stringify({
          type: 'error',
          code: 'UNKNOWN_SESSION',
          message: 'that live session has ended.',
          hint: 'Open /live/output without ?view= to show the newest session.',
        }),
      );
      ws.close();
      return;
    }
    if (session) session.viewers.add(ws);
    else {
      this.followers.add(ws);
      this.refollow();
    }
    ws.on('close', () => {
      session?.viewers.delete(ws);
      this.followers.delete(ws);
    });
    ws.on('error', () => ws.close());
  }

  /** Followers watch the newest session. */
  private refollow(): void {
    const newest = [...this.sessions.values()].at(-1);
    for (const session of this.sessions.values())
      for (const ws of this.followers) if (session !== newest) session.viewers.delete(ws);
    if (newest) for (const ws of this.followers) newest.viewers.add(ws);
  }

  list(): LiveSessionInfo[] {
    return [...this.sessions.values()].map((session) => session.info());
  }

  /** POST /api/live/:id/recording: the body is the microphone's audio (may be empty). */
  async receiveRecording(id: string, request: IncomingMessage): Promise<Job> {
    const session = this.sessions.get(id);
    if (!session)
      throw new HttpError(
        404,
        'UNKNOWN_SESSION',
        'that live session has ended.',
        'Start the camera again and record anew.',
      );
    const audio = join(this.temporary, `live-${id}-${newId()}.audio`);
    try {
      // An empty body: no microphone (refused, or none), a silent recording.
      const silent = request.headers['content-length'] === '0';
      if (!silent) await receiveBody(request, audio, MAX_AUDIO_BYTES, 'Record a shorter session.', "recording's audio");
      return await session.finishRecording(silent ? undefined : audio);
    } finally {
      await rm(audio, { force: true });
    }
  }

  async close(): Promise<void> {
    for (const ws of this.followers) ws.close();
    await Promise.all([...this.sessions.values()].map((session) => session.close()));
    this.sessions.clear();
    this.server.close();
  }
}
