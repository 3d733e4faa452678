import { type Command, Option } from 'commander';
import { benchmarkFomm } from '../fomm/tools/bench.js';
import type { WinogradPolicy } from '../fomm/onnx/builder.js';
import { positiveInteger } from './options.js';

interface FommBenchCliOptions {
  config: string;
  checkpoint?: string;
  frames: number;
  threads?: number;
  winograd: WinogradPolicy;
  spinning?: boolean;
  native: boolean;
}

/** `reenact bench ...`: speed measurements that print one JSON line. */
export function addBenchCommand(program: Command): void {
  const bench = program.command('bench').description('Measure speed; prints one JSON line');
  bench
    .command('fomm')
    .description(
      'Median ms per driving frame of FOMM (keypoints + per-frame generator; the once-per-video source encoding is reported apart)',
    )
    .requiredOption('--config <path>', 'FOMM config .yaml')
    .option(
      '--checkpoint <path>',
      "checkpoint .pth.tar; without it, seeded random weights of the config's shapes (timing does not depend on the values)",
    )
    .addOption(
      new Option('--frames <n>', 'driving frames to time, after one warm-up')
        .argParser(positiveInteger('--frames'))
        .default(10),
    )
    .addOption(
      new Option('--threads <n>', 'ONNX Runtime threads (default: all cores)').argParser(positiveInteger('--threads')),
    )
    .addOption(
      new Option('--winograd <when>', 'Winograd F(4x4,3x3) for 3x3 convs')
        .choices(['auto', 'always', 'never'])
        .default('auto'),
    )
    .option(
      '--no-native',
      "keep the generator's bottleneck and up blocks in ONNX Runtime instead of reenact's native kernels",
    )
    .option('--spinning', 'let idle ONNX Runtime threads spin-wait (faster on an idle machine, wasteful on a busy one)')
    .action(async (options: FommBenchCliOptions) => {
      const result = await benchmarkFomm({
        config: options.config,
        checkpoint: options.checkpoint,
        frames: options.frames,
        threads: options.threads,
        winograd: options.winograd,
        spinning: options.spinning,
        nativeKernels: options.native,
      });
      process.stdout.write(`${JSON.stringify({ bench: 'fomm', ...result })}\n`);
    });
}
