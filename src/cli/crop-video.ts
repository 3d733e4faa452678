import type { Command } from 'commander';
import { cropFaceClips } from '../driving/crop.js';
import { DEFAULT_MIN_FRAMES } from '../driving/tracks.js';
import { evenIn, integerIn, numberIn } from './options.js';
import { progressBar } from './progress.js';

interface CropVideoOptions {
  output: string;
  size: number;
  json?: string;
  minFrames?: number;
  increase: number;
  stride: number;
  all?: boolean;
}

export function addCropVideoCommand(program: Command, signal: AbortSignal): void {
  program
    .command('crop-video')
    .description(
      "Cut a driving video to a square clip around the face, as the FOMM models expect (like the FOMM authors' crop-video.py), keeping the audio in sync.",
    )
    .argument('<video>', 'the driving video')
    .requiredOption('-o, --output <file.mp4>', 'where to write the cropped clip')
    .option('--size <px>', 'side of the output clip in pixels (even)', evenIn(16, 4096), 256)
    .option('--json <tracks.json>', 'also write the face tracks found (frames, times, crop boxes) as JSON')
    .option(
      '--min-frames <n>',
      `shortest face track used, in frames (default ${DEFAULT_MIN_FRAMES}, or the whole clip if shorter)`,
      integerIn(1, 10_000_000),
    )
    .option(
      '--increase <f>',
      'margin added on each side, as a fraction of the side of the area the face moves in',
      numberIn(0, 2),
      0.1,
    )
    .option('--stride <n>', 'detect faces on every Nth frame only (faster on long videos)', integerIn(1, 1000), 1)
    .option(
      '--all',
      'when there are several face tracks, write each: crop-1.mp4, crop-2.mp4, ... in time order (default: only the longest, to --output)',
    )
    .addHelpText(
      'after',
      `
A face track is a stretch of frames where one face stays roughly in place (each detection overlaps
the track's first box); the crop is the square around all of its boxes. When the video holds several
tracks (a cut, a second person), the longest is written unless --all is given.

Examples:
  reenact crop-video talk.mp4 -o driving.mp4
  reenact crop-video interview.mp4 -o speaker.mp4 --all --json tracks.json`,
    )
    .action(async (video: string, options: CropVideoOptions) => {
      const progress = progressBar();
      try {
        const { tracks, clips } = await cropFaceClips(video, options.output, {
          size: options.size,
          minFrames: options.minFrames,
          increase: options.increase,
          stride: options.stride,
          all: options.all,
          tracksJson: options.json,
          onProgress: progress,
          signal,
        });
        progress.finish();
        for (const { track, video: clip } of clips) {
          process.stdout.write(
            `${clip.path}: ${clip.size}x${clip.size}, ${clip.frames} frames (${track.startTime.toFixed(2)}-${track.endTime.toFixed(2)} s), ${clip.hasAudio ? 'with audio' : 'no audio'}; crop ${track.box.width}x${track.box.height} at ${track.box.x},${track.box.y}\n`,
          );
        }
        if (tracks.length > clips.length)
          process.stdout.write(`(${tracks.length} face tracks found; --all writes each of them)\n`);
      } finally {
        progress.finish();
      }
    });
}
