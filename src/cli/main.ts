import { Command, CommanderError } from 'commander';
import { ReenactError } from '../errors.js';
import { addAlignCommand } from './align.js';
import { addAnimateCommand } from './animate.js';
import { addCropVideoCommand } from './crop-video.js';
import { addInspectCommand } from './inspect.js';
import { addBenchCommand } from './bench.js';
import { addFommCommand } from './fomm.js';
import { addStudioCommand } from './studio.js';
import { addWorkerCommand } from './worker.js';

/**
 * Each command lives in its own module and adds itself to the program; this file only
 * assembles them and turns errors into messages and exit codes.
 */
const commandModules: ((program: Command) => void)[] = [addAnimateCommand, addInspectCommand, addAlignCommand, addCropVideoCommand, addFommCommand, addBenchCommand, addStudioCommand, addWorkerCommand];

export function buildProgram(): Command {
  const program = new Command('reenact')
    .description('Animate a portrait photo with the motion of a driving video. Outputs are labelled as AI-generated.')
    .version('0.1.0')
    .exitOverride()
    .showHelpAfterError();
  for (const add of commandModules) add(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    if (error instanceof ReenactError) {
      process.stderr.write(`\nreenact: ${error.describe()}\n`);
      return error.code === 'CANCELLED' ? 130 : 1;
    }
    process.stderr.write(`\nreenact: unexpected error: ${(error as Error).stack ?? String(error)}\n`);
    return 70;
  }
}
