/**
 * The watermark benchmark. Prints markdown tables:
 *
 *   robustness       animate outputs made from the shared fixtures, each attacked (ffmpeg) alone
 *                    and all together, then checked: detected, score, false-positive probability,
 *                    coded bits read right (of 186) and payload bits decoded right (of 56), payload exact.
 *   single-frames    single frames of the same outputs, saved as PNG, each checked on its own (the
 *                    weaker still-image test: no motion to cancel the picture).
 *   false-positives  the detector on >= 1000 unmarked clips and frames: the fixtures' frames as
 *                    stills, 2 s windows of the driving clips (as they are, flipped, cropped,
 *                    shifted, halved), re-encoded fixtures, unwatermarked animate outputs, and
 *                    synthetic noise videos. Reports how many were detected and the largest score.
 *   cost             animate (mesh, portrait-outdoor.jpg 586x586 + driving-talking.mp4) with and
 *                    without the watermark, interleaved (A B B A ...), and the embedder alone.
 *
 *   npm run bench:watermark
 *   npm run bench:watermark -- --only robustness --pairs 3
 *   npm run bench:watermark -- --only false-positives --fp-part stills --still-step 2      (in one shell)
 *   npm run bench:watermark -- --only false-positives --fp-part clips --fp-min 510         (in another)
 *
 * Other jobs on the same cores inflate the times: the load average is printed with the cost table.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cropToEven } from '../src/compose/even.js';
import { decodeVideo } from '../src/media/decode.js';
import { runFfmpeg } from '../src/media/ffmpeg.js';
import { readImage } from '../src/media/image.js';
import { animate } from '../src/pipeline/animate.js';
import { WatermarkDetector } from '../src/provenance/detect.js';
import { WatermarkEmbedder } from '../src/provenance/embed.js';
import { convolutionalEncode } from '../src/provenance/code.js';
import { FORMAT_VERSION, encodePayload, newContentId } from '../src/provenance/payload.js';
import { checkWatermark } from '../src/provenance/verify.js';
import type { RgbImage } from '../src/types.js';
import { cpuMs } from './cpu.js';

const { values } = parseArgs({
  options: {
    only: { type: 'string', default: 'robustness,single-frames,false-positives,cost' },
    pairs: { type: 'string', default: '3' },
    // The false-positive set split for two processes: stills (fixture frames, photos) or clips (the rest); every Nth fixture frame as a still; the count the noise videos fill up to.
    'fp-part': { type: 'string', default: 'stills,clips' },
    'still-step': { type: 'string', default: '1' },
    'fp-min': { type: 'string', default: '1000' },
  },
});
const fpParts = new Set(values['fp-part']!.split(','));
const stillStep = Number(values['still-step']);
const parts = new Set(values.only!.split(','));
const sharedDir = process.env.REENACT_SHARED ?? resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'shared');
const fixture = (name: string) => join(sharedDir, 'fixtures', name);
const folder = await mkdtemp(join(tmpdir(), 'reenact-bench-watermark-'));
const load = () => loadavg()[0]!.toFixed(2);

/** Sources and drivers of the benchmark's outputs. */
const CASES = [
  { name: 'outdoor+talking', source: 'portrait-outdoor.jpg', driving: 'driving-talking.mp4' },
  { name: 'old-photo+eyes', source: 'portrait-old-photo.jpg', driving: 'driving-eyes.mp4' },
  { name: 'studio+head-turns', source: 'portrait-studio.png', driving: 'driving-head-turns.mp4' },
];

const CROP = 'crop=trunc(iw*0.4)*2:trunc(ih*0.4)*2:iw*0.1:ih*0.1';
const HALF = 'scale=trunc(iw/4)*2:trunc(ih/4)*2:flags=area';
/** Brightness +10%: luma scaled by 1.1 (highlights clip). */
const BRIGHT = 'lutyuv=y=clip(val*1.1\\,0\\,255)';
/** Each attack: input options, output options (the video is re-encoded with libx264 CRF 18 unless it says otherwise). */
const ATTACKS: { name: string; before?: string[]; args: (pixels: number) => string[]; ext?: string }[] = [
  { name: 'none (as written)', args: () => [] },
  { name: 'H.264 CRF 23', args: () => ['-c:v', 'libx264', '-crf', '23'] },
  { name: 'H.264 CRF 28', args: () => ['-c:v', 'libx264', '-crf', '28'] },
  // 2.7 bit/s per pixel: YouTube-like 720p at 2.5 Mbit/s, 0.93 Mbit/s at 586x586.
  {
    name: 'VP9 2.7 bit/px/s',
    args: (pixels) => [
      '-c:v',
      'libvpx-vp9',
      '-b:v',
      String(Math.round(pixels * 2.7)),
      '-deadline',
      'good',
      '-cpu-used',
      '5',
      '-row-mt',
      '1',
    ],
    ext: 'webm',
  },
  { name: 'downscale 0.5x', args: () => ['-vf', HALF, '-c:v', 'libx264', '-crf', '18'] },
  { name: 'crop 10% each side', args: () => ['-vf', CROP, '-c:v', 'libx264', '-crf', '18'] },
  { name: '2 s excerpt (from 3 s)', before: ['-ss', '3'], args: () => ['-t', '2', '-c:v', 'libx264', '-crf', '18'] },
  { name: 'brightness +10%', args: () => ['-vf', BRIGHT, '-c:v', 'libx264', '-crf', '18'] },
  {
    name: 'all: 2 s, crop, 0.5x, +10%, CRF 28',
    before: ['-ss', '3'],
    args: () => ['-t', '2', '-vf', `${CROP},${HALF},${BRIGHT}`, '-c:v', 'libx264', '-crf', '28'],
  },
  {
    name: 'all but crop: 2 s, 0.5x, +10%, CRF 28',
    before: ['-ss', '3'],
    args: () => ['-t', '2', '-vf', `${HALF},${BRIGHT}`, '-c:v', 'libx264', '-crf', '28'],
  },
];

/** The payload's 56 bits and its 186 coded bits, as an output with this content id carries them. */
function truthBits(contentId: string): { bits: string; coded: string } {
  const bits = encodePayload({ version: FORMAT_VERSION, model: 'mesh', contentId });
  return { bits: bits.join(''), coded: convolutionalEncode(bits).join('') };
}

/** "coded bits read right of 186 -> payload bits decoded right of 56". */
function bitsRead(check: { bits?: string; codedBits?: string }, truth: { bits: string; coded: string }): string {
  const right = (read: string | undefined, want: string) =>
    [...(read ?? '')].filter((bit, i) => bit === want[i]).length;
  return `${right(check.codedBits, truth.coded)}/${truth.coded.length} → ${right(check.bits, truth.bits)}/${truth.bits.length}`;
}

function row(cells: (string | number)[]): string {
  return `| ${cells.join(' | ')} |`;
}

/** Frames of a video in memory (the benchmark's clips are short). */
async function frames(path: string): Promise<{ image: RgbImage; time: number }[]> {
  const out: { image: RgbImage; time: number }[] = [];
  for await (const frame of decodeVideo(path))
    out.push({ image: { width: frame.width, height: frame.height, data: frame.data }, time: frame.time });
  return out;
}

type Transform = { name: string; apply: (image: RgbImage) => RgbImage };

function remap(
  image: RgbImage,
  width: number,
  height: number,
  from: (x: number, y: number) => [number, number],
): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const [sx, sy] = from(x, y);
      const s =
        (Math.min(image.height - 1, Math.max(0, sy)) * image.width + Math.min(image.width - 1, Math.max(0, sx))) * 3;
      data.set(image.data.subarray(s, s + 3), (y * width + x) * 3);
    }
  }
  return { width, height, data };
}

const TRANSFORMS: Transform[] = [
  { name: 'as is', apply: (i) => i },
  { name: 'mirrored', apply: (i) => remap(i, i.width, i.height, (x, y) => [i.width - 1 - x, y]) },
  { name: 'upside down', apply: (i) => remap(i, i.width, i.height, (x, y) => [x, i.height - 1 - y]) },
  {
    name: 'crop 80%',
    apply: (i) =>
      remap(i, Math.round(i.width * 0.8), Math.round(i.height * 0.8), (x, y) => [
        x + Math.round(i.width * 0.1),
        y + Math.round(i.height * 0.1),
      ]),
  },
  { name: 'shifted 7 px', apply: (i) => remap(i, i.width, i.height, (x, y) => [x + 7, y + 7]) },
  { name: 'half size', apply: (i) => remap(i, i.width >> 1, i.height >> 1, (x, y) => [2 * x, 2 * y]) },
];

async function falsePositives(): Promise<void> {
  let items = 0;
  let detected = 0;
  let largest = { score: 0, threshold: 0, what: '' };
  const groups = new Map<string, { count: number; max: number; threshold: number }>();
  const note = (group: string, what: string, check: { detected: boolean; score: number; threshold: number }) => {
    items++;
    if (items % 100 === 0) process.stderr.write(`false positives: ${items} inputs checked\n`);
    if (check.detected) detected++;
    if (check.score / check.threshold > largest.score / Math.max(1e-9, largest.threshold))
      largest = { score: check.score, threshold: check.threshold, what };
    const g = groups.get(group) ?? { count: 0, max: 0, threshold: check.threshold };
    g.count++;
    g.max = Math.max(g.max, check.score);
    groups.set(group, g);
  };
  const detect = (clip: { image: RgbImage; time: number }[]) => {
    const detector = new WatermarkDetector();
    for (const frame of clip) detector.addRgb(frame.image.data, frame.image.width, frame.image.height, frame.time);
    return detector.result();
  };
  const drivers = ['driving-talking.mp4', 'driving-head-turns.mp4', 'driving-eyes.mp4'];
  // Stills: every frame of the driving fixtures; the photos in every transform.
  for (const driver of drivers) {
    const clip = await frames(fixture(driver));
    if (fpParts.has('stills')) {
      for (const [i, frame] of clip.entries())
        if (i % stillStep === 0)
          note('fixture frames as stills', `${driver} frame ${i}`, detect([{ image: frame.image, time: 0 }]));
    }
    if (!fpParts.has('clips')) continue;
    // 2 s windows every second, in every transform.
    const fps = clip.length / (clip.at(-1)!.time + clip[1]!.time);
    for (let start = 0; start + 2 * fps <= clip.length; start += Math.round(fps)) {
      const window = clip.slice(start, start + Math.round(2 * fps));
      for (const t of TRANSFORMS)
        note(
          '2 s windows of the driving clips, transformed',
          `${driver} from frame ${start}, ${t.name}`,
          detect(window.map((f) => ({ image: t.apply(f.image), time: f.time - window[0]!.time }))),
        );
    }
  }
  if (fpParts.has('stills')) {
    for (const photo of [
      'portrait-outdoor.jpg',
      'portrait-old-photo.jpg',
      'portrait-studio.png',
      'cartoon-no-face.jpg',
    ]) {
      const image = cropToEven(await readImage(fixture(photo)));
      for (const t of TRANSFORMS)
        note('photos, transformed', `${photo} ${t.name}`, detect([{ image: t.apply(image), time: 0 }]));
    }
  }
  if (fpParts.has('clips')) await unmarkedClips(note, detect);
  console.log('\n### False positives on unmarked inputs\n');
  console.log(row(['inputs', 'count', 'largest score', 'threshold']));
  console.log(row(['---', '---', '---', '---']));
  for (const [name, g] of groups) console.log(row([name, g.count, g.max.toFixed(2), g.threshold.toFixed(2)]));
  console.log(
    `\n${items} unmarked inputs, ${detected} detected. Largest score relative to its threshold: ${largest.score.toFixed(2)} vs ${largest.threshold.toFixed(2)} (${largest.what}).`,
  );
}

type Check = { detected: boolean; score: number; threshold: number };

/** Re-encoded fixtures, unwatermarked animate outputs and synthetic noise videos, up to --fp-min inputs in all. */
async function unmarkedClips(
  note: (group: string, what: string, check: Check) => void,
  detect: (clip: { image: RgbImage; time: number }[]) => Check,
): Promise<void> {
  const drivers = ['driving-talking.mp4', 'driving-head-turns.mp4', 'driving-eyes.mp4'];
  let items = 0;
  const count = (group: string, what: string, check: Check) => {
    items++;
    note(group, what, check);
  };
  // Re-encoded fixtures, checked from the file as `reenact verify` does.
  for (const driver of drivers) {
    for (const [name, args, ext] of [
      ['crf28', ['-c:v', 'libx264', '-crf', '28'], 'mp4'],
      ['vp9', ['-c:v', 'libvpx-vp9', '-b:v', '700k', '-deadline', 'realtime', '-cpu-used', '8'], 'webm'],
    ] as const) {
      const path = join(folder, `fp-${driver}-${name}.${ext}`);
      await runFfmpeg(['-y', '-i', fixture(driver), ...args, '-an', path], name);
      count('re-encoded driving clips', `${driver} ${name}`, await checkWatermark(path));
    }
  }
  // reenact's own output without the watermark: the same pictures, no mark.
  for (const c of CASES) {
    const output = join(folder, `fp-${c.name}.mp4`);
    await animate({ source: fixture(c.source), driving: fixture(c.driving), output, watermark: false });
    const clip = await frames(output);
    for (const t of TRANSFORMS)
      count(
        'animate --no-watermark outputs, transformed',
        `${c.name} ${t.name}`,
        detect(clip.map((f) => ({ image: t.apply(f.image), time: f.time }))),
      );
  }
  // Synthetic noise videos: white, smooth, and drifting noise, 2 s at 30 fps.
  let seed = 12345;
  const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  for (let n = 0; items < Number(values['fp-min']) || n < 60; n++) {
    const size = [96, 128, 160, 200][n % 4]!;
    const kind = ['white', 'smooth', 'drifting'][n % 3]!;
    const base = Float32Array.from({ length: (size + 64) * (size + 64) }, () => random() * 255);
    const clip = Array.from({ length: 60 }, (_, f) => {
      const data = new Uint8Array(size * size * 3);
      for (let y = 0; y < size; y++) {
        for (let x = 0; x < size; x++) {
          const dx = kind === 'drifting' ? f % 64 : 0;
          let v = kind === 'white' ? random() * 255 : base[y * (size + 64) + x + dx]!;
          if (kind === 'smooth')
            v =
              (v +
                base[(y + 1) * (size + 64) + x]! +
                base[y * (size + 64) + x + 1]! +
                base[(y + 1) * (size + 64) + x + 1]!) /
              4;
          data.fill(Math.round(v), (y * size + x) * 3, (y * size + x) * 3 + 3);
        }
      }
      return { image: { width: size, height: size, data }, time: f / 30 };
    });
    count('synthetic noise videos', `${kind} noise ${size}x${size} #${n}`, detect(clip));
  }
}

/** Frames taken out of each output as PNG files and verified one by one. */
async function singleFrames(): Promise<void> {
  console.log('\n### Single frames (PNG), each checked alone\n');
  console.log(row(['output', 'frame', 'detected', 'score / threshold', 'false-positive p', 'bits', 'payload']));
  console.log(row(['---', '---', '---', '---', '---', '---', '---']));
  let cells = 0;
  let found = 0;
  let exactCount = 0;
  for (const c of CASES) {
    const output = join(folder, `frames-${c.name}.mp4`);
    const contentId = newContentId();
    const result = await animate({ source: fixture(c.source), driving: fixture(c.driving), output, contentId });
    const truth = truthBits(contentId);
    for (let index = 15; index < result.frames; index += 30) {
      const png = join(folder, `frame-${c.name}-${index}.png`);
      await runFfmpeg(['-y', '-i', output, '-vf', `select=eq(n\\,${index})`, '-frames:v', '1', png], 'a frame');
      const check = await checkWatermark(png);
      const read = bitsRead(check, truth);
      const exact = check.payload?.contentId === contentId;
      cells++;
      if (check.detected) found++;
      if (exact) exactCount++;
      console.log(
        row([
          c.name,
          index,
          check.detected ? 'yes' : '**no**',
          `${check.score.toFixed(1)} / ${check.threshold.toFixed(1)}`,
          check.falsePositiveProbability.toExponential(1),
          read,
          exact ? 'exact' : check.detected ? '**unreadable**' : '-',
        ]),
      );
    }
  }
  console.log(`\n${found} of ${cells} single frames detected, ${exactCount} with the exact payload.`);
}

async function cost(pairs: number): Promise<void> {
  const source = fixture('portrait-outdoor.jpg');
  const driving = fixture('driving-talking.mp4');
  const runs: Record<'with' | 'without', { seconds: number; cpuMsPerFrame: number }[]> = { with: [], without: [] };
  const loads: string[] = [];
  for (let i = 0; i < pairs; i++) {
    // A B B A order, so a drift in the machine's load hits both alike.
    for (const watermark of i % 2 ? [false, true] : [true, false]) {
      const before = cpuMs();
      const result = await animate({ source, driving, output: join(folder, `cost-${i}-${watermark}.mp4`), watermark });
      const after = cpuMs();
      runs[watermark ? 'with' : 'without'].push({
        seconds: result.seconds,
        cpuMsPerFrame: (after.own + after.children - before.own - before.children) / result.frames,
      });
      loads.push(load());
    }
  }
  // The embedder alone on the same frames, in CPU time (which other jobs on the cores inflate far less than wall time).
  const photo = cropToEven(await readImage(source));
  const embedder = new WatermarkEmbedder(photo.width, photo.height, {
    version: FORMAT_VERSION,
    model: 'mesh',
    contentId: newContentId(),
  });
  const frame = { ...photo, data: Uint8Array.from(photo.data) };
  const cpu0 = cpuMs().own;
  const wall0 = performance.now();
  for (let i = 0; i < 240; i++) embedder.mark(frame, i / 30);
  const embedCpu = (cpuMs().own - cpu0) / 240;
  const embedWall = (performance.now() - wall0) / 240;
  const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
  console.log('\n### Cost (animate mesh, 586x586, 240 frames; interleaved A B B A)\n');
  console.log(
    row(['pair', 'without: wall s', 'with: wall s', 'wall difference', 'without: CPU ms/frame', 'with: CPU ms/frame']),
  );
  console.log(row(['---', '---', '---', '---', '---', '---']));
  for (let i = 0; i < pairs; i++) {
    const [a, b] = [runs.without[i]!, runs.with[i]!];
    console.log(
      row([
        i + 1,
        a.seconds.toFixed(2),
        b.seconds.toFixed(2),
        `${(((b.seconds - a.seconds) / a.seconds) * 100).toFixed(1)}%`,
        a.cpuMsPerFrame.toFixed(1),
        b.cpuMsPerFrame.toFixed(1),
      ]),
    );
  }
  const cpuWithout = median(runs.without.map((r) => r.cpuMsPerFrame));
  const wallWithout = (median(runs.without.map((r) => r.seconds)) * 1000) / 240;
  console.log(
    `\nEmbedder alone: ${embedCpu.toFixed(2)} ms CPU (${embedWall.toFixed(2)} ms wall) per frame = ${((embedCpu / cpuWithout) * 100).toFixed(1)}% of animate's CPU per frame ` +
      `(${cpuWithout.toFixed(1)} ms, all threads and ffmpeg) and ${((embedCpu / wallWithout) * 100).toFixed(1)}% of its wall time per frame (${wallWithout.toFixed(1)} ms; the embedder runs on the main thread). ` +
      `Load average during the runs: ${loads.join(', ')}.`,
  );
}

try {
  if (parts.has('robustness')) {
    console.log(
      '\n### Robustness (detected: false-positive probability < 1e-6; bits: coded bits read right of 186 → payload bits decoded right of 56; payload: CRC ok and equal)\n',
    );
    console.log(row(['output', 'attack', 'detected', 'score / threshold', 'false-positive p', 'bits', 'payload']));
    console.log(row(['---', '---', '---', '---', '---', '---', '---']));
    let cells = 0;
    let passed = 0;
    for (const c of CASES) {
      const output = join(folder, `${c.name}.mp4`);
      const contentId = newContentId();
      const result = await animate({ source: fixture(c.source), driving: fixture(c.driving), output, contentId });
      const truth = truthBits(contentId);
      for (const attack of ATTACKS) {
        let path = output;
        if (attack.before || attack.args(0).length) {
          path = join(folder, `${c.name}-${ATTACKS.indexOf(attack)}.${attack.ext ?? 'mp4'}`);
          await runFfmpeg(
            [
              '-y',
              ...(attack.before ?? []),
              '-i',
              output,
              ...attack.args(result.width * result.height),
              '-an',
              '-pix_fmt',
              'yuv420p',
              path,
            ],
            attack.name,
          );
        }
        const check = await checkWatermark(path);
        const read = bitsRead(check, truth);
        const exact = check.payload?.contentId === contentId;
        cells++;
        if (check.detected && exact) passed++;
        console.log(
          row([
            `${c.name} ${result.width}x${result.height}`,
            attack.name,
            check.detected ? 'yes' : '**no**',
            `${check.score.toFixed(1)} / ${check.threshold.toFixed(1)}`,
            check.falsePositiveProbability.toExponential(1),
            read,
            exact ? 'exact' : check.detected ? '**unreadable**' : '-',
          ]),
        );
      }
    }
    console.log(`\n${passed} of ${cells} detected with the exact payload.`);
  }

  if (parts.has('single-frames')) await singleFrames();
  if (parts.has('false-positives')) await falsePositives();
  if (parts.has('cost')) await cost(Number(values.pairs));
} finally {
  await rm(folder, { recursive: true, force: true });
}
