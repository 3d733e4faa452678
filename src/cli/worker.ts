import { hostname } from 'node:os';
import type { Command } from 'commander';
import { ReenactError } from '../errors.js';
import { redactRedisUrl } from '../studio/redis-queue.js';
import { startWorker } from '../worker/worker.js';
import { integerIn, numberIn } from './options.js';

interface WorkerCommandOptions {
  redis?: string;
  server: string;
  token?: string;
  concurrency: number;
  attempts: number;
  stallSeconds: number;
  graceSeconds: number;
  models?: string;
  threads?: number;
  workDir?: string;
}

const log = (line: string) => process.stderr.write(`reenact worker: ${line}\n`);

export function addWorkerCommand(program: Command, _signal: AbortSignal, releaseSignals: () => void): void {
  program
    .command('worker')
    .description(
      'Run jobs of a studio started with --redis: take them from Redis, fetch their inputs from the studio, animate here, send the results back.',
    )
    .option(
      '--redis <url>',
      'Redis URL, redis://[user:password@]host:6379 or rediss:// for TLS (default: $REENACT_REDIS_URL)',
    )
    .requiredOption('--server <url>', "the studio's URL, e.g. http://studio:7860")
    .option('--token <token>', 'worker token issued by the studio (default: $REENACT_WORKER_TOKEN)')
    .option('--concurrency <n>', 'jobs run at once', integerIn(1, 64), 1)
    .option(
      '--attempts <n>',
      'times a job may stop its worker (killed, crashed) before it is failed',
      integerIn(1, 100),
      3,
    )
    .option(
      '--stall-seconds <s>',
      'a job whose worker is silent this long goes to another worker',
      numberIn(1, 3600),
      30,
    )
    .option(
      '--grace-seconds <s>',
      'on SIGTERM, time given to running jobs to finish before they are handed back',
      numberIn(0, 86_400),
      60,
    )
    .option('--models <dir>', 'folder of the FOMM configs and checkpoints the studio offers (same names)')
    .option('--threads <n>', 'CPU threads a job uses (default: all cores)', integerIn(1, 256))
    .option('--work-dir <dir>', 'where inputs and results are kept while a job runs (default: the temporary folder)')
    .addHelpText(
      'after',
      `
Credentials are best passed in the environment (REENACT_REDIS_URL, REENACT_WORKER_TOKEN) so they
do not show in the process list; they are never printed. SIGTERM or Ctrl-C stops taking jobs,
lets running ones finish for --grace-seconds, then hands them back to the queue; a second
signal hands them back at once.

Example:
  REENACT_REDIS_URL=redis://:secret@queue:6379 REENACT_WORKER_TOKEN=rw1... \\
    reenact worker --server http://studio:7860`,
    )
    .action(async (options: WorkerCommandOptions) => {
      const redisUrl = options.redis ?? process.env.REENACT_REDIS_URL;
      const token = options.token ?? process.env.REENACT_WORKER_TOKEN;
      if (!redisUrl)
        throw new ReenactError(
          'BAD_ARGUMENT',
          'the worker needs the Redis the studio uses.',
          'Pass --redis redis://host:6379 or set REENACT_REDIS_URL.',
        );
      if (!token)
        throw new ReenactError(
          'BAD_ARGUMENT',
          'the worker needs a token from the studio.',
          'Issue one (POST /api/worker/tokens on the studio) and pass --token or set REENACT_WORKER_TOKEN.',
        );
      const worker = await startWorker({
        redisUrl,
        server: options.server,
        token,
        concurrency: options.concurrency,
        attempts: options.attempts,
        stallSeconds: options.stallSeconds,
        ...(options.models ? { modelsDir: options.models } : {}),
        ...(options.threads ? { threads: options.threads } : {}),
        ...(options.workDir ? { workDir: options.workDir } : {}),
        log,
      });
      log(
        `${worker.name} on ${hostname()} (pid ${process.pid}) taking jobs from ${redactRedisUrl(redisUrl)} for ${options.server}`,
      );
      // The worker's shutdown is its own (finish within the grace time, or hand jobs back), not the CLI's abort.
      releaseSignals();
      await new Promise<void>((stopped) => {
        const stop = (signal: NodeJS.Signals) => {
          log(`${signal}: no new jobs; running ones get ${options.graceSeconds} s to finish, then are handed back`);
          const now = () => {
            log('handing running jobs back now');
            void worker.stop(0);
          };
          process.once('SIGINT', now);
          process.once('SIGTERM', now);
          worker.stop(options.graceSeconds * 1000).then(stopped, (error: unknown) => {
            log((error as Error).message);
            stopped();
          });
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      log('stopped');
    });
}
