/**
 * Checkpoint loading at published-checkpoint scale: writes a synthetic legacy and zip checkpoint
 * (generator, kp_detector and an optimizer-like dict of 4 MB float tensors, ~640 MB by default) to
 * the temp folder, loads each with loadCheckpoint, prints ms and memory growth, removes them.
 * The test zip writer does not 64-byte-align entries as torch does, so some zip tensors are copies
 * here that are views with a real torch file.
 * Usage: npm run bench:fomm-checkpoint [-- --mb 640]
 */
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadCheckpoint } from '../src/fomm/checkpoint/load.js';
import { PickleWriter, legacyFile, zipFile, type RawStorage } from '../test/fomm-pickle-writer.js';

const { values } = parseArgs({ options: { mb: { type: 'string', default: '640' } } });
const ELEMENTS = 1 << 20; // 4 MB per tensor
const tensors = Math.max(3, Math.round(Number(values.mb) / 4));
// A quarter each for the two state dicts the loader decodes, half for the part it skips.
const parts: [string, number][] = [
  ['generator', Math.floor(tensors / 4)],
  ['kp_detector', Math.floor(tensors / 4)],
  ['optimizer_generator', tensors - 2 * Math.floor(tensors / 4)],
];

const storages: RawStorage[] = [];
for (let i = 0; i < tensors; i++)
  storages.push({ key: String(i), elementSize: 4, data: new Uint8Array(new Float32Array(ELEMENTS).fill(i).buffer) });

function mainPickle(legacyPids: boolean): Uint8Array {
  const w = new PickleWriter().proto().emptyDict().mark();
  let key = 0;
  for (const [name, count] of parts) {
    w.str(name).global('collections', 'OrderedDict').emptyTuple().reduce().mark();
    for (let i = 0; i < count; i++, key++)
      w.str(`layer${i}.weight`).tensor('FloatStorage', String(key), ELEMENTS, 0, [256, 4096], [4096, 1], legacyPids);
    w.setItems();
  }
  return w.setItems().stop().bytes();
}

for (const format of ['legacy', 'zip'] as const) {
  const path = join(tmpdir(), `reenact-bench-${process.pid}-${format}.pth.tar`);
  const bytes = format === 'legacy' ? legacyFile(mainPickle(true), storages) : zipFile(mainPickle(false), storages);
  const fileMb = Math.round(bytes.length / 2 ** 20);
  writeFileSync(path, bytes);
  try {
    // With --expose-gc (as the npm script runs it) the growth figures exclude earlier garbage.
    (globalThis as { gc?: () => void }).gc?.();
    const before = process.memoryUsage();
    const start = performance.now();
    const checkpoint = await loadCheckpoint(path);
    const ms = performance.now() - start;
    const after = process.memoryUsage();
    const decoded = [...checkpoint.generator.values(), ...checkpoint.kpDetector.values()];
    const decodedMb = decoded.reduce((n, t) => n + t.data.byteLength, 0) / 2 ** 20;
    // Views share the file's buffer; the rest were copied (unaligned legacy storages).
    const views = decoded.filter((t) => t.data.buffer.byteLength > t.data.byteLength).length;
    process.stdout.write(
      `${JSON.stringify({
        bench: 'fomm-checkpoint',
        format,
        fileMb,
        decodedMb: Math.round(decodedMb),
        tensors: decoded.length,
        views,
        loadMs: Math.round(ms),
        rssGrowthMb: Math.round((after.rss - before.rss) / 2 ** 20),
        arrayBufferGrowthMb: Math.round((after.arrayBuffers - before.arrayBuffers) / 2 ** 20),
      })}\n`,
    );
  } finally {
    rmSync(path, { force: true });
  }
}
