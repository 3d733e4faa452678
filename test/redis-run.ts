import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { Job } from '../src/studio/jobs.js';
import { projectRoot } from './shared.js';

/** Debian's redis-server; tests that need it skip without it, except in CI (which installs it). */
export const REDIS_SERVER = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((path) => existsSync(path));
export const skipWithoutRedis: string | false = REDIS_SERVER
  ? false
  : process.env.CI
    ? false
    : 'redis-server is not installed (apt-get install -y redis-server); Redis tests skipped';

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface RedisProcess {
  url: string;
  port: number;
  /** Stops it the way an operator does (SIGTERM: the append-only file is flushed) and starts it again on the same port and folder. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** A redis-server on 127.0.0.1 with its data (append-only file, as the README says to run it) in `dir`, and a password when given. */
export async function startRedis(dir: string, password?: string): Promise<RedisProcess> {
  if (!REDIS_SERVER) throw new Error('redis-server is not installed: apt-get install -y redis-server');
  const port = await freePort();
  let child: ChildProcess;
  const launch = async () => {
    child = spawn(
      REDIS_SERVER,
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--save',
        '',
        '--protected-mode',
        'yes',
        ...(password ? ['--requirepass', password] : []),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server did not start:\n${output}`)), 20_000);
      child.stdout!.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (/Ready to accept connections/.test(output)) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.on('exit', () => reject(new Error(`redis-server exited:\n${output}`)));
    });
  };
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  };
  await launch();
  return {
    url: `redis://${password ? `:${encodeURIComponent(password)}@` : ''}127.0.0.1:${port}`,
    port,
    stop,
    async restart() {
      await stop();
      await launch();
    },
  };
}

/** A `reenact worker` process started from source. */
export interface WorkerProcess {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | NodeJS.Signals | null>;
}

export function startWorkerProcess(args: string[], env: Record<string, string>): WorkerProcess {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(projectRoot, 'src', 'cli', 'run.ts'), 'worker', ...args],
    {
      cwd: projectRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    },
  );
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | NodeJS.Signals | null>((resolve) =>
    child.on('exit', (code, signal) => resolve(code ?? signal)),
  );
  return { child, output: () => output, exited };
}

/**
 * Calls `onJob` with every job the studio's page would be sent (its server-sent `job` events),
 * connecting again after the studio restarts, as the page's EventSource does, until `signal` aborts.
 */
export function watchJobEvents(studioUrl: string, signal: AbortSignal, onJob: (job: Job) => void): void {
  void (async () => {
    while (!signal.aborted) {
      try {
        const response = await fetch(new URL('/api/events', studioUrl), { signal });
        const decoder = new TextDecoder();
        let buffer = '';
        for await (const chunk of response.body! as unknown as AsyncIterable<Uint8Array>) {
          buffer += decoder.decode(chunk, { stream: true });
          let end: number;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const data = /^event: job\ndata: (.+)$/m.exec(buffer.slice(0, end))?.[1];
            buffer = buffer.slice(end + 2);
            if (data) onJob(JSON.parse(data) as Job);
          }
        }
      } catch {
        // The studio is down or restarting: try again.
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  })();
}
