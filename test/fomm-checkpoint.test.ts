import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { unzipSync, zipSync, type Zippable } from 'fflate';
import { ReenactError } from '../src/errors.js';
import { loadCheckpoint, parseCheckpoint } from '../src/fomm/checkpoint/load.js';
import type { StateDict } from '../src/fomm/checkpoint/tensors.js';
import { parseConfig } from '../src/fomm/config.js';
import { readZipEntries } from '../src/fomm/checkpoint/zip.js';
import { shared, skipWithoutShared } from './shared.js';
import { PickleWriter, checkpointPickle, concat, float32Bytes, legacyFile, zipFile } from './fomm-pickle-writer.js';

/** Asserts `run` throws BAD_CHECKPOINT whose message matches `pattern`. */
function assertBad(run: () => unknown, pattern?: RegExp): ReenactError {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof ReenactError, `expected a ReenactError, got ${String(caught)}`);
  assert.equal(caught.code, 'BAD_CHECKPOINT', caught.message);
  if (pattern) assert.match(caught.message, pattern);
  assert.ok(caught.hint, 'every refusal carries a hint');
  return caught;
}

/** One float32 tensor `w` of 4 elements under both state dicts. */
function tinyPickle(size = [4], stride = [1], offset = 0, numel = 4, legacyPid = true): Uint8Array {
  return checkpointPickle((w) => w.str('w').tensor('FloatStorage', '0', numel, offset, size, stride, legacyPid));
}
const tinyStorage = [{ key: '0', elementSize: 4, data: float32Bytes([1, 2, 3, 4]) }];

describe('golden-tiny checkpoints', { skip: skipWithoutShared }, () => {
  const legacyPath = shared('fomm', 'golden-tiny', 'checkpoint.legacy.pth.tar');
  const zipPath = shared('fomm', 'golden-tiny', 'checkpoint.zip.pth.tar');
  const config = parseConfig(readFileSync(shared('fomm', 'golden-tiny', 'config.yaml'), 'utf8'));

  test('legacy and zip files hold identical tensors', async () => {
    const legacy = await loadCheckpoint(legacyPath);
    const zip = await loadCheckpoint(zipPath);
    assert.equal(legacy.format, 'legacy');
    assert.equal(zip.format, 'zip');
    assert.match(legacy.sha256, /^[0-9a-f]{64}$/);
    assert.notEqual(legacy.sha256, zip.sha256);
    for (const part of ['generator', 'kpDetector'] as const) {
      const a = legacy[part];
      const b = zip[part];
      assert.deepEqual([...a.keys()], [...b.keys()]);
      for (const [key, tensor] of a) {
        const other = b.get(key)!;
        assert.equal(tensor.dtype, other.dtype, key);
        assert.deepEqual(tensor.shape, other.shape, key);
        assert.deepEqual(
          new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength),
          new Uint8Array(other.data.buffer, other.data.byteOffset, other.data.byteLength),
          key,
        );
      }
    }
  });

  test('shapes match the config and the architecture', async () => {
    const checkpoint = await loadCheckpoint(legacyPath);
    const { commonParams, kpDetectorParams, generatorParams } = config;
    const K = commonParams.numKp;
    const C = commonParams.numChannels;
    const kpFeatures = kpDetectorParams.blockExpansion + C; // hourglass output channels
    const shape = (dict: StateDict, key: string): number[] => {
      const tensor = dict.get(key);
      assert.ok(tensor, `missing ${key}`);
      assert.equal(
        tensor.data.length,
        tensor.shape.reduce((n, d) => n * d, 1),
        key,
      );
      return tensor.shape;
    };
    assert.deepEqual(shape(checkpoint.kpDetector, 'kp.weight'), [K, kpFeatures, 7, 7]);
    assert.deepEqual(shape(checkpoint.kpDetector, 'kp.bias'), [K]);
    assert.deepEqual(shape(checkpoint.kpDetector, 'jacobian.weight'), [4 * K, kpFeatures, 7, 7]);
    assert.deepEqual(shape(checkpoint.kpDetector, 'down.weight'), [C, 1, 13, 13]);
    assert.deepEqual(shape(checkpoint.generator, 'first.conv.weight'), [generatorParams.blockExpansion, C, 7, 7]);
    const dense = generatorParams.denseMotionParams;
    assert.deepEqual(shape(checkpoint.generator, 'dense_motion_network.mask.weight'), [
      K + 1,
      dense.blockExpansion + (K + 1) * 4,
      7,
      7,
    ]);
    assert.deepEqual(shape(checkpoint.generator, 'dense_motion_network.occlusion.weight'), [
      1,
      dense.blockExpansion + (K + 1) * 4,
      7,
      7,
    ]);
    assert.deepEqual(shape(checkpoint.generator, 'final.weight'), [C, generatorParams.blockExpansion, 7, 7]);
    for (let i = 0; i < generatorParams.numBottleneckBlocks; i++)
      assert.ok(checkpoint.generator.has(`bottleneck.r${i}.conv1.weight`));

    let tracked = 0;
    for (const dict of [checkpoint.generator, checkpoint.kpDetector]) {
      for (const [key, tensor] of dict) {
        if (key.endsWith('num_batches_tracked')) {
          tracked++;
          assert.equal(tensor.dtype, 'int64', key);
          assert.deepEqual(tensor.shape, [], key);
          assert.ok(tensor.data instanceof BigInt64Array && tensor.data.length === 1, key);
        } else {
          assert.equal(tensor.dtype, 'float32', key);
          assert.ok(tensor.data instanceof Float32Array);
          assert.ok((tensor.data as Float32Array).every(Number.isFinite), key);
        }
      }
    }
    assert.ok(tracked > 10);
    // Batch-norm variances are positive; a misplaced storage offset would show here.
    for (const [key, tensor] of checkpoint.generator) {
      if (key.endsWith('running_var'))
        assert.ok(
          (tensor.data as Float32Array).every((v) => v > 0),
          key,
        );
    }
  });

  test('truncated files are refused at every cut point', () => {
    for (const path of [legacyPath, zipPath]) {
      const bytes = new Uint8Array(readFileSync(path));
      const cuts = [
        0,
        1,
        2,
        3,
        4,
        10,
        20,
        30,
        60,
        100,
        137,
        138,
        500,
        5000,
        40000,
        bytes.length - 1,
        bytes.length - 22,
        bytes.length - 100,
      ];
      for (let i = 1; i < 40; i++) cuts.push(Math.floor((bytes.length * i) / 40));
      for (const cut of cuts) assertBad(() => parseCheckpoint(bytes.subarray(0, cut)));
    }
  });

  test('a zip whose storage entry is missing is refused', () => {
    const files = unzipSync(new Uint8Array(readFileSync(zipPath)));
    const pruned: Zippable = {};
    for (const [name, data] of Object.entries(files))
      if (name !== 'checkpoint.zip.pth/data/7') pruned[name] = [data, { level: 0 }];
    assertBad(() => parseCheckpoint(zipSync(pruned)), /no entry checkpoint\.zip\.pth\/data\/7/);
  });

  test("a flipped bit inside a stored tensor is caught by the entry's CRC-32", () => {
    const bytes = new Uint8Array(readFileSync(zipPath));
    const entries = readZipEntries(bytes);
    const storage = entries.get('checkpoint.zip.pth/data/7')!;
    assert.equal(storage.method, 0, 'the golden archive stores its tensors');
    const damaged = bytes.slice();
    damaged[storage.dataOffset + Math.floor(storage.size / 2)]! ^= 0x10;
    assertBad(() => parseCheckpoint(damaged), /checkpoint\.zip\.pth\/data\/7 fails its CRC-32 check/);
  });

  test('a deflated zip loads to the same tensors', () => {
    const files = unzipSync(new Uint8Array(readFileSync(zipPath)));
    const deflated: Zippable = {};
    for (const [name, data] of Object.entries(files)) deflated[name] = [data, { level: 6 }];
    const a = parseCheckpoint(zipSync(deflated));
    const b = parseCheckpoint(new Uint8Array(readFileSync(zipPath)));
    assert.deepEqual(a.kpDetector.get('kp.weight'), b.kpDetector.get('kp.weight'));
    assert.deepEqual([...a.generator.keys()], [...b.generator.keys()]);
  });

  test('a wrong magic number is refused', () => {
    const bytes = new Uint8Array(readFileSync(legacyPath));
    bytes[5] = bytes[5]! ^ 0xff;
    assertBad(() => parseCheckpoint(bytes), /magic number/);
  });
});

describe('hand-made checkpoints', () => {
  test('a minimal legacy and zip file load', () => {
    for (const bytes of [
      legacyFile(tinyPickle(), tinyStorage),
      zipFile(tinyPickle([4], [1], 0, 4, false), tinyStorage),
    ]) {
      const checkpoint = parseCheckpoint(bytes);
      assert.deepEqual(checkpoint.generator.get('w'), {
        dtype: 'float32',
        shape: [4],
        data: Float32Array.from([1, 2, 3, 4]),
      });
      assert.deepEqual(checkpoint.kpDetector.get('w')?.shape, [4]);
    }
  });

  test('non-contiguous tensors and storage offsets come out as contiguous copies', () => {
    const data = float32Bytes([0, 1, 2, 3, 4, 5, 6]);
    // The transpose of the 2x3 matrix stored at offset 1: [[1,2,3],[4,5,6]]^T.
    const main = checkpointPickle((w) => w.str('t').tensor('FloatStorage', 's', 7, 1, [3, 2], [1, 3]));
    const checkpoint = parseCheckpoint(legacyFile(main, [{ key: 's', elementSize: 4, data }]));
    assert.deepEqual(checkpoint.generator.get('t'), {
      dtype: 'float32',
      shape: [3, 2],
      data: Float32Array.from([1, 4, 2, 5, 3, 6]),
    });
  });

  test('float16, float64, bfloat16, int32 and bool storages convert', () => {
    const half = new Uint8Array(new Uint16Array([0x3c00, 0xc000, 0x3555, 0x0001]).buffer); // 1, -2, ~0.333, smallest subnormal
    const double = new Uint8Array(new Float64Array([0.5, -1e10]).buffer);
    const bf16 = new Uint8Array(new Uint16Array([0x3f80, 0xc040]).buffer); // 1, -3
    const int32 = new Uint8Array(new Int32Array([7, -9]).buffer);
    const main = checkpointPickle((w) => {
      w.str('h').tensor('HalfStorage', 'h', 4, 0, [4], [1]);
      w.str('d').tensor('DoubleStorage', 'd', 2, 0, [2], [1]);
      w.str('b').tensor('BFloat16Storage', 'b', 2, 0, [2], [1]);
      w.str('i').tensor('IntStorage', 'i', 2, 1, [1], [1]);
      w.str('m').tensor('BoolStorage', 'm', 3, 0, [3], [1]);
    });
    const checkpoint = parseCheckpoint(
      legacyFile(main, [
        { key: 'h', elementSize: 2, data: half },
        { key: 'd', elementSize: 8, data: double },
        { key: 'b', elementSize: 2, data: bf16 },
        { key: 'i', elementSize: 4, data: int32 },
        { key: 'm', elementSize: 1, data: Uint8Array.from([1, 0, 1]) },
      ]),
    );
    const g = checkpoint.generator;
    assert.deepEqual(
      [...(g.get('h')!.data as Float32Array)],
      [1, -2, Math.fround(0.333251953125), Math.fround(2 ** -24)],
    );
    assert.equal(g.get('h')!.dtype, 'float32');
    assert.deepEqual([...(g.get('d')!.data as Float32Array)], [0.5, Math.fround(-1e10)]);
    assert.deepEqual([...(g.get('b')!.data as Float32Array)], [1, -3]);
    assert.deepEqual(g.get('i'), { dtype: 'int32', shape: [1], data: Int32Array.from([-9]) });
    assert.deepEqual(g.get('m'), { dtype: 'bool', shape: [3], data: Uint8Array.from([1, 0, 1]) });
  });

  test('Parameters (torch._utils._rebuild_parameter) load as their tensor', () => {
    const main = checkpointPickle((w) => {
      w.str('p').global('torch._utils', '_rebuild_parameter').mark();
      w.tensor('FloatStorage', '0', 4, 0, [2, 2], [2, 1]);
      w.bool(true).global('collections', 'OrderedDict').emptyTuple().reduce().tuple().reduce();
    });
    assert.deepEqual(parseCheckpoint(legacyFile(main, tinyStorage)).kpDetector.get('p')?.shape, [2, 2]);
  });

  test('a tensor larger than its storage is refused', () => {
    assertBad(() => parseCheckpoint(legacyFile(tinyPickle([10], [1]), tinyStorage)), /reaches past its storage/);
    assertBad(() => parseCheckpoint(legacyFile(tinyPickle([2, 2], [1, 3]), tinyStorage)), /reaches past its storage/);
    assertBad(() => parseCheckpoint(legacyFile(tinyPickle([4], [1], 1), tinyStorage)), /reaches past its storage/);
    assertBad(
      () => parseCheckpoint(zipFile(tinyPickle([5], [1], 0, 4, false), tinyStorage)),
      /reaches past its storage/,
    );
  });

  test('a storage whose bytes disagree with its declared size is refused', () => {
    // The pickle declares 8 elements; the file holds 4.
    assertBad(
      () => parseCheckpoint(legacyFile(tinyPickle([4], [1], 0, 8), tinyStorage)),
      /holds 4 elements, but its tensors declare 8/,
    );
    assertBad(
      () => parseCheckpoint(zipFile(tinyPickle([4], [1], 0, 8, false), tinyStorage)),
      /holds 16 bytes, but its tensors declare 8/,
    );
    const extra = concat([legacyFile(tinyPickle(), tinyStorage), Uint8Array.from([0])]);
    assertBad(() => parseCheckpoint(extra), /unexpected bytes/);
  });

  test('a file without generator or kp_detector is not a FOMM checkpoint', () => {
    const main = checkpointPickle((w) => w.str('w').tensor('FloatStorage', '0', 4, 0, [4], [1]), ['model']);
    const error = assertBad(
      () => parseCheckpoint(legacyFile(main, tinyStorage)),
      /does not look like a First Order Motion Model checkpoint.*"generator"/,
    );
    assert.match(error.hint!, /kp_detector/);
  });

  test('other files are refused', () => {
    assertBad(
      () => parseCheckpoint(new TextEncoder().encode('model_params:\n  common_params: {}\n')),
      /not a PyTorch checkpoint/,
    );
    assertBad(
      () => parseCheckpoint(Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])),
      /not a PyTorch checkpoint/,
    );
    assertBad(() => parseCheckpoint(new Uint8Array(0)), /not a PyTorch checkpoint/);
    // A zip archive that is not a torch one.
    assertBad(() => parseCheckpoint(zipSync({ 'readme.txt': new TextEncoder().encode('hello') })), /data\.pkl/);
  });

  test('a missing file is FILE_NOT_FOUND', async () => {
    await assert.rejects(
      loadCheckpoint(join(tmpdir(), 'reenact-no-such-checkpoint.pth.tar')),
      (e: unknown) => e instanceof ReenactError && e.code === 'FILE_NOT_FOUND',
    );
  });
});

describe('hostile pickles are refused without running anything', () => {
  const dir = mkdtempSync(join(tmpdir(), 'reenact-pickle-'));
  const marker = join(dir, 'pwned');
  const payload = `touch ${marker}`;

  /** A main pickle whose 'generator' value is a call to `module.name(payload)`. */
  const callIn = (module: string, name: string): Uint8Array =>
    new PickleWriter()
      .proto()
      .emptyDict()
      .mark()
      .str('generator')
      .global(module, name)
      .str(payload)
      .op(0x85)
      .reduce()
      .setItems()
      .stop()
      .bytes();

  for (const [module, name] of [
    ['os', 'system'],
    ['posix', 'system'],
    ['builtins', 'eval'],
    ['__builtin__', 'eval'],
    ['subprocess', 'check_output'],
    ['torch', 'load'],
    ['collections', 'namedtuple'],
  ]) {
    test(`${module}.${name} is refused by name`, () => {
      const main = callIn(module!, name!);
      for (const bytes of [legacyFile(main, []), zipFile(main, [])]) {
        assertBad(() => parseCheckpoint(bytes), new RegExp(`"${module}\\.${name}"`));
      }
      assert.equal(existsSync(marker), false);
    });
  }

  test('STACK_GLOBAL (protocol 4) is held to the same whitelist', () => {
    const w = new PickleWriter().proto(4).op(0x95, 0, 0, 0, 0, 0, 0, 0, 0);
    w.op(0x8c, 2, ...new TextEncoder().encode('os'))
      .op(0x94)
      .op(0x8c, 6, ...new TextEncoder().encode('system'))
      .op(0x94)
      .op(0x93);
    const main = w.str(payload).op(0x85).reduce().stop().bytes();
    assertBad(() => parseCheckpoint(zipFile(main, [])), /"os\.system"/);
  });

  test('object-building opcodes are refused by name', () => {
    const cases: [string, number[]][] = [
      ['INST', [0x28, 0x69, ...new TextEncoder().encode('os\nsystem\n')]],
      ['OBJ', [0x28, 0x6f]],
      ['NEWOBJ', [0x29, 0x29, 0x81]],
      ['EXT1', [0x82, 0x01]],
      ['PERSID', [0x50, 0x30, 0x0a]],
    ];
    for (const [name, ops] of cases) {
      const main = new PickleWriter()
        .proto()
        .op(...ops)
        .stop()
        .bytes();
      assertBad(() => parseCheckpoint(zipFile(main, [])), new RegExp(`opcode ${name}`));
    }
  });

  test('REDUCE on a storage class or with a non-tuple is refused', () => {
    const callClass = new PickleWriter().proto().global('torch', 'FloatStorage').emptyTuple().reduce().stop().bytes();
    assertBad(() => parseCheckpoint(zipFile(callClass, [])), /torch\.FloatStorage/);
    const notTuple = new PickleWriter().proto().global('collections', 'OrderedDict').op(0x5d).reduce().stop().bytes();
    assertBad(() => parseCheckpoint(zipFile(notTuple, [])), /argument tuple/);
  });

  test('BUILD on anything but a dict is refused', () => {
    const main = new PickleWriter().proto().op(0x5d).emptyDict().op(0x62).stop().bytes();
    assertBad(() => parseCheckpoint(zipFile(main, [])), /BUILD/);
  });

  test('persistent ids other than storages are refused', () => {
    const main = new PickleWriter().proto().mark().str('module').str('x').tuple().binpersid().stop().bytes();
    assertBad(() => parseCheckpoint(zipFile(main, [])), /not a storage reference/);
  });

  test('huge declared lengths and bad memo reads are refused', () => {
    const huge = new PickleWriter().proto().op(0x58, 0xff, 0xff, 0xff, 0x7f).stop().bytes();
    assertBad(() => parseCheckpoint(zipFile(huge, [])), /ends in the middle of a string/);
    const huge8 = new PickleWriter().proto(4).op(0x8d, 0, 0, 0, 0, 0, 0, 0, 0x40).stop().bytes();
    assertBad(() => parseCheckpoint(zipFile(huge8, [])), /more than the whole file/);
    const memo = new PickleWriter().proto().op(0x68, 9).stop().bytes();
    assertBad(() => parseCheckpoint(zipFile(memo, [])), /memo slot 9/);
    const deep = new PickleWriter().proto();
    for (let i = 0; i < 200_000; i++) deep.op(0x5d);
    assertBad(() => parseCheckpoint(zipFile(deep.stop().bytes(), [])), /nests deeper/);
    const marks = new PickleWriter().proto();
    for (let i = 0; i < 200_000; i++) marks.mark();
    assertBad(() => parseCheckpoint(zipFile(marks.stop().bytes(), [])), /nests deeper/);
    // LONG_BINPUT into ever new slots: the memo is bounded.
    const memoFlood = new PickleWriter().proto().none();
    for (let i = 0; i < 1_100_000; i++) memoFlood.op(0x72, i & 0xff, (i >> 8) & 0xff, i >> 16, 0);
    assertBad(() => parseCheckpoint(zipFile(memoFlood.stop().bytes(), [])), /memoizes too many values/);
  });

  test('cleanup', () => {
    rmSync(dir, { recursive: true, force: true });
  });
});
