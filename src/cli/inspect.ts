import type { Command } from 'commander';
import sharp from 'sharp';
import { findFaceTracks, type FaceTrack } from '../driving/tracks.js';
import { ReenactError } from '../errors.js';
import { type Face, FaceAnalyzer } from '../face/detector.js';
import { eyeCentres, landmark, LANDMARKS, rollDegrees } from '../face/landmarks.js';
import { decodeVideo } from '../media/decode.js';
import { assertFile, readImage } from '../media/image.js';
import { probeVideo, type VideoInfo } from '../media/probe.js';
import { writeAtomically } from '../output.js';
import type { Box, Point, RgbImage } from '../types.js';
import { integerIn, printJson } from './options.js';
import { progressBar } from './progress.js';

interface InspectOptions {
  json?: boolean;
  debug?: string;
  tracks: boolean;
  minFrames?: number;
  stride?: number;
}

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

export function faceReport(face: Face, index: number): FaceReport {
  return { index, box: face.box, score: face.score, roll: rollDegrees(face), eyes: eyeCentres(face), noseTip: landmark(face, LANDMARKS.noseTip) };
}

export function addInspectCommand(program: Command, signal: AbortSignal): void {
  program
    .command('inspect')
    .description('Show the faces in a photo (boxes, scores, roll), or a video\'s properties, its first frame\'s faces and its face tracks.')
    .argument('<file>', 'a photo or a video')
    .option('--json', 'print the report as JSON on stdout')
    .option('--debug <out.png>', 'write a PNG with the face boxes, eye centres and nose tips drawn (for a video: its first frame, with the track crops)')
    .option('--no-tracks', 'for a video: skip the face-track pass over every frame')
    .option('--min-frames <n>', 'for a video: shortest face track listed, in frames (default 150, or the whole clip if shorter)', integerIn(1, 10_000_000))
    .option('--stride <n>', 'for a video: detect faces on every Nth frame only (faster)', integerIn(1, 1000))
    .addHelpText('after', '\nExamples:\n  reenact inspect portrait.jpg --debug faces.png\n  reenact inspect driving.mp4 --json > report.json')
    .action(async (file: string, options: InspectOptions) => {
      await inspect(file, options, signal);
    });
}

async function inspect(file: string, options: InspectOptions, signal: AbortSignal): Promise<void> {
  await assertFile(file);
  const isImage = await sharp(file, { limitInputPixels: false })
    .metadata()
    .then((metadata) => metadata.width !== undefined)
    .catch(() => false);
  if (isImage) {
    const image = await readImage(file);
    const analyzer = await FaceAnalyzer.create();
    const faces = await analyzer.detect(image);
    const report = { file, kind: 'image' as const, width: image.width, height: image.height, faces: faces.map(faceReport) };
    if (options.debug) await writeDebugImage(options.debug, image, faces, [], signal);
    if (options.json) printJson(report);
    else printImageReport(report);
    return;
  }

  const info = await probeVideo(file).catch((error: unknown) => {
    if (error instanceof ReenactError && error.code === 'NOT_MEDIA') {
      throw new ReenactError('NOT_MEDIA', `${file} is neither an image nor a video reenact can read.`, 'Give a photo (JPEG, PNG, WebP, HEIC) or a video (MP4, MOV, WebM, MKV).', { cause: error });
    }
    throw error;
  });
  let first: RgbImage | undefined;
  for await (const frame of decodeVideo(file, { duration: 1, signal })) {
    first = frame;
    break;
  }
  if (!first) throw new ReenactError('NO_FRAMES', `No frame could be decoded from ${file}.`, 'Check that the video plays in a video player; export it again if not.');
  const analyzer = await FaceAnalyzer.create();
  const faces = await analyzer.detect(first);
  let tracks: FaceTrack[] | undefined;
  if (options.tracks) {
    const progress = progressBar();
    try {
      tracks = await findFaceTracks(file, analyzer, { minFrames: options.minFrames, stride: options.stride, onProgress: progress, signal });
    } finally {
      progress.finish();
    }
  }
  const report = { file, kind: 'video' as const, video: info, firstFrame: { faces: faces.map(faceReport) }, ...(tracks ? { tracks } : {}) };
  if (options.debug) await writeDebugImage(options.debug, first, faces, tracks ?? [], signal);
  if (options.json) printJson(report);
  else printVideoReport(report.video, report.firstFrame.faces, tracks);
}

function formatFace(face: FaceReport): string {
  const { box } = face;
  return `  face ${face.index}: box ${box.x.toFixed(0)},${box.y.toFixed(0)} ${box.width.toFixed(0)}x${box.height.toFixed(0)}, score ${face.score.toFixed(2)}, roll ${face.roll.toFixed(1)} deg`;
}

function printImageReport(report: { file: string; width: number; height: number; faces: FaceReport[] }): void {
  const lines = [`${report.file}: image ${report.width}x${report.height}, ${report.faces.length} face${report.faces.length === 1 ? '' : 's'}`];
  lines.push(...report.faces.map(formatFace));
  if (report.faces.length === 0) lines.push('  no face found: use a photo where the face is clearly visible, frontal, well lit, at least ~80 px wide');
  process.stdout.write(`${lines.join('\n')}\n`);
}

function printVideoReport(info: VideoInfo, faces: FaceReport[], tracks: FaceTrack[] | undefined): void {
  const audio = info.hasAudio ? `audio ${info.audioCodec ?? 'yes'}` : 'no audio';
  const lines = [
    `${info.path}: video ${info.width}x${info.height}, ${info.fps.toFixed(3).replace(/\.?0+$/, '')} fps, ${info.frameCount} frames, ${info.duration.toFixed(2)} s, ${info.videoCodec}, ${audio}${info.rotation ? `, rotated ${info.rotation} deg` : ''}`,
  ];
  if (info.needsRepair) lines.push(`  note: ${info.repairReason ?? 'the container lacks timing'}; reenact repairs it on the fly`);
  lines.push(`  first frame: ${faces.length} face${faces.length === 1 ? '' : 's'}`, ...faces.map((face) => `  ${formatFace(face)}`));
  if (tracks) {
    lines.push(`  face tracks: ${tracks.length}`);
    for (const [i, track] of tracks.entries()) {
      const { box } = track;
      lines.push(
        `    track ${i}: frames ${track.start}-${track.end} (${track.startTime.toFixed(2)}-${track.endTime.toFixed(2)} s, ${track.frames} frames), crop ${box.width}x${box.height} at ${box.x},${box.y}`,
      );
    }
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** The image with each face's box, eye centres and nose tip (and any track crops) drawn on it, as PNG. */
async function writeDebugImage(path: string, image: RgbImage, faces: Face[], tracks: FaceTrack[], signal: AbortSignal): Promise<void> {
  const stroke = Math.max(1, Math.round(Math.max(image.width, image.height) / 300));
  const dot = stroke * 2;
  const shapes: string[] = [];
  for (const track of tracks) {
    const { box } = track;
    shapes.push(`<rect x="${box.x}" y="${box.y}" width="${box.width}" height="${box.height}" fill="none" stroke="#ffcc00" stroke-width="${stroke}" stroke-dasharray="${stroke * 4}"/>`);
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
  await writeAtomically(path, async (tempPath) => {
    await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
      .composite([{ input: Buffer.from(svg), top: 0, left: 0 }])
      .png()
      .toFile(tempPath);
  }, signal);
}
