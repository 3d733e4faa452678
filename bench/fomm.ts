/**
 * FOMM speed at the published vox-adv-256 size: median ms per driving frame (keypoints +
 * per-frame generator), with seeded random weights unless REENACT_FOMM_CHECKPOINT is set.
 * Usage: npm run bench:fomm [-- --threads 2 --frames 10 --winograd auto|always|never --spinning --no-native]
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { benchmarkFomm } from '../src/fomm/tools/bench.js';
import type { WinogradPolicy } from '../src/fomm/onnx/builder.js';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '2' },
    frames: { type: 'string', default: '10' },
    config: { type: 'string' },
    winograd: { type: 'string', default: 'auto' },
    spinning: { type: 'boolean', default: false },
    'no-native': { type: 'boolean', default: false },
  },
});
const sharedDir = process.env.REENACT_SHARED ?? resolve(import.meta.dirname, '..', '..', 'shared');
const config = values.config ?? resolve(sharedDir, 'fomm', 'configs', 'vox-adv-256.yaml');
const result = await benchmarkFomm({
  config,
  checkpoint: process.env.REENACT_FOMM_CHECKPOINT,
  threads: Number(values.threads),
  frames: Number(values.frames),
  winograd: values.winograd as WinogradPolicy,
  spinning: values.spinning,
  nativeKernels: !values['no-native'],
});
process.stdout.write(`${JSON.stringify({ bench: 'fomm', config, ...result })}\n`);
