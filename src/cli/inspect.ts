import type { Command } from 'commander';
import type { FaceTrack } from '../driving/tracks.js';
import type { VideoInfo } from '../media/probe.js';
import { inspectMedia, type FaceReport, type ImageReport } from '../pipeline/inspect.js';
import { integerIn, printJson } from './options.js';
import { progressBar } from './progress.js';

interface InspectOptions {
  json?: boolean;
  debug?: string;
  tracks: boolean;
  minFrames?: number;
  stride?: number;
}

export function addInspectCommand(program: Command, signal: AbortSignal): void {
  program
    .command('inspect')
    .description(
      "Show the faces in a photo (boxes, scores, roll), or a video's properties, its first frame's faces and its face tracks.",
    )
    .argument('<file>', 'a photo or a video')
    .option('--json', 'print the report as JSON on stdout')
    .option(
      '--debug <out.png>',
      'write a PNG with the face boxes, eye centres and nose tips drawn (for a video: its first frame, with the track crops)',
    )
    .option('--no-tracks', 'for a video: skip the face-track pass over every frame')
    .option(
      '--min-frames <n>',
      'for a video: shortest face track listed, in frames (default 150, or the whole clip if shorter)',
      integerIn(1, 10_000_000),
    )
    .option('--stride <n>', 'for a video: detect faces on every Nth frame only (faster)', integerIn(1, 1000))
    .addHelpText(
      'after',
      '\nExamples:\n  reenact inspect portrait.jpg --debug faces.png\n  reenact inspect driving.mp4 --json > report.json',
    )
    .action(async (file: string, options: InspectOptions) => {
      await inspect(file, options, signal);
    });
}

async function inspect(file: string, options: InspectOptions, signal: AbortSignal): Promise<void> {
  const progress = progressBar();
  try {
    const report = await inspectMedia(file, {
      tracks: options.tracks,
      minFrames: options.minFrames,
      stride: options.stride,
      debugImage: options.debug,
      onProgress: progress,
      signal,
    });
    progress.finish();
    if (options.json) printJson(report);
    else if (report.kind === 'image') printImageReport(report);
    else printVideoReport(report.video, report.firstFrame.faces, report.tracks);
  } finally {
    progress.finish();
  }
}

function formatFace(face: FaceReport): string {
  const { box } = face;
  return `  face ${face.index}: box ${box.x.toFixed(0)},${box.y.toFixed(0)} ${box.width.toFixed(0)}x${box.height.toFixed(0)}, score ${face.score.toFixed(2)}, roll ${face.roll.toFixed(1)} deg`;
}

function printImageReport(report: ImageReport): void {
  const lines = [
    `${report.file}: image ${report.width}x${report.height}, ${report.faces.length} face${report.faces.length === 1 ? '' : 's'}`,
  ];
  lines.push(...report.faces.map(formatFace));
  if (report.faces.length === 0)
    lines.push(
      '  no face found: use a photo where the face is clearly visible, frontal, well lit, at least ~80 px wide',
    );
  process.stdout.write(`${lines.join('\n')}\n`);
}

function printVideoReport(info: VideoInfo, faces: FaceReport[], tracks: FaceTrack[] | undefined): void {
  const audio = info.hasAudio ? `audio ${info.audioCodec ?? 'yes'}` : 'no audio';
  const lines = [
    `${info.path}: video ${info.width}x${info.height}, ${info.fps.toFixed(3).replace(/\.?0+$/, '')} fps, ${info.frameCount} frames, ${info.duration.toFixed(2)} s, ${info.videoCodec}, ${audio}${info.rotation ? `, rotated ${info.rotation} deg` : ''}`,
  ];
  if (info.needsRepair)
    lines.push(`  note: ${info.repairReason ?? 'the container lacks timing'}; reenact repairs it on the fly`);
  lines.push(
    `  first frame: ${faces.length} face${faces.length === 1 ? '' : 's'}`,
    ...faces.map((face) => `  ${formatFace(face)}`),
  );
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
