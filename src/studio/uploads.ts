import { createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import sharp from 'sharp';
import { chooseFace, measureRoll } from '../align/source.js';
import { findFaceTracks, longestTrack } from '../driving/tracks.js';
import { ReenactError } from '../errors.js';
import type { Face, FaceAnalyzer } from '../face/detector.js';
import { decodeVideo } from '../media/decode.js';
import { readImage } from '../media/image.js';
import { probeVideo, type VideoInfo } from '../media/probe.js';
import { repairRecording } from '../media/repair.js';
import type { Box, RgbImage } from '../types.js';
import { writeJson } from './disk-queue.js';
import { isId, newId, type JobError } from './jobs.js';
import { HttpError, toHttpError } from './errors.js';

export type UploadKind = 'photo' | 'clip';

export interface UploadLimits {
  photoBytes: number;
  photoPixels: number;
  clipBytes: number;
  clipSeconds: number;
  /** FOMM checkpoints (vox-adv-cpk.pth.tar is ~700 MB). */
  modelBytes: number;
}

export const DEFAULT_LIMITS: UploadLimits = {
  photoBytes: 30e6,
  photoPixels: 40e6,
  clipBytes: 500e6,
  clipSeconds: 600,
  modelBytes: 2e9,
};

/** Frame rates above this are not camera footage; a clip claiming more frames a second is refused. */
const MAX_FPS = 240;
/** Most face detections the clip preview's track search makes. */
const PREVIEW_DETECTIONS = 300;
/** Larger frames than this are refused rather than decoded. */
const MAX_CLIP_SIDE = 4096;

export interface PhotoPreview {
  width: number;
  height: number;
  /** Largest first, as the pipeline numbers them (the `face` option). */
  faces: { box: Box; score: number }[];
  /** Why the photo cannot be animated (no face), as the library says it. */
  problem?: JobError;
}

export interface ClipPreview extends Pick<VideoInfo, 'width' | 'height' | 'fps' | 'duration' | 'hasAudio'> {
  frames: number;
  /** True when the recording was rewritten with a real duration and constant frame rate. */
  repaired: boolean;
  /** The driver's face track: its square crop in clip pixels and its frames. */
  track?: { box: Box; start: number; end: number };
  problem?: JobError;
}

export interface Upload {
  id: string;
  kind: UploadKind;
  /** The client's file name, for display only: files are stored under fixed names. */
  name: string;
  createdAt: string;
  /** File name inside the upload's folder. */
  file: string;
  bytes: number;
  photo?: PhotoPreview;
  clip?: ClipPreview;
}

/** Extensions by content, never by the client's name: sharp's format, or ffprobe's container. */
const PHOTO_EXTENSIONS: Record<string, string> = {
  jpeg: 'jpg',
  png: 'png',
  webp: 'webp',
  heif: 'heic',
  avif: 'avif',
  tiff: 'tiff',
  gif: 'gif',
};

function problemOf(error: unknown): JobError {
  const http = toHttpError(error);
  return { code: http.code, message: http.message, ...(http.hint ? { hint: http.hint } : {}) };
}

/**
 * Streams a request body to `path`, refusing it (413) once it passes `cap` bytes, or at once when
 * its Content-Length says it will; an empty body is refused too. Returns the number of bytes.
 */
export async function receiveBody(
  request: IncomingMessage,
  path: string,
  cap: number,
  hint: string,
  what: string,
): Promise<number> {
  const tooLarge = () =>
    new HttpError(413, 'TOO_LARGE', `the ${what} is larger than the studio's limit of ${formatBytes(cap)}.`, hint);
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > cap) throw tooLarge();
  let bytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      callback(bytes > cap ? tooLarge() : null, chunk);
    },
  });
  await pipeline(request, counter, createWriteStream(path));
  if (bytes === 0)
    throw new HttpError(
      400,
      'EMPTY_UPLOAD',
      `the ${what} upload is empty.`,
      "Send the file's bytes as the request body.",
    );
  return bytes;
}

/**
 * The answer to a failed upload: interrupted, or the refusal with the server's own paths in
 * library messages replaced by the names the client knows (`names`: path -> name).
 */
export function refusedUpload(error: unknown, request: IncomingMessage, names: Record<string, string>): HttpError {
  if (!(error instanceof HttpError) && !request.complete)
    return new HttpError(400, 'UPLOAD_ABORTED', 'the upload was interrupted.', 'Send the file again.');
  const refused = toHttpError(error);
  let message = refused.message;
  for (const [path, name] of Object.entries(names)) message = message.replaceAll(path, name);
  return new HttpError(refused.status, refused.code, message, refused.hint);
}

/** A display name is a plain file name: no folders, no control characters. */
export function checkFileName(raw: string | undefined, fallback: string): string {
  if (raw === undefined || raw === '') return fallback;
  let name: string;
  try {
    name = decodeURIComponent(raw);
  } catch {
    throw new HttpError(
      400,
      'BAD_FILE_NAME',
      'the file name is not valid URL-encoded text.',
      'Send the file name URL-encoded in the X-File-Name header.',
    );
  }
  // eslint-disable-next-line no-control-regex
  if (name.length > 255 || /[/\\\u0000-\u001f]/.test(name) || name === '.' || name === '..' || name.startsWith('..')) {
    throw new HttpError(
      400,
      'BAD_FILE_NAME',
      `the file name "${name.slice(0, 80)}" looks like a path.`,
      "Send only the file's own name, without folders.",
    );
  }
  return name;
}

/**
 * Uploaded photos and clips, one folder each under `folder`: the file under a fixed name, its
 * preview (faces, face track) in upload.json. Incoming bodies are streamed to `temporary` with
 * a byte cap and identified by probing their content; a refused or aborted upload is removed.
 */
export class UploadStore {
  constructor(
    private readonly folder: string,
    private readonly temporary: string,
    private readonly limits: UploadLimits,
    private readonly analyzer: () => Promise<FaceAnalyzer>,
  ) {}

  async init(): Promise<void> {
    await mkdir(this.folder, { recursive: true });
    // Left over from a process that died mid-upload.
    await rm(this.temporary, { recursive: true, force: true });
    await mkdir(this.temporary, { recursive: true });
  }

  /** Removes what uploads in flight have written; for shutdown. */
  async clearTemporary(): Promise<void> {
    await rm(this.temporary, { recursive: true, force: true });
  }

  /** The head's roll in a stored photo's face (measureRoll, with the store's detector). */
  async measureRoll(photo: RgbImage, face: Face): Promise<number> {
    const analyzer = await this.analyzer();
    return measureRoll(photo, face, (image) => analyzer.detect(image));
  }

  folderOf(id: string): string {
    return join(this.folder, id);
  }

  async get(id: string): Promise<Upload | undefined> {
    if (!isId(id)) return undefined;
    try {
      return JSON.parse(await readFile(join(this.folder, id, 'upload.json'), 'utf8')) as Upload;
    } catch {
      return undefined;
    }
  }

  path(upload: Upload, file = upload.file): string {
    return join(this.folder, upload.id, file);
  }

  async faces(upload: Upload): Promise<Face[]> {
    const stored = JSON.parse(await readFile(this.path(upload, 'faces.json'), 'utf8')) as {
      box: Box;
      score: number;
      landmarks: number[];
    }[];
    return stored.map((face) => ({ box: face.box, score: face.score, landmarks: Float32Array.from(face.landmarks) }));
  }

  async receive(request: IncomingMessage, kind: UploadKind, signal?: AbortSignal): Promise<Upload> {
    const name = checkFileName(request.headers['x-file-name'] as string | undefined, kind);
    const cap = kind === 'photo' ? this.limits.photoBytes : this.limits.clipBytes;
    const id = newId();
    const incoming = join(this.temporary, `${id}.upload`);
    const destination = join(this.folder, id);
    try {
      const bytes = await receiveBody(
        request,
        incoming,
        cap,
        kind === 'photo'
          ? 'Use a smaller photo, or start the studio with a larger --max-photo-mb.'
          : 'Trim the clip, or start the studio with a larger --max-clip-mb.',
        kind,
      );
      await mkdir(destination);
      const upload: Upload = { id, kind, name, createdAt: new Date().toISOString(), file: '', bytes };
      if (kind === 'photo') await this.storePhoto(upload, incoming);
      else await this.storeClip(upload, incoming, signal);
      await writeJson(join(destination, 'upload.json'), upload);
      return upload;
    } catch (error) {
      await rm(destination, { recursive: true, force: true });
      throw refusedUpload(error, request, { [incoming]: name, [destination]: name });
    } finally {
      await rm(incoming, { force: true });
    }
  }

  private async storePhoto(upload: Upload, incoming: string): Promise<void> {
    // readImage refuses what is not an image and what is over the pixel limit, from the header alone.
    const image = await readImage(incoming, { maxPixels: this.limits.photoPixels });
    const format = (await sharp(incoming).metadata()).format ?? '';
    upload.file = `photo.${PHOTO_EXTENSIONS[format] ?? 'img'}`;
    await rename(incoming, this.path(upload));
    const faces = await (await this.analyzer()).detect(image);
    await writeJson(
      this.path(upload, 'faces.json'),
      faces.map((face) => ({ box: face.box, score: face.score, landmarks: Array.from(face.landmarks) })),
    );
    upload.photo = {
      width: image.width,
      height: image.height,
      faces: faces.map((face) => ({ box: face.box, score: face.score })),
    };
    try {
      chooseFace(faces, undefined, upload.name);
    } catch (error) {
      upload.photo.problem = problemOf(error);
    }
  }

  private checkClip(info: VideoInfo): void {
    const { clipSeconds } = this.limits;
    if (info.width > MAX_CLIP_SIDE || info.height > MAX_CLIP_SIDE) {
      throw new HttpError(
        413,
        'TOO_LARGE',
        `the clip's frames are ${info.width}x${info.height}; the studio takes up to ${MAX_CLIP_SIDE}x${MAX_CLIP_SIDE}.`,
        'Export the clip at 1080p or less.',
      );
    }
    if (info.duration > clipSeconds) {
      throw new HttpError(
        413,
        'CLIP_TOO_LONG',
        `the clip is ${formatSeconds(info.duration)} long; the studio's limit is ${formatSeconds(clipSeconds)}.`,
        'Trim the clip, or start the studio with a larger --max-clip-seconds.',
      );
    }
    // A file claiming millions of frames in seconds would keep a job busy for hours.
    if (
      info.frameCount > clipSeconds * MAX_FPS ||
      (info.duration > 0 && info.frameCount / info.duration > MAX_FPS) ||
      info.fps > MAX_FPS
    ) {
      throw new HttpError(
        422,
        'ABSURD_FRAME_RATE',
        `the clip holds ${info.frameCount} frames in ${info.duration.toFixed(1)} s, more than ${MAX_FPS} a second.`,
        'Export the clip again at a normal frame rate (24 to 60 fps).',
      );
    }
  }

  private async storeClip(upload: Upload, incoming: string, signal?: AbortSignal): Promise<void> {
    let info = await probeVideo(incoming);
    this.checkClip(info);
    const repaired = info.needsRepair;
    upload.file = 'clip.mp4';
    if (repaired) {
      // MediaRecorder's WebM has no duration and wobbling frame times: rewrite it once, here.
      info = await repairRecording(incoming, this.path(upload), { signal });
      this.checkClip(info);
    } else {
      upload.file = /mp4|mov/.test(info.format ?? '')
        ? 'clip.mp4'
        : /webm|matroska/.test(info.format ?? '')
          ? 'clip.mkv'
          : 'clip.video';
      await rename(incoming, this.path(upload));
    }
    upload.clip = {
      width: info.width,
      height: info.height,
      fps: info.fps,
      frames: info.frameCount,
      duration: info.duration,
      hasAudio: info.hasAudio,
      repaired,
    };
    const path = this.path(upload);
    try {
      // As the fomm pipeline finds it (boxes on every third frame, the longest track), but with at
      // most ~300 detections, so a long clip's preview takes seconds, not minutes.
      const stride = Math.max(3, Math.ceil(info.frameCount / PREVIEW_DETECTIONS));
      const tracks = await findFaceTracks(path, await this.analyzer(), { stride, minFrames: 1, signal });
      const track = longestTrack(tracks, upload.name, 1);
      upload.clip.track = { box: track.box, start: track.start, end: track.end };
      const middle = (track.start + track.end - 1) / 2 / info.fps;
      for await (const frame of decodeVideo(path, {
        info,
        crop: track.box,
        width: 256,
        height: 256,
        startTime: middle,
        signal,
      })) {
        await sharp(frame.data, { raw: { width: frame.width, height: frame.height, channels: 3 } })
          .jpeg({ quality: 85 })
          .toFile(this.path(upload, 'track.jpg'));
        break;
      }
    } catch (error) {
      if (!(error instanceof ReenactError) || error.code === 'CANCELLED') throw error;
      upload.clip.problem = problemOf(error);
    }
  }

  /** Removes uploads made more than `maxAgeMs` ago that no job in `inUse` refers to. */
  async prune(inUse: Set<string>, maxAgeMs: number): Promise<number> {
    let removed = 0;
    for (const id of await readdir(this.folder)) {
      if (!isId(id) || inUse.has(id)) continue;
      const folder = join(this.folder, id);
      const made = Date.parse((await this.get(id))?.createdAt ?? '') || (await stat(folder)).mtimeMs;
      if (Date.now() - made > maxAgeMs) {
        await rm(folder, { recursive: true, force: true });
        removed++;
      }
    }
    return removed;
  }
}

function formatBytes(bytes: number): string {
  return bytes >= 1e6 ? `${Math.round(bytes / 1e6)} MB` : `${Math.round(bytes / 1e3)} kB`;
}

function formatSeconds(seconds: number): string {
  return seconds >= 60 ? `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s` : `${seconds.toFixed(1)} s`;
}
