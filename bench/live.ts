/**
 * Live mode benchmark: `reenact studio` in its own process, real Chromium with its fake camera
 * playing driving-talking.mp4 at 640x480, 30 fps (and the fake microphone its sound), the Live
 * page animating a 512x512 photo made from portrait-outdoor.jpg. Every window (10 s) it prints
 * one JSON line, then a summary line:
 *
 *   fps              animated frames shown in the page per second
 *   p50Ms, p95Ms     capture-to-display latency per frame: from the camera frame's capture
 *                    (requestVideoFrameCallback) to the animated frame drawn in the page
 *   serverRssMB      the studio process's resident memory (its session and detection threads included)
 *   pageHeapMB       the Live page's JS heap
 *   load             the 1-minute load average (other work on the same cores lowers fps and raises latency)
 *   cpuMsPerFrame    (summary) CPU time of the studio process and of Chromium (with its children)
 *                    per animated frame: on N free cores fps cannot pass N * 1000 / their sum
 *
 * The summary gives fps per tab and p50/p95 over every frame of the run, and compares the first
 * and the last minute (or third, in short runs; means of their windows): growth of latency or
 * memory over the run shows there.
 *
 *   npm run bench:live                   # 5 minutes
 *   BENCH_SECONDS=60 npm run bench:live
 *   BENCH_TABS=2 npm run bench:live      # two pages live at once (a window each), figures per tab
 *   BENCH_TABS=2 BENCH_ONE_WINDOW=1 npm run bench:live   # the two as tabs of one window, the first behind
 *   BENCH_SEND=320 npm run bench:live    # camera frames sent at 320 px on the long side (default 640)
 *   STUDIO_NODE_FLAGS='--cpu-prof --cpu-prof-dir=/tmp/prof' npm run bench:live   # the studio's CPU profile, a file per thread
 */
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Page } from 'playwright-core';
import sharp from 'sharp';
import { shared } from '../test/shared.js';
import { CHROMIUM, chromiumArgs, LAPTOP_CAMERA, makeFakeDevices, startStudioProcess } from '../test/studio-run.js';

const seconds = Number(process.env.BENCH_SECONDS ?? 300);
const tabs = Number(process.env.BENCH_TABS ?? 1);
const oneWindow = process.env.BENCH_ONE_WINDOW === '1';
const WINDOW_S = 10;

function rssMB(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Math.round(Number(match[1]) / 1024) : NaN;
}

/** CPU seconds (user + system) of a process and all its descendants but those under `except` (Linux /proc). */
function cpuSeconds(root: number, except: number[] = []): number {
  const stats = new Map<number, { ppid: number; ticks: number }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const text = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after the command name (which may hold spaces): state ppid ... utime(14) stime(15).
      const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
      stats.set(Number(entry), { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) });
    } catch {
      // The process ended meanwhile.
    }
  }
  const tree = new Set([root]);
  for (let grew = true; grew;) {
    grew = false;
    for (const [pid, stat] of stats) {
      if (!tree.has(pid) && !except.includes(pid) && tree.has(stat.ppid)) {
        tree.add(pid);
        grew = true;
      }
    }
  }
  let ticks = 0;
  for (const pid of tree) ticks += stats.get(pid)?.ticks ?? 0;
  return ticks / 100;
}

function percentile(sorted: number[], p: number): number {
  return sorted.length ? Math.round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!) : NaN;
}

interface Window {
  t: number;
  tab: number;
  fps: number;
  p50Ms: number;
  p95Ms: number;
  serverRssMB: number;
  pageHeapMB: number;
  load: number;
}

if (!CHROMIUM) throw new Error('Chromium not found at /usr/bin/chromium (apt-get install -y chromium)');
const folder = await mkdtemp(join(tmpdir(), 'reenact-bench-live-'));
const photo = join(folder, 'portrait-512.jpg');
const { camera, microphone } = await makeFakeDevices(folder, LAPTOP_CAMERA);
await sharp(shared('fixtures', 'portrait-outdoor.jpg')).resize(512, 512).jpeg({ quality: 95 }).toFile(photo);

const studio = await startStudioProcess(join(folder, 'data'));
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: chromiumArgs(camera, microphone),
});
try {
  const pages: Page[] = [];
  const newWindow = () => browser.newContext({ viewport: { width: 1280, height: 900 } });
  const shared = oneWindow ? await newWindow() : undefined;
  for (let tab = 0; tab < tabs; tab++) {
    // A window each, unless BENCH_ONE_WINDOW: Chromium does not draw a tab behind another.
    const page = await (shared ?? (await newWindow())).newPage();
    await page.goto(
      new URL(`/live${process.env.BENCH_SEND ? `?send=${process.env.BENCH_SEND}` : ''}`, studio.url).href,
    );
    await page.setInputFiles('#photo-input', photo);
    await page.waitForSelector('.face-box.chosen', { timeout: 60_000 });
    await page.click('#live-start');
    await page.waitForSelector('#live-output-caption:has-text("Animated photo")', { timeout: 60_000 });
    pages.push(page);
  }
  const pid = studio.child.pid!;
  const windows: Window[] = [];
  const all: number[] = [];
  const frames = pages.map(() => 0);
  for (const [tab, page] of pages.entries()) {
    await page.evaluate(() => (window as unknown as { reenactLive: { drain(): number[] } }).reenactLive.drain());
    frames[tab] = await page.evaluate(
      () => (window as unknown as { reenactLive: { stats(): { frames: number } } }).reenactLive.stats().frames,
    );
  }
  // Chromium: the descendants of this process (Playwright started it) but the studio, less this process itself.
  const everyOther = () =>
    readdirSync('/proc')
      .filter((entry) => /^\d+$/.test(entry))
      .map(Number)
      .filter((other) => other !== process.pid);
  const chromiumCpu = () => cpuSeconds(process.pid, [pid]) - cpuSeconds(process.pid, everyOther());
  const cpuAtStart = { studio: cpuSeconds(pid), browser: chromiumCpu(), frames: frames.reduce((sum, n) => sum + n, 0) };
  const started = Date.now();
  for (let t = WINDOW_S; t <= seconds; t += WINDOW_S) {
    await new Promise((resolve) => setTimeout(resolve, started + t * 1000 - Date.now()));
    for (const [tab, page] of pages.entries()) {
      const sample = await page.evaluate(() => {
        const live = (window as unknown as { reenactLive: { drain(): number[]; stats(): { frames: number } } })
          .reenactLive;
        return {
          latencies: live.drain(),
          frames: live.stats().frames,
          heap: (performance as unknown as { memory?: { usedJSHeapSize: number } }).memory?.usedJSHeapSize ?? NaN,
        };
      });
      all.push(...sample.latencies);
      const sorted = sample.latencies.sort((a, b) => a - b);
      const row: Window = {
        t,
        tab,
        fps: Math.round(((sample.frames - frames[tab]!) / WINDOW_S) * 10) / 10,
        p50Ms: percentile(sorted, 0.5),
        p95Ms: percentile(sorted, 0.95),
        serverRssMB: rssMB(pid),
        pageHeapMB: Math.round((sample.heap / 1e6) * 10) / 10,
        load: Math.round(loadavg()[0]! * 10) / 10,
      };
      frames[tab] = sample.frames;
      windows.push(row);
      console.log(JSON.stringify(row));
    }
  }
  const span = Math.max(WINDOW_S, Math.min(60, Math.floor(seconds / 3 / WINDOW_S) * WINDOW_S));
  const part = (from: number, to: number) => {
    const chosen = windows.filter((w) => w.t > from && w.t <= to);
    const mean = (key: keyof Window) =>
      Math.round((chosen.reduce((sum, w) => sum + w[key], 0) / chosen.length) * 10) / 10;
    return {
      fps: mean('fps'),
      p50Ms: mean('p50Ms'),
      p95Ms: mean('p95Ms'),
      serverRssMB: mean('serverRssMB'),
      pageHeapMB: mean('pageHeapMB'),
      load: mean('load'),
    };
  };
  all.sort((a, b) => a - b);
  // CPU time per animated frame, whatever the load: what two free cores would allow.
  const rendered = frames.reduce((sum, n) => sum + n, 0) - cpuAtStart.frames;
  const cpuMsPerFrame = {
    studio: Math.round(((cpuSeconds(pid) - cpuAtStart.studio) * 1000) / rendered),
    chromium: Math.round(((chromiumCpu() - cpuAtStart.browser) * 1000) / rendered),
  };
  const overall = {
    fpsPerTab: part(0, seconds).fps,
    p50Ms: percentile(all, 0.5),
    p95Ms: percentile(all, 0.95),
    frames: all.length,
    cpuMsPerFrame,
  };
  // first and last: means of their windows' figures.
  console.log(
    JSON.stringify({
      summary: true,
      seconds,
      tabs,
      photo: '512x512',
      camera: '640x480@30',
      overall,
      first: part(0, span),
      last: part(seconds - span, seconds),
    }),
  );
} finally {
  await browser.close();
  await studio.stop('SIGINT');
  await rm(folder, { recursive: true, force: true });
}
