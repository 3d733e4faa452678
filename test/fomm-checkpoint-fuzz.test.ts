/**
 * Fuzzes the checkpoint loader with mutated golden checkpoints: every variant must either parse or
 * be refused with a ReenactError, never throw anything else, never crash and never hang. Variants
 * come from a seeded PRNG (reproducible) and run in a worker thread that a watchdog can stop.
 * Zip archives are fuzzed twice: as raw bytes (the zip reader; nearly every change then fails an
 * entry's CRC-32), and entry by entry, re-zipped with valid CRCs, so the pickle and storages
 * inside the archive are fuzzed as deeply as the legacy file's.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { unzipSync, zipSync, type Zippable } from 'fflate';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { ReenactError } from '../src/errors.js';
import { parseCheckpoint } from '../src/fomm/checkpoint/load.js';
import { prng } from '../src/fomm/tools/random-weights.js';

const VARIANTS_PER_FILE = 1500;
/** A variant still running after this long is a hang (a parse takes milliseconds). */
const HANG_MS = 15_000;

/** raw: the file's bytes are mutated; entries: one entry of a zip archive is, then the archive is rebuilt. */
type Mode = 'raw' | 'entries';
interface Job {
  path: string;
  seed: number;
  count: number;
  mode: Mode;
  progress: SharedArrayBuffer;
}
interface Outcome {
  parsed: number;
  refused: number;
  failures: string[];
}

/** Pickle opcodes, the refused ones included, to plant where the structure is. */
const OPCODES = [...'()t]}lsuaeRbQqhjrKMJXNc.0128', ...'iopPIFLSVg']
  .map((c) => c.charCodeAt(0))
  .concat([0x80, 0x81, 0x82, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e, 0x92, 0x93, 0x94, 0x95]);

/** One mutated copy of `original` and what was done to it. */
function mutate(original: Uint8Array, random: () => number): { bytes: Uint8Array; what: string } {
  const int = (n: number): number => Math.floor(random() * n);
  // Most mutations hit the structure (pickles, zip directory, storage headers) rather than weight bytes.
  const structure = (): number => {
    const r = random();
    if (r < 0.45) return int(Math.min(original.length, 50_000));
    if (r < 0.7) return original.length - 1 - int(Math.min(original.length, 30_000));
    return int(original.length);
  };
  const kind = int(6);
  switch (kind) {
    case 0: {
      const bytes = original.slice();
      const flips = 1 + int(4);
      const at: number[] = [];
      for (let i = 0; i < flips; i++) {
        const p = structure();
        at.push(p);
        bytes[p] = bytes[p]! ^ (1 + int(255));
      }
      return { bytes, what: `flip bytes at ${at.join(',')}` };
    }
    case 1: {
      const bytes = original.slice();
      const p = structure();
      bytes[p] = [0, 0xff, 0x7f, 0x80, 0x01][int(5)]!;
      return { bytes, what: `set byte ${p} to ${bytes[p]}` };
    }
    case 2: {
      const cut = int(original.length);
      return { bytes: original.slice(0, cut), what: `truncate at ${cut}` };
    }
    case 3: {
      const p = structure();
      const length = 1 + int(16);
      const inserted = Uint8Array.from({ length }, () => int(256));
      const bytes = new Uint8Array(original.length + length);
      bytes.set(original.subarray(0, p));
      bytes.set(inserted, p);
      bytes.set(original.subarray(p), p + length);
      return { bytes, what: `insert ${length} bytes at ${p}` };
    }
    case 4: {
      const p = structure();
      const length = 1 + int(16);
      const tail = original.subarray(Math.min(original.length, p + length));
      const bytes = new Uint8Array(p + tail.length);
      bytes.set(original.subarray(0, p));
      bytes.set(tail, p);
      return { bytes, what: `delete ${length} bytes at ${p}` };
    }
    default: {
      const bytes = original.slice();
      const p = int(Math.min(original.length, 48_000));
      bytes[p] = OPCODES[int(OPCODES.length)]!;
      return { bytes, what: `opcode ${bytes[p]} at ${p}` };
    }
  }
}

/** A copy of the archive with one entry (the pickle half the time) mutated, stored with fresh CRCs. */
function mutateEntry(files: Record<string, Uint8Array>, random: () => number): { bytes: Uint8Array; what: string } {
  const names = Object.keys(files);
  const pickle = names.find((name) => name.endsWith('/data.pkl'))!;
  const target = random() < 0.5 ? pickle : names[Math.floor(random() * names.length)]!;
  const mutated = mutate(files[target]!, random);
  const rebuilt: Zippable = {};
  for (const name of names) rebuilt[name] = [name === target ? mutated.bytes : files[name]!, { level: 0 }];
  return { bytes: zipSync(rebuilt), what: `${target}: ${mutated.what}` };
}

function runJob({ path, seed, count, mode, progress }: Job): Outcome {
  const original = new Uint8Array(readFileSync(path));
  const files = mode === 'entries' ? unzipSync(original) : undefined;
  const random = prng(seed);
  const current = new Int32Array(progress);
  const outcome: Outcome = { parsed: 0, refused: 0, failures: [] };
  for (let i = 0; i < count; i++) {
    Atomics.store(current, 0, i);
    const { bytes, what } = files ? mutateEntry(files, random) : mutate(original, random);
    try {
      const checkpoint = parseCheckpoint(bytes);
      for (const dict of [checkpoint.generator, checkpoint.kpDetector]) {
        for (const [key, tensor] of dict) {
          if (tensor.data.length !== tensor.shape.reduce((n, d) => n * d, 1))
            throw new Error(`${key}: ${tensor.data.length} elements for shape ${tensor.shape.join('x')}`);
        }
      }
      outcome.parsed++;
    } catch (error) {
      if (error instanceof ReenactError && error.code === 'BAD_CHECKPOINT' && error.message && error.hint) {
        outcome.refused++;
      } else if (outcome.failures.length < 5) {
        outcome.failures.push(
          `variant ${i} (${what}): ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`,
        );
      }
    }
  }
  return outcome;
}

/** Runs a job in a worker; rejects if one variant takes longer than HANG_MS or the worker dies. */
function runInWorker(path: string, seed: number, mode: Mode): Promise<Outcome> {
  const progress = new SharedArrayBuffer(4);
  const current = new Int32Array(progress);
  const job: Job = { path, seed, count: VARIANTS_PER_FILE, mode, progress };
  // The worker registers the TypeScript loader the test itself runs under, then loads this file.
  const boot = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((tsx) => { tsx.register(); return import(${JSON.stringify(import.meta.url)}); });`;
  const worker = new Worker(boot, { eval: true, workerData: job });
  return new Promise((resolve, reject) => {
    let last = -1;
    const watchdog = setInterval(() => {
      const now = Atomics.load(current, 0);
      if (now === last) {
        clearInterval(watchdog);
        void worker.terminate();
        reject(new Error(`variant ${now} of seed ${seed} did not finish within ${HANG_MS} ms (a hang)`));
      }
      last = now;
    }, HANG_MS);
    worker.once('message', (outcome: Outcome) => {
      clearInterval(watchdog);
      resolve(outcome);
    });
    worker.once('error', (error) => {
      clearInterval(watchdog);
      reject(error);
    });
    worker.once('exit', (code) => {
      clearInterval(watchdog);
      if (code !== 0) reject(new Error(`fuzz worker exited with code ${code}`));
    });
  });
}

if (isMainThread) {
  const { describe, test } = await import('node:test');
  const { shared, skipWithoutShared } = await import('./shared.js');
  describe('checkpoint fuzzing', { skip: skipWithoutShared }, () => {
    const cases = [
      { file: 'legacy', mode: 'raw', seed: 1950, minParsed: VARIANTS_PER_FILE / 20 },
      // Raw bytes of a zip: a change to a tensor or the pickle fails its CRC, so few parse.
      { file: 'zip', mode: 'raw', seed: 1006, minParsed: 0 },
      { file: 'zip', mode: 'entries', seed: 2024, minParsed: VARIANTS_PER_FILE / 20 },
    ] as const;
    for (const { file, mode, seed, minParsed } of cases) {
      const label = mode === 'raw' ? `${file} checkpoints` : `${file} checkpoint entries (re-zipped)`;
      test(`${VARIANTS_PER_FILE} mutated ${label} parse or are refused`, async (t) => {
        const outcome = await runInWorker(shared('fomm', 'golden-tiny', `checkpoint.${file}.pth.tar`), seed, mode);
        t.diagnostic(`${outcome.parsed} parsed, ${outcome.refused} refused`);
        assert.deepEqual(outcome.failures, []);
        assert.equal(outcome.parsed + outcome.refused, VARIANTS_PER_FILE);
        // Refusals must be common, and parses too where the mutations reach past the checksums,
        // or the mutations are not exercising the loader.
        assert.ok(outcome.refused > VARIANTS_PER_FILE / 5, `only ${outcome.refused} refused`);
        assert.ok(outcome.parsed >= minParsed, `only ${outcome.parsed} parsed`);
      });
    }
  });
} else {
  parentPort!.postMessage(runJob(workerData as Job));
}
