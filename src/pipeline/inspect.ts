import sharp from 'sharp';
import { findFaceTracks, type FaceTrack } from '../driving/tracks.js';
import { ReenactError } from '../errors.js';
import { decodeVideo } from '../media/decode.js';
import { assertFile, readImage } from '../media/image.js';
import { probeVideo, type VideoInfo } from '../media/probe.js';
import { writeAtomically } from '../output.js';
import type { Box, Point, ProgressCallback, RgbImage } from '../types.js';
import { type Face, FaceAnalyzer } from '../face/detector.js';
import { eyeCentres, landmark, LANDMARKS, rollDegrees } from '../face/landmarks.js';

/** What inspect reports about one face. */
export interface FaceReport {
  index: number;
  box: Box;
  score: number;
  /** Head roll in degrees (positive: clockwise). */
  roll: number;
  eyes: { imageLeft: Point; imageRight: Point };
  noseTip: Point;
}

export interface ImageReport {
  file: string;
  kind: 'image';
  width: number;
  height: number;
  faces: FaceReport[];
}

export interface VideoReport {
  file: string;
  kind: 'video';
  video: VideoInfo;
  firstFrame: { faces: FaceReport[] };
  /** The face tracks over every frame, unless `tracks: false`. */
  tracks?: FaceTrack[];
}

export interface InspectOptions {
  /** For a video: find the face tracks over every frame. Default true. */
  tracks?: boolean;
  /** For a video: shortest face track listed, in frames (see findFaceTracks). */
  minFrames?: number;
  /** For a video: detect faces on every Nth frame only. */
  stride?: number;
  /** Also write a PNG here with the faces (and any track crops) drawn on the image or first frame. */
  debugImage?: string;
  /** A loaded analyzer to use; default: one made for this call. */
  analyzer?: FaceAnalyzer;
  signal?: AbortSignal;
  onProgress?: ProgressCallback<'track'>;
}

export function faceReport(face: Face, index: number): FaceReport {
  return {
    index,
    box: face.box,
    score: face.score,
    roll: rollDegrees(face),
    eyes: eyeCentres(face),
    noseTip: landmark(face, LANDMARKS.noseTip),
  };
}

/**
 * What `reenact inspect` shows: for a photo, its size and faces (box, score, roll, eyes, nose
 * tip); for a video, its properties, the faces of its first frame and its face tracks.
 */
export async function inspectMedia(file: string, options: InspectOptions = {}): Promise<ImageReport | VideoReport> {
  const { signal } = options;
  await assertFile(file);
  const isImage = await sharp(file, { limitInputPixels: false })
    .metadata()
    .then((metadata) => metadata.width !== undefined)
    .catch(() => false);
  if (isImage) {
    const image = await readImage(file);
    const analyzer = options.analyzer ?? (await FaceAnalyzer.create());
    const faces = await analyzer.detect(image);
    if (options.debugImage) await writeDebugImage(options.debugImage, image, faces, [], signal);
    return { file, kind: 'image', width: image.width, height: image.height, faces: faces.map(faceReport) };
  }

  const info = await probeVideo(file).catch((error: unknown) => {
    if (error instanceof ReenactError && error.code === 'NOT_MEDIA') {
      throw new ReenactError(
        'NOT_MEDIA',
        `${file} is neither an image nor a video reenact can read.`,
        'Give a photo (JPEG, PNG, WebP, HEIC) or a video (MP4, MOV, WebM, MKV).',
        { cause: error },
      );
    }
    throw error;
  });
  let first: RgbImage | undefined;
  for await (const frame of decodeVideo(file, { duration: 1, signal })) {
    first = frame;
    break;
  }
  if (!first)
    throw new ReenactError(
      'NO_FRAMES',
      `No frame could be decoded from ${file}.`,
      'Check that the video plays in a video player; export it again if not.',
    );
  const analyzer = options.analyzer ?? (await FaceAnalyzer.create());
  const faces = await analyzer.detect(first);
  const tracks =
    options.tracks === false
      ? undefined
      : await findFaceTracks(file, analyzer, {
          minFrames: options.minFrames,
          stride: options.stride,
          onProgress: options.onProgress,
          signal,
        });
  if (options.debugImage) await writeDebugImage(options.debugImage, first, faces, tracks ?? [], signal);
  return {
    file,
    kind: 'video',
    video: info,
    firstFrame: { faces: faces.map(faceReport) },
    ...(tracks ? { tracks } : {}),
  };
}

/** The image with each face's box, eye centres and nose tip (and any track crops) drawn on it, as PNG. */
async function writeDebugImage(
  path: string,
  image: RgbImage,
  faces: Face[],
  tracks: FaceTrack[],
  signal: AbortSignal | undefined,
): Promise<void> {
  const stroke = Math.max(1, Math.round(Math.max(image.width, image.height) / 300));
  const dot = stroke * 2;
  const shapes: string[] = [];
  for (const track of tracks) {
    const { box } = track;
    shapes.push(
      `<rect x="${box.x}" y="${box.y}" width="${box.width}" height="${box.height}" fill="none" stroke="#ffcc00" stroke-width="${stroke}" stroke-dasharray="${stroke * 4}"/>`,
    );
  }
  for (const [index, face] of faces.entries()) {
    const { box } = face;
    const { imageLeft, imageRight } = eyeCentres(face);
    const nose = landmark(face, LANDMARKS.noseTip);
    shapes.push(
      `<rect x="${box.x}" y="${box.y}" width="${box.width}" height="${box.height}" fill="none" stroke="#00ff66" stroke-width="${stroke}"/>`,
      `<line x1="${imageLeft.x}" y1="${imageLeft.y}" x2="${imageRight.x}" y2="${imageRight.y}" stroke="#00ccff" stroke-width="${stroke}"/>`,
      `<circle cx="${imageLeft.x}" cy="${imageLeft.y}" r="${dot}" fill="#00ccff"/>`,
      `<circle cx="${imageRight.x}" cy="${imageRight.y}" r="${dot}" fill="#00ccff"/>`,
      `<circle cx="${nose.x}" cy="${nose.y}" r="${dot}" fill="#ff3366"/>`,
      `<text x="${box.x + stroke}" y="${Math.max(stroke * 8, box.y - stroke * 2)}" font-family="sans-serif" font-size="${stroke * 8}" fill="#00ff66">${index}</text>`,
    );
  }
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${image.width}" height="${image.height}">${shapes.join('')}</svg>`;
  await writeAtomically(
    path,
    async (tempPath) => {
      await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
        .composite([{ input: Buffer.from(svg), top: 0, left: 0 }])
        .png()
        .toFile(tempPath);
    },
    signal,
  );
}
