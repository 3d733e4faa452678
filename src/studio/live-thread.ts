/**
 * One live session of the studio on a thread of its own (see live.ts): driving frames come in as
 * JPEG, go through the LiveAnimator, are marked as synthetic and go back as JPEG; while
 * recording, the marked frames also go to an encoder at a constant frame rate. Messages in and
 * out are LiveThreadIn and LiveThreadOut.
 */
import { rename, rm, stat } from 'node:fs/promises';
import { parentPort } from 'node:worker_threads';
import sharp from 'sharp';
import { chooseFace } from '../align/source.js';
import { cropToEven } from '../compose/even.js';
import { ReenactError } from '../errors.js';
import { copyAudio, VideoEncoder } from '../media/encode.js';
import { displayJpeg, readImage } from '../media/image.js';
import { faceAnalyzer } from '../pipeline/animate.js';
import { LiveAnimator } from '../pipeline/live.js';
import { SyntheticMarks } from '../pipeline/synthetic-output.js';
import type { RgbImage } from '../types.js';
import type { JobResult } from './jobs.js';
import { writeThumbnail } from './thumbnail.js';

export type LiveThreadIn =
  | { type: 'photo'; path: string; face: number; name: string }
  | { type: 'frame'; seq: number; time: number; jpeg: Uint8Array }
  | { type: 'reference' }
  | { type: 'record'; time: number; video: string }
  | { type: 'record-stop'; time: number }
  | { type: 'record-finish'; audio?: string; output: string; thumbnail: string }
  | { type: 'close' };

export interface RenderedHeader {
  seq: number;
  /** The driving frame's capture time (the page's clock, ms), sent back for the latency. */
  time: number;
  face: boolean;
  calibrating: boolean;
}

export type LiveThreadOut =
  | { type: 'ready'; width: number; height: number; name: string }
  | ({ type: 'frame'; jpeg: Uint8Array } & RenderedHeader)
  | { type: 'dropped'; seq: number }
  | { type: 'error'; code: string; message: string; hint?: string }
  | { type: 'recorded'; result: JobResult }
  | { type: 'record-failed'; code: string; message: string; hint?: string }
  | { type: 'closed' };

/**
 * Photos are animated live at most this many pixels on the long side: the warp's time grows
 * with the photo's pixels, and a 12 MP phone photo would take the frame rate with it.
 */
const LIVE_MAX_SIDE = 720;

/** Recordings are written at this constant rate, each tick showing the newest frame rendered by then. */
const RECORD_FPS = 25;

const port = parentPort!;
const send = (message: LiveThreadOut, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);
const failure = (error: unknown) =>
  error instanceof ReenactError
    ? { code: error.code, message: error.message, ...(error.hint ? { hint: error.hint } : {}) }
    : { code: 'INTERNAL', message: (error as Error).message ?? String(error) };

let animator: LiveAnimator | undefined;
let marks: SyntheticMarks | undefined;
let photoPath = '';
let started: number | undefined;

interface Recording {
  encoder: VideoEncoder;
  video: string;
  /** Capture time (ms) of the first tick, and when the user stopped (undefined: still recording). */
  start: number;
  stop?: number;
  marks: SyntheticMarks;
  /** Ticks written, and the writes in flight (chained: one frame at a time into ffmpeg). */
  ticks: number;
  writing: Promise<void>;
  /** The newest frame recorded. */
  last?: RgbImage;
}
let recording: Recording | undefined;

async function loadPhoto(path: string, faceIndex: number, name: string): Promise<void> {
  const analyzer = await faceAnalyzer();
  let photo = await readImage(path);
  const scale = LIVE_MAX_SIDE / Math.max(photo.width, photo.height);
  if (scale < 1) {
    const width = Math.round(photo.width * scale);
    const height = Math.round(photo.height * scale);
    const data = await sharp(photo.data, { raw: { width: photo.width, height: photo.height, channels: 3 } })
      .resize(width, height)
      .raw()
      .toBuffer();
    photo = { width, height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
  }
  const image = cropToEven(photo);
  const face = chooseFace(await analyzer.detect(image), faceIndex, name);
  if (recording && (image.width !== animator?.size.width || image.height !== animator.size.height)) {
    throw new ReenactError(
      'BAD_ARGUMENT',
      'the photo cannot change size during a recording.',
      'Stop the recording first, then switch the photo.',
    );
  }
  if (animator) animator.setSource({ image, face });
  else animator = await LiveAnimator.create({ image, face }, analyzer);
  marks = await SyntheticMarks.create(image.width, image.height, { model: 'mesh' });
  photoPath = path;
  send({ type: 'ready', width: image.width, height: image.height, name });
}

async function decodeJpeg(jpeg: Uint8Array): Promise<RgbImage> {
  const { data, info } = await sharp(jpeg).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

async function onFrame(seq: number, time: number, jpeg: Uint8Array): Promise<void> {
  if (!animator || !marks) return send({ type: 'dropped', seq });
  started ??= time;
  const frame = await decodeJpeg(jpeg);
  const live = await animator.offer(frame, time / 1000);
  if (!live || !marks) return send({ type: 'dropped', seq });
  const rec = recording && time >= recording.start && time < (recording.stop ?? Infinity) ? recording : undefined;
  // The watermark's modulation follows the video's time: the recording's while one runs.
  (rec?.marks ?? marks).apply(live.image, (time - (rec?.start ?? started)) / 1000);
  if (rec) {
    rec.last = live.image;
    writeTicks(rec, Math.floor(((time - rec.start) / 1000) * RECORD_FPS) + 1);
  }
  const bytes = await displayJpeg(live.image);
  send({ type: 'frame', seq, time, face: live.face, calibrating: live.calibrating, jpeg: bytes });
}

/** Writes the newest frame into every tick up to `due` (it shows until the next frame). */
function writeTicks(rec: Recording, due: number): void {
  const frame = rec.last;
  if (!frame) return;
  for (; rec.ticks < due; rec.ticks++) rec.writing = rec.writing.then(() => rec.encoder.write(frame));
  rec.writing.catch(() => {});
}

async function startRecording(time: number, video: string): Promise<void> {
  if (!animator || !marks)
    throw new ReenactError('BAD_ARGUMENT', 'there is no live picture to record yet.', 'Start the camera first.');
  if (recording) throw new ReenactError('BAD_ARGUMENT', 'a recording is already running.', 'Stop it first.');
  const { width, height } = animator.size;
  // Its own content id: the recording is an output of its own, with its own credential.
  const recordMarks = await SyntheticMarks.create(width, height, { model: 'mesh' });
  const encoder = await VideoEncoder.create(video, {
    width,
    height,
    fps: RECORD_FPS,
    metadata: recordMarks.metadata(),
    // One thread: the live animator keeps the other cores busy (see VideoEncoder's threads).
    preset: 'veryfast',
    threads: 1,
  });
  recording = { encoder, video, start: time, marks: recordMarks, ticks: 0, writing: Promise.resolve() };
}

async function finishRecording(audio: string | undefined, output: string, thumbnail: string): Promise<JobResult> {
  const rec = recording;
  if (!rec) throw new ReenactError('BAD_ARGUMENT', 'there is no recording to finish.', 'Press Record first.');
  recording = undefined;
  const begun = performance.now();
  try {
    // The last frame shows until the user stopped.
    if (rec.stop !== undefined) writeTicks(rec, Math.round(((rec.stop - rec.start) / 1000) * RECORD_FPS));
    await rec.writing;
    await rec.encoder.finish();
    if (audio) await copyAudio(rec.video, audio, output);
    else await rename(rec.video, output);
  } catch (error) {
    await rec.encoder.abort();
    throw error;
  } finally {
    await rm(rec.video, { force: true });
  }
  await rec.marks.credential(output, photoPath);
  const duration = rec.ticks / RECORD_FPS;
  await writeThumbnail(output, thumbnail, duration);
  const { width, height } = animator!.size;
  return {
    width,
    height,
    fps: RECORD_FPS,
    frames: rec.ticks,
    duration,
    hasAudio: audio !== undefined,
    labelled: rec.marks.labelled,
    seconds: (performance.now() - begun) / 1000,
    bytes: (await stat(output)).size,
  };
}

port.on('message', (message: LiveThreadIn) => {
  switch (message.type) {
    case 'photo':
      loadPhoto(message.path, message.face, message.name).catch((error: unknown) =>
        send({ type: 'error', ...failure(error) }),
      );
      return;
    case 'frame':
      onFrame(message.seq, message.time, message.jpeg).catch((error: unknown) => {
        send({ type: 'dropped', seq: message.seq });
        send({ type: 'error', ...failure(error) });
      });
      return;
    case 'reference':
      animator?.retakeReference();
      return;
    case 'record':
      startRecording(message.time, message.video).catch((error: unknown) =>
        send({ type: 'record-failed', ...failure(error) }),
      );
      return;
    case 'record-stop':
      if (recording) recording.stop = message.time;
      return;
    case 'record-finish':
      finishRecording(message.audio, message.output, message.thumbnail).then(
        (result) => send({ type: 'recorded', result }),
        (error: unknown) => send({ type: 'record-failed', ...failure(error) }),
      );
      return;
    case 'close': {
      // The encoder's ffmpeg and partial file, and the detection thread, go before the thread does.
      const rec = recording;
      recording = undefined;
      void Promise.all([rec?.encoder.abort(), rec && rm(rec.video, { force: true }), animator?.close()]).finally(() =>
        send({ type: 'closed' }),
      );
      return;
    }
  }
});
