import { rm } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import type { Command } from 'commander';
import { cropDrivingVideo, type CroppedVideo } from '../driving/crop.js';
import { DEFAULT_MIN_FRAMES, findFaceTracks, type FaceTrack, longestTrack, writeTracksJson } from '../driving/tracks.js';
import { FaceAnalyzer } from '../face/detector.js';
import { probeVideo } from '../media/probe.js';
import { PendingOutput } from '../output.js';
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

/** Output path of the nth track (1-based) with --all: crop.mp4 -> crop-1.mp4. */
function numbered(path: string, n: number): string {
  const ext = extname(path);
  return join(dirname(path), `${basename(path, ext)}-${n}${ext}`);
}

export function addCropVideoCommand(program: Command, signal: AbortSignal): void {
  program
    .command('crop-video')
    .description('Cut a driving video to a square clip around the face, as the FOMM models expect (like the FOMM authors\' crop-video.py), keeping the audio in sync.')
    .argument('<video>', 'the driving video')
    .requiredOption('-o, --output <file.mp4>', 'where to write the cropped clip')
    .option('--size <px>', 'side of the output clip in pixels (even)', evenIn(16, 4096), 256)
    .option('--json <tracks.json>', 'also write the face tracks found (frames, times, crop boxes) as JSON')
    .option('--min-frames <n>', `shortest face track used, in frames (default ${DEFAULT_MIN_FRAMES}, or the whole clip if shorter)`, integerIn(1, 10_000_000))
    .option('--increase <f>', 'margin added on each side, as a fraction of the side of the area the face moves in', numberIn(0, 2), 0.1)
    .option('--stride <n>', 'detect faces on every Nth frame only (faster on long videos)', integerIn(1, 1000), 1)
    .option('--all', 'when there are several face tracks, write each: crop-1.mp4, crop-2.mp4, ... in time order (default: only the longest, to --output)')
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
      // Fail on an unusable input or output folder before the long detection pass.
      const info = await probeVideo(video);
      for (const path of [options.output, options.json]) if (path) await (await PendingOutput.create(path)).discard();
      const analyzer = await FaceAnalyzer.create();
      const progress = progressBar();
      const written: string[] = [];
      try {
        const tracks = await findFaceTracks(video, analyzer, { minFrames: options.minFrames, increase: options.increase, stride: options.stride, onProgress: progress, signal });
        const minFrames = Math.min(options.minFrames ?? DEFAULT_MIN_FRAMES, info.frameCount || Infinity);
        const chosen: [FaceTrack, string][] = options.all && tracks.length > 1
          ? tracks.map((track, i) => [track, numbered(options.output, i + 1)])
          : [[longestTrack(tracks, video, minFrames), options.output]];
        const results: CroppedVideo[] = [];
        for (const [track, output] of chosen) {
          results.push(await cropDrivingVideo(video, track, output, { size: options.size, onProgress: progress, signal }));
          written.push(output);
        }
        if (options.json) await writeTracksJson(options.json, info, tracks, { signal });
        progress.finish();
        for (const [i, result] of results.entries()) {
          const track = chosen[i]![0];
          process.stdout.write(
            `${result.path}: ${result.size}x${result.size}, ${result.frames} frames (${track.startTime.toFixed(2)}-${track.endTime.toFixed(2)} s), ${result.hasAudio ? 'with audio' : 'no audio'}; crop ${track.box.width}x${track.box.height} at ${track.box.x},${track.box.y}\n`,
          );
        }
        if (tracks.length > chosen.length) process.stdout.write(`(${tracks.length} face tracks found; --all writes each of them)\n`);
      } catch (error) {
        progress.finish();
        // All or nothing: clips already written by this run are removed too.
        await Promise.all(written.map((path) => rm(path, { force: true })));
        throw error;
      }
    });
}
