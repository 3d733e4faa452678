import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { runFfmpeg } from '../src/media/ffmpeg.js';
import type { Page } from 'playwright-core';
import { projectRoot, shared, skipWithoutShared } from './shared.js';

/** A `reenact studio` process started from source, as a user runs it. */
export interface StudioProcess {
  child: ChildProcess;
  url: string;
  output: () => string;
  /** Sends the signal and resolves with the exit code (or the signal that ended it). */
  stop(signal: NodeJS.Signals): Promise<number | NodeJS.Signals | null>;
}

export async function startStudioProcess(dataDir: string, ...args: string[]): Promise<StudioProcess> {
  // STUDIO_NODE_FLAGS: node flags for the studio process, e.g. `--cpu-prof --cpu-prof-dir=DIR` to profile a benchmark's studio.
  const nodeFlags = (process.env.STUDIO_NODE_FLAGS ?? '').split(' ').filter(Boolean);
  const child = spawn(
    process.execPath,
    [
      ...nodeFlags,
      '--import',
      'tsx',
      join(projectRoot, 'src', 'cli', 'run.ts'),
      'studio',
      '--port',
      '0',
      '--data',
      dataDir,
      ...args,
    ],
    {
      cwd: projectRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | NodeJS.Signals | null>((resolve) =>
    child.on('exit', (code, signal) => resolve(code ?? signal)),
  );
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`studio did not start within 60 s:\n${output}`)), 60_000);
    const look = () => {
      const match = /reenact studio: (http:\/\/\S+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    };
    child.stdout!.on('data', look);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`studio exited before it started:\n${output}`));
    });
  });
  return {
    child,
    url,
    output: () => output,
    stop(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Builds the studio page into dist/studio/page (scripts/build-page.mjs). */
export async function buildPage(): Promise<void> {
  const child = spawn(process.execPath, [join(projectRoot, 'scripts', 'build-page.mjs')], {
    cwd: projectRoot,
    stdio: 'inherit',
  });
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  if (code !== 0) throw new Error(`building the studio page failed (exit ${code})`);
}

/** Debian's Chromium, as DEVELOPERS.md says to drive it; undefined where it is not installed. */
export const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((path) => existsSync(path));

/** The skip reason of a suite that needs ../shared and Chromium (false: run it). */
export function browserSuiteSkip(what: string): string | false {
  if (skipWithoutShared) return skipWithoutShared;
  return CHROMIUM ? false : `Chromium not found at /usr/bin/chromium (apt-get install -y chromium); ${what} skipped`;
}

/**
 * Plays the page's <video id=`videoId`> (muted) for 1.2 s and decodes its file's sound in the
 * page: what a user's browser makes of a result.
 */
export function playVideo(
  page: Page,
  videoId: string,
): Promise<{ duration: number; currentTime: number; width: number; audioSeconds: number; rms: number }> {
  return page.evaluate(async (id) => {
    const video = document.getElementById(id) as HTMLVideoElement;
    video.muted = true;
    if (video.readyState < 1)
      await new Promise((resolve) => video.addEventListener('loadedmetadata', resolve, { once: true }));
    await video.play();
    await new Promise((resolve) => setTimeout(resolve, 1200));
    const bytes = await (await fetch(video.currentSrc)).arrayBuffer();
    const audio = await new OfflineAudioContext(1, 48000, 48000).decodeAudioData(bytes);
    const samples = audio.getChannelData(0);
    let energy = 0;
    for (const sample of samples) energy += sample * sample;
    return {
      duration: video.duration,
      currentTime: video.currentTime,
      width: video.videoWidth,
      audioSeconds: audio.duration,
      rms: Math.sqrt(energy / samples.length),
    };
  }, videoId);
}

/** Chromium's flags, with the fake camera and microphone where given; Playwright adds a fresh profile. */
export function chromiumArgs(fakeVideo?: string, fakeAudio?: string): string[] {
  return [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    '--autoplay-policy=no-user-gesture-required',
    ...(fakeVideo
      ? [
          '--use-fake-device-for-media-stream',
          '--use-fake-ui-for-media-stream',
          `--use-file-for-fake-video-capture=${fakeVideo}`,
        ]
      : []),
    ...(fakeAudio ? [`--use-file-for-fake-audio-capture=${fakeAudio}`] : []),
  ];
}

/** The camera as the live benchmark sees it: 640x480 at 30 fps, the 256x256 clip scaled into the middle. */
export const LAPTOP_CAMERA = 'scale=480:480,pad=640:480:80:0,fps=30';

/**
 * The files Chromium loops as its fake camera and microphone, in `folder`: the first 8 s of
 * driving-talking.mp4 as camera.y4m (through the ffmpeg filter `videoFilter`, where given) and
 * its sound as microphone.wav (mono, 48 kHz).
 */
export async function makeFakeDevices(
  folder: string,
  videoFilter?: string,
): Promise<{ camera: string; microphone: string }> {
  const camera = join(folder, 'camera.y4m');
  const microphone = join(folder, 'microphone.wav');
  const clip = ['-y', '-v', 'error', '-i', shared('fixtures', 'driving-talking.mp4'), '-t', '8'];
  const filter = videoFilter ? ['-vf', videoFilter] : [];
  await runFfmpeg([...clip, ...filter, '-pix_fmt', 'yuv420p', '-f', 'yuv4mpegpipe', camera], 'making the fake camera');
  await runFfmpeg(
    [...clip, '-vn', '-ac', '1', '-ar', '48000', '-c:a', 'pcm_s16le', microphone],
    'making the fake microphone',
  );
  return { camera, microphone };
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
