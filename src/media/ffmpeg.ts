import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, join } from 'node:path';
import { cancelled, ReenactError } from '../errors.js';

type Tool = 'ffmpeg' | 'ffprobe';

const found = new Map<Tool, string>();

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(name: string): string | undefined {
  const names = process.platform === 'win32' ? [`${name}.exe`, name] : [name];
  for (const folder of (process.env.PATH ?? '').split(delimiter)) {
    if (!folder) continue;
    for (const candidate of names) {
      const path = join(folder, candidate);
      if (isExecutable(path)) return path;
    }
  }
  return undefined;
}

function fromInstallerPackage(tool: Tool): string | undefined {
  const require = createRequire(import.meta.url);
  try {
    const installer = require(tool === 'ffmpeg' ? '@ffmpeg-installer/ffmpeg' : '@ffprobe-installer/ffprobe') as {
      path?: string;
    };
    return installer.path && isExecutable(installer.path) ? installer.path : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Finds ffmpeg or ffprobe: FFMPEG_PATH / FFPROBE_PATH first (an explicit choice wins), then the
 * PATH (a system build is usually newer), then the binaries bundled by the npm installer packages.
 */
export function toolPath(tool: Tool): string {
  const cached = found.get(tool);
  if (cached) return cached;
  const variable = tool === 'ffmpeg' ? 'FFMPEG_PATH' : 'FFPROBE_PATH';
  const fromEnv = process.env[variable];
  if (fromEnv) {
    if (!isExecutable(fromEnv)) {
      throw new ReenactError(
        'FFMPEG_FAILED',
        `${variable} is set to ${fromEnv}, which is not an executable file.`,
        `Point ${variable} at a ${tool} binary, or unset it to use the one on the PATH.`,
      );
    }
    found.set(tool, fromEnv);
    return fromEnv;
  }
  const path = onPath(tool) ?? fromInstallerPackage(tool);
  if (!path) {
    throw new ReenactError(
      'FFMPEG_FAILED',
      `${tool} was not found (not in ${variable}, not on the PATH, and the bundled installer package is missing).`,
      `Install ${tool} (for example from ffmpeg.org or your package manager) or set ${variable}.`,
    );
  }
  found.set(tool, path);
  return path;
}

/** Keeps the last part of a child's stderr: enough to explain a failure, bounded for long runs. */
export class StderrTail {
  private text = '';
  constructor(private readonly limit = 8192) {}

  attach(child: ChildProcess): this {
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => this.add(chunk));
    return this;
  }

  add(chunk: string): void {
    this.text += chunk;
    if (this.text.length > this.limit * 2) this.text = this.text.slice(-this.limit);
  }

  /** The last `lines` non-empty lines, for an error message. */
  lines(lines = 6): string {
    return this.text
      .split(/\r?\n/)
      .map((line) => line.trim())
      .filter(Boolean)
      .slice(-lines)
      .join('\n');
  }

  toString(): string {
    return this.text;
  }
}

export interface ToolResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: StderrTail;
}

/** How a child process ended. */
export function waitForExit(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
}

/** Spawns ffmpeg/ffprobe with stdin ignored unless asked for; turns a spawn failure into FFMPEG_FAILED. */
export function spawnTool(tool: Tool, args: string[], options: SpawnOptions = {}): ChildProcess {
  const path = toolPath(tool);
  const child = spawn(path, args, { stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true, ...options });
  // A failure to start also arrives as 'error'; callers observe it through waitForExit.
  child.on('error', () => {});
  return child;
}

/** Runs a tool to completion, collecting stdout as text and the tail of stderr. */
export async function runTool(tool: Tool, args: string[], options: { signal?: AbortSignal } = {}): Promise<ToolResult> {
  const child = spawnTool(tool, args);
  const stderr = new StderrTail().attach(child);
  const chunks: string[] = [];
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => chunks.push(chunk));
  const onAbort = () => child.kill('SIGKILL');
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const { code, signal } = await waitForExit(child).catch((cause: unknown) => {
      throw new ReenactError(
        'FFMPEG_FAILED',
        `Could not start ${tool} (${(cause as Error).message}).`,
        `Check that ${toolPath(tool)} runs on this machine, or set ${tool === 'ffmpeg' ? 'FFMPEG_PATH' : 'FFPROBE_PATH'}.`,
        { cause },
      );
    });
    if (options.signal?.aborted) throw cancelled();
    return { code, signal, stdout: chunks.join(''), stderr };
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
}

/** Runs ffmpeg and throws FFMPEG_FAILED (with its last stderr lines) unless it exits cleanly. */
export async function runFfmpeg(args: string[], what: string, options: { signal?: AbortSignal } = {}): Promise<void> {
  const result = await runTool('ffmpeg', ['-hide_banner', '-nostdin', '-v', 'error', ...args], options);
  if (result.code !== 0) throw ffmpegFailed(what, result.stderr);
}

export function ffmpegFailed(what: string, stderr: StderrTail | string): ReenactError {
  const detail = typeof stderr === 'string' ? stderr.trim() : stderr.lines();
  return new ReenactError(
    'FFMPEG_FAILED',
    `ffmpeg failed while ${what}${detail ? `:\n${detail}` : '.'}`,
    'Check that the input plays in a video player; if it does, report this message with the ffmpeg version (`ffmpeg -version`).',
  );
}

let passthroughArgsCache: Promise<string[]> | undefined;

/**
 * Arguments that make ffmpeg emit every decoded frame exactly once (no drops or duplicates):
 * `-fps_mode passthrough` on ffmpeg 5.1+, `-vsync passthrough` on older builds (such as the
 * bundled 2018 one) which lack -fps_mode.
 */
export function passthroughArgs(): Promise<string[]> {
  passthroughArgsCache ??= runTool('ffmpeg', ['-hide_banner', '-h', 'long']).then(
    (result) => (/^-fps_mode\b/m.test(result.stdout) ? ['-fps_mode', 'passthrough'] : ['-vsync', 'passthrough']),
    () => ['-vsync', 'passthrough'],
  );
  return passthroughArgsCache;
}

/** A frame rate as the exact rational ffmpeg should use: 30 -> "30/1", 29.97 -> "30000/1001". */
export function fpsRational(fps: number): string {
  const rounded = Math.round(fps);
  if (Math.abs(fps - rounded) < 1e-6) return `${rounded}/1`;
  const ntsc = Math.round((fps * 1001) / 1000);
  if (Math.abs(fps - (ntsc * 1000) / 1001) < 1e-3) return `${ntsc * 1000}/1001`;
  return `${Math.round(fps * 1000)}/1000`;
}
