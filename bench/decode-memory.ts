/**
 * Decoding memory benchmark: streams a long 1080p30 clip through decodeVideo, at full size and
 * with a crop + scale to 256x256, sampling the process RSS every 200 ms. The goal is a peak RSS
 * under 400 MB whatever the clip's length (frames must stream, never pile up).
 *
 *   npm run bench:decode                 # 10-minute clip (made once, cached in the temp folder)
 *   BENCH_SECONDS=60 npm run bench:decode  # a shorter clip for a quick look
 *
 * Prints one JSON line per pass: frames, seconds, fps, peakRssMB.
 */
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeVideo, type DecodeOptions } from '../src/media/decode.js';
import { runFfmpeg } from '../src/media/ffmpeg.js';
import { probeVideo } from '../src/media/probe.js';
import { writeAtomically } from '../src/output.js';

const seconds = Number(process.env.BENCH_SECONDS ?? 600);
const source = process.env.REENACT_SHARED
  ? join(process.env.REENACT_SHARED, 'fixtures', 'driving-talking.mp4')
  : resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'shared', 'fixtures', 'driving-talking.mp4');
const clip = join(tmpdir(), `reenact-bench-decode-${seconds}s-1080p30.mp4`);

/** One loop of the fixture at 1080p, then stream-copied end to end: minutes of video without minutes of encoding. */
async function makeClip(): Promise<void> {
  if (existsSync(clip)) return;
  console.error(`making ${clip} (${seconds} s of 1080p30 looped from ${source}; once, then cached)...`);
  const loopSeconds = (await probeVideo(source)).duration;
  await writeAtomically(join(tmpdir(), 'reenact-bench-decode-loop-1080p30.mp4'), (loop) =>
    runFfmpeg(
      [
        '-y',
        '-i',
        source,
        '-vf',
        'scale=1920:1080:flags=bilinear',
        '-r',
        '30',
        '-c:v',
        'libx264',
        '-preset',
        'ultrafast',
        '-crf',
        '23',
        '-pix_fmt',
        'yuv420p',
        '-c:a',
        'aac',
        '-b:a',
        '128k',
        '-f',
        'mp4',
        loop,
      ],
      'making one loop of the benchmark clip',
    ).then(() =>
      writeAtomically(clip, (tempPath) =>
        runFfmpeg(
          [
            '-y',
            '-stream_loop',
            String(Math.ceil(seconds / loopSeconds)),
            '-i',
            loop,
            '-t',
            String(seconds),
            '-c',
            'copy',
            '-movflags',
            '+faststart',
            '-f',
            'mp4',
            tempPath,
          ],
          'looping the benchmark clip',
        ),
      ),
    ),
  );
}

const mb = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;

async function measure(name: string, options: DecodeOptions): Promise<number> {
  let peak = process.memoryUsage().rss;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 200);
  const started = performance.now();
  let frames = 0;
  let checksum = 0;
  try {
    for await (const frame of decodeVideo(clip, options)) {
      // Touch the pixels as a real consumer would, so nothing is optimised away.
      checksum = (checksum + frame.data[frame.data.length >> 1]!) & 0xffff;
      frames++;
    }
  } finally {
    clearInterval(sampler);
  }
  peak = Math.max(peak, process.memoryUsage().rss);
  const elapsed = (performance.now() - started) / 1000;
  console.log(
    JSON.stringify({
      bench: 'decode-memory',
      pass: name,
      clip: `${seconds}s 1920x1080 30fps`,
      frames,
      seconds: Math.round(elapsed * 10) / 10,
      fps: Math.round((frames / elapsed) * 10) / 10,
      peakRssMB: mb(peak),
      checksum,
    }),
  );
  return peak;
}

await makeClip();
const info = await probeVideo(clip);
const full = await measure('full 1920x1080', { info });
const cropped = await measure('crop 1080x1080 -> 256x256', {
  info,
  crop: { x: 420, y: 0, width: 1080, height: 1080 },
  width: 256,
  height: 256,
});
const peakRssMB = mb(Math.max(full, cropped));
console.log(JSON.stringify({ bench: 'decode-memory', peakRssMB, goalMB: 400, underGoal: peakRssMB < 400 }));
