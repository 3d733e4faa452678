import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { compareConformance, writeConformance } from '../src/fomm/tools/conformance.js';
import { nativeKernels as loadNativeKernels } from '../src/fomm/native/decoder.js';
import { FommModel } from '../src/fomm/model.js';
import { readImage } from '../src/media/image.js';
import { shared, skipWithoutShared } from './shared.js';

const golden = shared('fomm', 'golden-tiny');
const nativeKernelsBuilt = loadNativeKernels().module !== undefined;

describe('FOMM conformance on golden-tiny', { skip: skipWithoutShared }, () => {
  const folders: string[] = [];
  after(async () => {
    for (const folder of folders) await rm(folder, { recursive: true, force: true });
  });

  // The bottleneck runs on the native kernels where they are built (the default), else in ORT;
  // one case keeps it in ORT so both paths are checked against PyTorch.
  const cases = [
    { format: 'legacy', winograd: 'auto', nativeKernels: true },
    { format: 'zip', winograd: 'auto', nativeKernels: false },
    // The tiny model's convs are too narrow for Winograd to pay; force it to check its numerics.
    { format: 'zip', winograd: 'always', nativeKernels: true },
  ] as const;
  for (const { format, winograd, nativeKernels } of cases) {
    test(`${format} checkpoint, winograd ${winograd}, native kernels ${nativeKernels ? 'where built' : 'off'}: every golden file reproduced within tolerance`, async () => {
      const work = await mkdtemp(join(tmpdir(), 'reenact-fomm-conformance-'));
      folders.push(work);
      const model = await FommModel.load({
        config: join(golden, 'config.yaml'),
        checkpoint: join(golden, `checkpoint.${format}.pth.tar`),
        cacheDir: join(work, 'cache'),
        winograd,
        nativeKernels,
      });
      assert.equal(model.usesNativeKernels, nativeKernels && nativeKernelsBuilt);
      try {
        const written = await writeConformance(model, golden, work);
        const goldenFiles = (await readdir(golden)).filter((name) => name.endsWith('.npy')).sort();
        assert.deepEqual(written.slice().sort(), goldenFiles);
        const results = await compareConformance(work, golden, written);
        for (const result of results) {
          assert.ok(result.pass, `${result.file}: max |diff| ${result.maxAbsDiff} > ${result.tolerance}`);
        }
        // The keypoints are held to the tighter tolerance.
        for (const result of results.filter((r) => r.file.startsWith('kp_'))) assert.ok(result.maxAbsDiff < 1e-4);
      } finally {
        await model.dispose();
      }
    });
  }

  test('a second load reuses the cached ONNX models and gives the same keypoints; old entries are pruned', async () => {
    const work = await mkdtemp(join(tmpdir(), 'reenact-fomm-cache-'));
    folders.push(work);
    const options = {
      config: join(golden, 'config.yaml'),
      checkpoint: join(golden, 'checkpoint.zip.pth.tar'),
      cacheDir: work,
    };
    // Five stale entries from other models: the least recently used go, so four entries stay.
    for (let i = 0; i < 5; i++) {
      const stale = join(work, 'fomm', `stale-${i}`);
      await mkdir(stale, { recursive: true });
      await utimes(stale, new Date(2020, 0, 1 + i), new Date(2020, 0, 1 + i));
    }
    const first = await FommModel.load(options);
    const entries = (await readdir(join(work, 'fomm'))).sort();
    assert.equal(entries.length, 4);
    assert.deepEqual(
      entries.filter((name) => name.startsWith('stale-')),
      ['stale-2', 'stale-3', 'stale-4'],
    );
    const folder = entries.find((name) => !name.startsWith('stale-'));
    const files = (await readdir(join(work, 'fomm', folder!))).sort();
    const generator = first.usesNativeKernels
      ? ['frame-generator-head.onnx', 'frame-generator-tail.onnx']
      : ['frame-generator.onnx'];
    assert.deepEqual(files, [...generator, 'keypoint-detector.onnx', 'source-encoder.onnx', 'source-warp.onnx']);
    const second = await FommModel.load(options);
    const image = await readImage(join(golden, 'driving_003.png'));
    const [a, b] = [await first.detectKeypoints(image), await second.detectKeypoints(image)];
    assert.deepEqual(a.value, b.value);
    await first.dispose();
    await second.dispose();
  });
});
