import { mkdir } from 'node:fs/promises';
import { type Command, Option } from 'commander';
import { ReenactError } from '../errors.js';
import { compareConformance, writeConformance } from '../fomm/tools/conformance.js';
import { FommModel } from '../fomm/model.js';
import { positiveInteger } from './options.js';

interface ConformanceOptions {
  config: string;
  checkpoint: string;
  frames: string;
  out: string;
  golden?: string;
  threads?: number;
}

/** `reenact fomm conformance`: the golden-set files for any config + checkpoint + frames folder. */
export function addFommCommand(program: Command, signal: AbortSignal): void {
  const fomm = program.command('fomm').description('First Order Motion Model tools');
  fomm
    .command('conformance')
    .description(
      'Run the model on a folder of source.png + driving_*.png and write the conformance .npy files (as in golden-tiny/README.md)',
    )
    .requiredOption('--config <path>', 'FOMM config .yaml')
    .requiredOption('--checkpoint <path>', 'checkpoint .pth.tar (legacy or zip format)')
    .requiredOption('--frames <dir>', 'folder with source.png and driving_001.png, driving_002.png, ...')
    .requiredOption('--out <dir>', 'folder to write the .npy files into (created if missing)')
    .option(
      '--golden <dir>',
      'compare every file written with the same-named file here; exit 1 on any difference over tolerance',
    )
    .addOption(
      new Option('--threads <n>', 'ONNX Runtime threads (default: all cores)').argParser(positiveInteger('--threads')),
    )
    .action(async (options: ConformanceOptions) => {
      const model = await FommModel.load({
        config: options.config,
        checkpoint: options.checkpoint,
        threads: options.threads,
      });
      try {
        await mkdir(options.out, { recursive: true });
        const written = await writeConformance(model, options.frames, options.out, { signal });
        process.stdout.write(`wrote ${written.length} files to ${options.out}: ${written.join(', ')}\n`);
        if (options.golden) {
          const results = await compareConformance(options.out, options.golden, written);
          for (const r of results) {
            process.stdout.write(
              `${r.pass ? 'ok  ' : 'FAIL'} ${r.file}  max |diff| ${r.maxAbsDiff.toExponential(2)}  (tolerance ${r.tolerance})\n`,
            );
          }
          const failed = results.filter((r) => !r.pass).map((r) => r.file);
          if (failed.length) {
            throw new ReenactError(
              'CHECKPOINT_MISMATCH',
              `${failed.length} conformance file(s) differ from ${options.golden}: ${failed.join(', ')}.`,
              'Check that the config and checkpoint are the ones the golden set was made with.',
            );
          }
        }
      } finally {
        await model.dispose();
      }
    });
}
