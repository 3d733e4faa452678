import { spawn } from 'node:child_process';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { redactRedisUrl } from '../studio/redis-queue.js';
import { startStudio } from '../studio/server.js';
import { integerIn, numberIn } from './options.js';

interface StudioCommandOptions {
  port: number;
  host: string;
  data: string;
  open?: boolean;
  token?: string;
  concurrency: number;
  models?: string;
  maxPhotoMb: number;
  maxPhotoMp: number;
  maxClipMb: number;
  maxClipSeconds: number;
  maxModelMb: number;
  keep: number;
  keepDays: number;
  threads?: number;
  redis?: string;
  attempts: number;
}

function openBrowser(url: string): void {
  const command = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
  const child = spawn(command, [url], { stdio: 'ignore', detached: true });
  child.on('error', () =>
    process.stderr.write(`reenact studio: could not open a browser (${command}); open ${url} yourself.\n`),
  );
  child.unref();
}

export function addStudioCommand(program: Command, signal: AbortSignal): void {
  program
    .command('studio')
    .description(
      'Start the studio: a local web page to upload or record, animate, watch and download, with a history of earlier jobs.',
    )
    .option('--port <n>', 'port to listen on (0: any free port)', integerIn(0, 65535), 7860)
    .option('--host <address>', 'address to bind; anything but loopback requires a token', '127.0.0.1')
    .option('--data <dir>', 'folder for uploads, jobs and results', join(homedir(), '.reenact', 'studio'))
    .option('--open', 'open the page in the default browser')
    .option('--token <token>', 'access token for non-loopback binds (default: a random one, printed)')
    .option('--concurrency <n>', 'jobs run at once', integerIn(1, 64), 1)
    .option(
      '--models <dir>',
      'folder of FOMM configs (.yaml) and checkpoints (.pth.tar) offered in the page (default: <data>/models)',
    )
    .option('--max-photo-mb <n>', 'largest photo upload, megabytes', numberIn(0.001, 10_000), 30)
    .option('--max-photo-mp <n>', 'largest photo, megapixels', numberIn(0.01, 1000), 40)
    .option('--max-clip-mb <n>', 'largest clip upload, megabytes', numberIn(0.001, 100_000), 500)
    .option('--max-clip-seconds <n>', 'longest clip, seconds', numberIn(1, 86_400), 600)
    .option('--max-model-mb <n>', 'largest FOMM checkpoint upload, megabytes', numberIn(0.001, 100_000), 2000)
    .option('--keep <n>', 'finished jobs kept (older ones are deleted)', integerIn(1, 1_000_000), 100)
    .option('--keep-days <n>', 'finished jobs older than this many days are deleted', numberIn(0.001, 100_000), 30)
    .option('--threads <n>', 'CPU threads a job uses (default: all cores)', integerIn(1, 256))
    .option(
      '--redis <url>',
      'run jobs on `reenact worker` processes through this Redis (BullMQ) instead of in the studio; redis:// or rediss:// (default: $REENACT_REDIS_URL when set)',
    )
    .option(
      '--attempts <n>',
      'with --redis: runs a job may have that end in an unexpected error before it fails',
      integerIn(1, 100),
      3,
    )
    .addHelpText(
      'after',
      `
Jobs and their results are kept in --data across restarts; a job that was running when the studio
stopped is shown as interrupted and can be run again. Ctrl-C stops the studio cleanly.

Animate only faces you have the right to use. Every output is marked as AI-generated.

Examples:
  reenact studio --open
  reenact studio --host 0.0.0.0 --port 8080 --data /srv/reenact`,
    )
    .action(async (options: StudioCommandOptions) => {
      const redisUrl = options.redis ?? process.env.REENACT_REDIS_URL;
      const studio = await startStudio({
        dataDir: options.data,
        host: options.host,
        port: options.port,
        ...(options.token ? { token: options.token } : {}),
        concurrency: options.concurrency,
        ...(options.models ? { modelsDir: options.models } : {}),
        ...(options.threads ? { threads: options.threads } : {}),
        limits: {
          photoBytes: options.maxPhotoMb * 1e6,
          photoPixels: options.maxPhotoMp * 1e6,
          clipBytes: options.maxClipMb * 1e6,
          clipSeconds: options.maxClipSeconds,
          modelBytes: options.maxModelMb * 1e6,
        },
        retention: { keep: options.keep, maxAgeDays: options.keepDays },
        ...(redisUrl ? { redis: { url: redisUrl, attempts: options.attempts } } : {}),
        log: (line) => process.stderr.write(`reenact studio: ${line}\n`),
      });
      const address = studio.token ? `${studio.url}?token=${encodeURIComponent(studio.token)}` : studio.url;
      process.stdout.write(`reenact studio: ${address}\n  data in ${options.data}; Ctrl-C to stop\n`);
      if (redisUrl) process.stdout.write(`  jobs run on workers through ${redactRedisUrl(redisUrl)}\n`);
      if (studio.token)
        process.stdout.write(`  access token: ${studio.token} (send as X-Reenact-Token, or open the URL above once)\n`);
      if (options.open) openBrowser(address);
      // Whatever ends the process first (a second Ctrl-C forces the exit), nothing half-written stays.
      process.on('exit', studio.removeTemporaryFilesSync);
      // The CLI owns the signals: the first Ctrl-C or SIGTERM aborts `signal`, and the studio stops cleanly.
      await new Promise<void>((aborted) => signal.addEventListener('abort', () => aborted(), { once: true }));
      process.stdout.write(
        `\nreenact studio: ${String(signal.reason)}, stopping (${redisUrl ? 'jobs go on running on the workers' : 'running jobs are marked interrupted'})\n`,
      );
      await studio
        .close()
        .catch((error: unknown) => process.stderr.write(`reenact studio: ${(error as Error).message}\n`));
      process.off('exit', studio.removeTemporaryFilesSync);
      process.stdout.write('reenact studio: stopped\n');
    });
}
