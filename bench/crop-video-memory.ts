/**
 * Memory of the driving-video path on a long clip: findFaceTracks then cropDrivingVideo over a
 * 10-minute 1080p video, sampling peak RSS of this process (and of it plus its ffmpeg children).
 * Target: under 400 MB for the process. Prints one JSON line.
 *
 *   npm run bench:crop [-- --stride N] [--minutes M]
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { cropDrivingVideo } from '../src/driving/crop.js';
import { findFaceTracks, longestTrack } from '../src/driving/tracks.js';
import { FaceAnalyzer } from '../src/face/detector.js';
import { runFfmpeg } from '../src/media/ffmpeg.js';
import { probeVideo } from '../src/media/probe.js';
import { writeAtomically } from '../src/output.js';
import type { ProgressEvent } from '../src/types.js';
import { shared } from '../test/shared.js';

const { values } = parseArgs({
  options: { stride: { type: 'string', default: '5' }, minutes: { type: 'string', default: '10' } },
});
const stride = Number(values.stride);
const minutes = Number(values.minutes);

/**
 * A 1080p clip of the given length in the temp folder (made once, then reused): the talking-head
 * fixture looped, enlarged and placed off-centre, with its audio; a test pattern without ../shared.
 */
async function longClip(seconds: number): Promise<string> {
  const path = join(tmpdir(), `reenact-bench-crop-${seconds}s-1080p.mp4`);
  if (existsSync(path)) return path;
  const driving = shared('fixtures', 'driving-talking.mp4');
  const input = existsSync(driving)
    ? ['-stream_loop', '-1', '-i', driving, '-vf', 'scale=640:640,pad=1920:1080:900:220:color=0x405060', '-c:a', 'aac']
    : ['-f', 'lavfi', '-i', 'testsrc2=size=1920x1080:rate=30', '-an'];
  // Made under a temporary name so an interrupted run never leaves a short clip to be reused.
  await writeAtomically(path, (tempPath) =>
    runFfmpeg(
      [
        '-y',
        ...input,
        '-t',
        String(seconds),
        '-r',
        '30',
        '-c:v',
        'libx264',
        '-preset',
        'ultrafast',
        '-crf',
        '23',
        tempPath,
      ],
      'making the benchmark clip',
    ),
  );
  return path;
}

/** Resident set size in MB of a process, from /proc (0 if it is gone). */
function rssOf(pid: number): number {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** This process's child processes (ffmpeg), from /proc. */
function childPids(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid) pids.push(Number(entry));
    } catch {
      // Exited while listing.
    }
  }
  return pids;
}

const clip = await longClip(minutes * 60);
const info = await probeVideo(clip);
const analyzer = await FaceAnalyzer.create();

let peakRss = 0;
let peakWithChildren = 0;
const hasProc = existsSync('/proc/self/status');
const sample = () => {
  const rss = process.memoryUsage.rss() / 1024 ** 2;
  peakRss = Math.max(peakRss, rss);
  if (hasProc)
    peakWithChildren = Math.max(peakWithChildren, rss + childPids().reduce((sum, pid) => sum + rssOf(pid), 0));
};
const timer = setInterval(sample, 200);

const trackStart = performance.now();
/** A line on stderr every 1000 frames, to follow a long run. */
const report = (event: ProgressEvent) => {
  if (event.done % 1000 === 0)
    process.stderr.write(
      `${event.stage} ${event.done}/${event.total ?? '?'} rss ${Math.round(process.memoryUsage.rss() / 1024 ** 2)} MB\n`,
    );
};
const tracks = await findFaceTracks(clip, analyzer, { stride, onProgress: report });
const trackSeconds = (performance.now() - trackStart) / 1000;
const trackPeak = peakRss;

const output = join(tmpdir(), `reenact-bench-crop-${process.pid}.mp4`);
const cropStart = performance.now();
const track = longestTrack(tracks, clip, 150);
const cropped = await cropDrivingVideo(clip, track, output, { onProgress: report });
const cropSeconds = (performance.now() - cropStart) / 1000;
sample();
clearInterval(timer);
await rm(output, { force: true });

console.log(
  JSON.stringify({
    bench: 'crop-video-memory',
    video: `${info.width}x${info.height} ${info.fps} fps`,
    frames: info.frameCount,
    seconds: info.duration,
    stride,
    tracks: tracks.length,
    trackFrames: track.frames,
    croppedFrames: cropped.frames,
    trackPassSeconds: Number(trackSeconds.toFixed(1)),
    trackPassFps: Number((info.frameCount / trackSeconds).toFixed(1)),
    cropPassSeconds: Number(cropSeconds.toFixed(1)),
    cropPassFps: Number((cropped.frames / cropSeconds).toFixed(1)),
    peakRssMB: Math.round(peakRss),
    peakRssTrackPassMB: Math.round(trackPeak),
    peakRssWithFfmpegMB: hasProc ? Math.round(peakWithChildren) : undefined,
    targetMB: 400,
    withinTarget: peakRss < 400,
  }),
);
