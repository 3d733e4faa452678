import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { ReenactError } from '../errors.js';
import { addAlignCommand } from './align.js';
import { addAnimateCommand } from './animate.js';
import { addCropVideoCommand } from './crop-video.js';
import { addInspectCommand } from './inspect.js';
import { addBenchCommand } from './bench.js';
import { addFommCommand } from './fomm.js';
import { listenForInterrupts } from './interrupt.js';
import { describeForCli } from './options.js';
import { addStudioCommand } from './studio.js';
import { addVerifyCommand } from './verify.js';
import { addWorkerCommand } from './worker.js';

/**
 * Each command lives in its own module and adds itself to the program, passing `signal` (aborted
 * by Ctrl-C or SIGTERM) to the library; a command with a shutdown of its own (the worker's grace
 * time) calls `releaseSignals` and handles them itself. This file only assembles the commands and
 * turns errors and interruptions into messages and exit codes.
 */
const commandModules: ((program: Command, signal: AbortSignal, releaseSignals: () => void) => void)[] = [
  addAnimateCommand,
  addInspectCommand,
  addAlignCommand,
  addCropVideoCommand,
  addFommCommand,
  addBenchCommand,
  addStudioCommand,
  addVerifyCommand,
  addWorkerCommand,
];

/** The version in reenact's package.json (two folders up from src/cli and from dist/cli). */
function packageVersion(): string {
  const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return manifest.version;
}

export function buildProgram(signal: AbortSignal, releaseSignals: () => void): Command {
  const program = new Command('reenact')
    .description('Animate a portrait photo with the motion of a driving video. Outputs are labelled as AI-generated.')
    .version(packageVersion())
    .exitOverride()
    .showHelpAfterError();
  for (const add of commandModules) add(program, signal, releaseSignals);
  return program;
}

/** A reader that stops early (`reenact --help | head`) closes the pipe: nothing more to say, not a crash. */
function ignoreClosedPipe(error: NodeJS.ErrnoException): void {
  if (error.code !== 'EPIPE') throw error;
}

export async function main(argv: string[]): Promise<number> {
  process.stdout.on('error', ignoreClosedPipe);
  const interruption = listenForInterrupts();
  try {
    await buildProgram(interruption.signal, () => interruption.dispose()).parseAsync(argv);
    return interruption.exitCode ?? 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    if (error instanceof ReenactError) {
      process.stderr.write(`\nreenact: ${describeForCli(error)}\n`);
      return error.code === 'CANCELLED' ? (interruption.exitCode ?? 130) : 1;
    }
    process.stderr.write(`\nreenact: unexpected error: ${(error as Error).stack ?? String(error)}\n`);
    return 70;
  } finally {
    interruption.dispose();
  }
}
