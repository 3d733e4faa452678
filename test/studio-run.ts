import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from './shared.js';

/** A `reenact studio` process started from source, as a user runs it. */
export interface StudioProcess {
  child: ChildProcess;
  url: string;
  output: () => string;
  /** Sends the signal and resolves with the exit code (or the signal that ended it). */
  stop(signal: NodeJS.Signals): Promise<number | NodeJS.Signals | null>;
}

export async function startStudioProcess(dataDir: string, ...args: string[]): Promise<StudioProcess> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(projectRoot, 'src', 'cli', 'run.ts'), 'studio', '--port', '0', '--data', dataDir, ...args],
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

export function chromiumArgs(userDataDir: string, fakeVideo?: string, fakeAudio?: string): string[] {
  return [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    `--user-data-dir=${userDataDir}`,
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
