import { writeFile } from 'node:fs/promises';
import { ReenactError } from '../errors.js';
import type { Face, FaceAnalyzer } from '../face/detector.js';
import { decodeVideo } from '../media/decode.js';
import type { VideoInfo } from '../media/probe.js';
import { openVideo } from '../media/repair.js';
import { writeAtomically } from '../output.js';
import type { Box, ProgressCallback } from '../types.js';

/** One face followed through a run of frames, with the square crop that holds it throughout. */
export interface FaceTrack {
  /** First frame (0-based). */
  start: number;
  /** Frame after the last (exclusive). */
  end: number;
  /** start / fps and end / fps, in seconds. */
  startTime: number;
  endTime: number;
  /** Square crop in source pixels: the union of the face boxes, enlarged and clamped to the frame. */
  box: Box;
  /** end - start. */
  frames: number;
}

export interface TrackOptions {
  /** Frames are decoded at most this many pixels on the long side for detection. Default 640. */
  maxSide?: number;
  /** A box continues a track while its IoU with the track's first box exceeds this. Default 0.25. */
  iouThreshold?: number;
  /** Margin added on every side, as a fraction of the square's side. Default 0.1. */
  increase?: number;
  /** Shortest track kept, in frames. Default 150, or the whole clip where it is shorter. */
  minFrames?: number;
  /** Detect on every Nth frame only (faster; a detection stands for the N frames from it). Default 1. */
  stride?: number;
  /**
   * Detection passes in a row a track may miss before it ends. Default 2: one blurred or
   * occluded frame should not cut a talking-head clip in two (the FOMM reference script ends
   * the track at the first miss). The missed frames stay inside the track.
   */
  maxMissed?: number;
  onProgress?: ProgressCallback<'track'>;
  signal?: AbortSignal;
}

export const DEFAULT_MIN_FRAMES = 150;

interface OpenTrack {
  first: Box;
  /** Union of all boxes so far, as x0/y0/x1/y1. */
  x0: number;
  y0: number;
  x1: number;
  y1: number;
  start: number;
  /** Last frame with a matching detection. */
  last: number;
  missed: number;
}

/** Landmarks of the face proper (the mesh's first 468 points, irises excluded). */
const MESH_POINTS = 468;

/**
 * The face's extent from its landmarks: hairline to chin, cheek to cheek. Tracks use this rather
 * than the detector's box, which is 1.3 to 1.9 times larger depending on how many pixels the face
 * has and varies by about 10% from frame to frame; the mesh extent varies by a few percent, so
 * crops frame a face the same way at any video resolution.
 */
export function meshBox(face: Face): Box {
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -Infinity;
  let y1 = -Infinity;
  for (let i = 0; i < MESH_POINTS; i++) {
    const x = face.landmarks[i * 3]!;
    const y = face.landmarks[i * 3 + 1]!;
    if (x < x0) x0 = x;
    if (x > x1) x1 = x;
    if (y < y0) y0 = y;
    if (y > y1) y1 = y;
  }
  return { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
}

export function iou(a: Box, b: Box): number {
  const w = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x);
  const h = Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y);
  if (w <= 0 || h <= 0) return 0;
  const inter = w * h;
  return inter / (a.width * a.height + b.width * b.height - inter);
}

/**
 * The square crop for a union box: the shorter side widened to the longer, `increase` x side
 * added on each side, then moved (not cut) to lie inside the frame; only a square larger than
 * the frame's short side is shrunk to it.
 */
export function squareCrop(
  union: { x0: number; y0: number; x1: number; y1: number },
  increase: number,
  frameWidth: number,
  frameHeight: number,
): Box {
  const side0 = Math.max(union.x1 - union.x0, union.y1 - union.y0);
  const side = Math.min(Math.round(side0 * (1 + 2 * increase)), frameWidth, frameHeight);
  const centreX = (union.x0 + union.x1) / 2;
  const centreY = (union.y0 + union.y1) / 2;
  const x = Math.min(Math.max(0, Math.round(centreX - side / 2)), frameWidth - side);
  const y = Math.min(Math.max(0, Math.round(centreY - side / 2)), frameHeight - side);
  return { x, y, width: side, height: side };
}

function positive(value: number, name: string, integer: boolean): number {
  if (!(Number.isFinite(value) && value >= 0 && (!integer || Number.isInteger(value)))) {
    throw new ReenactError(
      'BAD_ARGUMENT',
      `${name} must be ${integer ? 'a whole number' : 'a number'} of 0 or more, not ${value}.`,
      `Check the ${name} option.`,
    );
  }
  return value;
}

/**
 * Finds the faces that stay in place long enough to animate from, as the FOMM authors'
 * crop-video.py does, but streamed: frames are decoded small (long side <= maxSide), faces found
 * on every stride-th frame (each as its landmark extent, see meshBox), and each box joins the open track whose first box it overlaps
 * best (IoU > iouThreshold) or starts a new one. A track ends when it misses more than maxMissed
 * detection passes in a row. Tracks of at least minFrames frames are returned, earliest first,
 * each with a square crop in source pixels.
 */
export async function findFaceTracks(
  path: string,
  analyzer: FaceAnalyzer,
  options: TrackOptions = {},
): Promise<FaceTrack[]> {
  const maxSide = positive(options.maxSide ?? 640, 'maxSide', true);
  const iouThreshold = positive(options.iouThreshold ?? 0.25, 'iouThreshold', false);
  const increase = positive(options.increase ?? 0.1, 'increase', false);
  const stride = Math.max(1, positive(options.stride ?? 1, 'stride', true));
  const maxMissed = positive(options.maxMissed ?? 2, 'maxMissed', true);
  const minFramesOption = positive(options.minFrames ?? DEFAULT_MIN_FRAMES, 'minFrames', true);

  const opened = await openVideo(path, { signal: options.signal });
  try {
    const { info } = opened;
    const scale = Math.min(1, maxSide / Math.max(info.width, info.height));
    const width = Math.max(2, Math.round(info.width * scale));
    const height = Math.max(2, Math.round(info.height * scale));
    const toSourceX = info.width / width;
    const toSourceY = info.height / height;

    const open: OpenTrack[] = [];
    const closed: OpenTrack[] = [];
    let frameCount = 0;
    for await (const frame of decodeVideo(opened.path, { width, height, info, signal: options.signal })) {
      frameCount = frame.index + 1;
      options.onProgress?.({ stage: 'track', done: frameCount, total: info.frameCount || undefined });
      if (frame.index % stride !== 0) continue;
      const boxes = (await analyzer.detect(frame)).map((face) => {
        const box = meshBox(face);
        return {
          x: box.x * toSourceX,
          y: box.y * toSourceY,
          width: box.width * toSourceX,
          height: box.height * toSourceY,
        };
      });
      const matched = new Set<OpenTrack>();
      for (const box of boxes) {
        let best: OpenTrack | undefined;
        let bestOverlap = iouThreshold;
        for (const track of open) {
          const overlap = iou(track.first, box);
          if (overlap > bestOverlap && !matched.has(track)) {
            best = track;
            bestOverlap = overlap;
          }
        }
        if (!best) {
          const track = {
            first: box,
            x0: box.x,
            y0: box.y,
            x1: box.x + box.width,
            y1: box.y + box.height,
            start: frame.index,
            last: frame.index,
            missed: 0,
          };
          open.push(track);
          matched.add(track);
          continue;
        }
        matched.add(best);
        best.last = frame.index;
        best.missed = 0;
        best.x0 = Math.min(best.x0, box.x);
        best.y0 = Math.min(best.y0, box.y);
        best.x1 = Math.max(best.x1, box.x + box.width);
        best.y1 = Math.max(best.y1, box.y + box.height);
      }
      for (let i = open.length - 1; i >= 0; i--) {
        const track = open[i]!;
        if (matched.has(track)) continue;
        track.missed++;
        if (track.missed > maxMissed) closed.push(...open.splice(i, 1));
      }
    }
    closed.push(...open);

    const minFrames = Math.min(minFramesOption, frameCount);
    const fps = info.fps;
    return closed
      .map((track) => {
        const end = Math.min(track.last + stride, frameCount);
        return {
          start: track.start,
          end,
          startTime: track.start / fps,
          endTime: end / fps,
          box: squareCrop(track, increase, info.width, info.height),
          frames: end - track.start,
        };
      })
      .filter((track) => track.frames >= minFrames)
      .sort((a, b) => a.start - b.start || b.frames - a.frames);
  } finally {
    await opened.cleanup();
  }
}

/** The longest track (the earliest among equals); NO_TRACK when there is none. */
export function longestTrack(tracks: FaceTrack[], source: string, minFrames: number): FaceTrack {
  if (tracks.length === 0) {
    throw new ReenactError(
      'NO_TRACK',
      `no face stays in view for ${minFrames} frames in ${source}.`,
      'Use a driving video where one face is visible and roughly in place throughout, or lower `minFrames`.',
    );
  }
  return tracks.reduce((best, track) => (track.frames > best.frames ? track : best));
}

/** Writes the tracks, with the video they belong to, as JSON (atomically). */
export async function writeTracksJson(
  path: string,
  info: VideoInfo,
  tracks: FaceTrack[],
  options: { signal?: AbortSignal } = {},
): Promise<void> {
  const document = {
    video: {
      path: info.path,
      width: info.width,
      height: info.height,
      fps: info.fps,
      frameCount: info.frameCount,
      duration: info.duration,
    },
    tracks,
  };
  await writeAtomically(
    path,
    (tempPath) => writeFile(tempPath, `${JSON.stringify(document, null, 2)}\n`),
    options.signal,
  );
}
