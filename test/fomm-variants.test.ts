import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { FommConfig } from '../src/fomm/config.js';
import { RELATIVE, RELATIVE_ADAPT, normalizeKeypoints } from '../src/fomm/keypoints.js';
import { FommModel } from '../src/fomm/model.js';
import { expectedShapes, randomWeights } from '../src/fomm/tools/random-weights.js';
import { ReenactError } from '../src/errors.js';
import type { RgbImage } from '../src/types.js';

/** golden-tiny's model_params; each variant changes one thing the schema allows. */
function tinyConfig(): FommConfig {
  return {
    commonParams: { numKp: 10, numChannels: 3, estimateJacobian: true },
    kpDetectorParams: {
      temperature: 0.1,
      blockExpansion: 8,
      maxFeatures: 64,
      scaleFactor: 0.25,
      numBlocks: 5,
      singleJacobianMap: false,
      pad: 0,
    },
    generatorParams: {
      blockExpansion: 8,
      maxFeatures: 64,
      numDownBlocks: 2,
      numBottleneckBlocks: 2,
      estimateOcclusionMap: true,
      denseMotionParams: { blockExpansion: 8, maxFeatures: 128, numBlocks: 5, scaleFactor: 0.25, kpVariance: 0.01 },
    },
  };
}

const variants: [string, (c: FommConfig) => void][] = [
  [
    'num_kp 5',
    (c) => {
      c.commonParams.numKp = 5;
    },
  ],
  [
    'num_kp 15',
    (c) => {
      c.commonParams.numKp = 15;
    },
  ],
  [
    'no jacobians',
    (c) => {
      c.commonParams.estimateJacobian = false;
    },
  ],
  [
    'single jacobian map',
    (c) => {
      c.kpDetectorParams.singleJacobianMap = true;
    },
  ],
  [
    'no occlusion map',
    (c) => {
      c.generatorParams.estimateOcclusionMap = false;
    },
  ],
  [
    'keypoint conv pad 3',
    (c) => {
      c.kpDetectorParams.pad = 3;
    },
  ],
  [
    'keypoint scale_factor 1',
    (c) => {
      c.kpDetectorParams.scaleFactor = 1;
      c.kpDetectorParams.numBlocks = 3;
    },
  ],
  [
    'dense motion scale_factor 0.5',
    (c) => {
      c.generatorParams.denseMotionParams.scaleFactor = 0.5;
    },
  ],
  [
    'dense motion scale_factor 1 (motion 256x256, features resized down to 64x64)',
    (c) => {
      c.generatorParams.denseMotionParams.scaleFactor = 1;
      c.generatorParams.denseMotionParams.numBlocks = 3;
    },
  ],
  [
    'num_down_blocks 3 (features 32x32, motion 64x64)',
    (c) => {
      c.generatorParams.numDownBlocks = 3;
    },
  ],
];

/** A smooth synthetic face-like picture; `shift` moves it. */
function picture(shift: number): RgbImage {
  const size = 256;
  const data = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const i = (y * size + x) * 3;
      const dx = x - 128 - shift;
      const dy = y - 120;
      data[i] = Math.round(255 * Math.exp(-(dx * dx + dy * dy) / 5000));
      data[i + 1] = Math.round(127 + 120 * Math.sin((x + shift) / 19) * Math.cos(y / 23));
      data[i + 2] = Math.round(255 * (y / 255));
    }
  }
  return { width: size, height: size, data };
}

describe('FOMM config variants with random weights', () => {
  let cacheDir = '';
  after(async () => {
    if (cacheDir) await rm(cacheDir, { recursive: true, force: true });
  });

  for (const [name, change] of variants) {
    test(name, async () => {
      cacheDir ||= await mkdtemp(join(tmpdir(), 'reenact-fomm-variants-'));
      const config = tinyConfig();
      change(config);
      const k = config.commonParams.numKp;
      const model = await FommModel.load({
        config,
        checkpoint: randomWeights(config, { height: 256, width: 256 }, 7),
        cacheDir,
        threads: 1,
      });
      try {
        const sourceImage = picture(0);
        const source = await model.encodeSource(sourceImage);
        const driving = await model.detectKeypoints(picture(12));
        for (const kp of [source.keypoints, driving]) {
          assert.equal(kp.value.length, 2 * k);
          assert.ok(
            kp.value.every((v) => v >= -1 && v <= 1),
            'keypoints in [-1, 1]',
          );
          assert.equal(kp.jacobian?.length, config.commonParams.estimateJacobian ? 4 * k : undefined);
        }
        const motionSize = 256 * config.generatorParams.denseMotionParams.scaleFactor;
        const frame = await model.generate(
          source,
          normalizeKeypoints(source.keypoints, driving, source.keypoints, RELATIVE_ADAPT),
          { debug: true },
        );
        assert.deepEqual([frame.image.height, frame.image.width, frame.image.channels], [256, 256, 3]);
        assert.ok(
          frame.image.data.every((v) => v >= 0 && v <= 1),
          'prediction in [0, 1]',
        );
        const { mask, occlusion, deformed } = frame.debug!;
        assert.deepEqual(mask.shape, [k + 1, motionSize, motionSize]);
        const plane = motionSize * motionSize;
        for (let p = 0; p < plane; p++) {
          let sum = 0;
          for (let c = 0; c <= k; c++) sum += mask.data[c * plane + p]!;
          assert.ok(Math.abs(sum - 1) < 1e-5, `masks sum to 1 at pixel ${p} (${sum})`);
        }
        if (config.generatorParams.estimateOcclusionMap) {
          assert.deepEqual(occlusion!.shape, [motionSize, motionSize]);
          assert.ok(
            occlusion!.data.every((v) => v > 0 && v < 1),
            'occlusion in (0, 1)',
          );
        } else {
          assert.equal(occlusion, undefined);
        }
        assert.equal(deformed.data.length, 256 * 256 * 3);

        // Driving keypoints equal to the source's: every sparse motion is the identity, so the
        // motion field is too and the deformed source is the source (up to the half-pixel
        // offset between the [-1, 1] grid and align_corners = false sampling).
        const still = await model.generate(
          source,
          normalizeKeypoints(source.keypoints, source.keypoints, source.keypoints, RELATIVE),
          { debug: true },
        );
        let total = 0;
        let count = 0;
        let worst = 0;
        for (let y = 32; y < 224; y++) {
          for (let x = 32; x < 224; x++) {
            for (let c = 0; c < 3; c++) {
              const i = (y * 256 + x) * 3 + c;
              const diff = Math.abs(still.debug!.deformed.data[i]! - sourceImage.data[i]! / 255);
              total += diff;
              worst = Math.max(worst, diff);
              count++;
            }
          }
        }
        assert.ok(total / count < 0.01, `deformed ≈ source: mean |diff| ${total / count}`);
        assert.ok(worst < 0.06, `deformed ≈ source: max |diff| ${worst}`);
      } finally {
        await model.dispose();
      }
    });
  }

  test('a checkpoint tensor of the wrong shape is CHECKPOINT_MISMATCH naming it and both shapes', async () => {
    cacheDir ||= await mkdtemp(join(tmpdir(), 'reenact-fomm-variants-'));
    const config = tinyConfig();
    const weights = randomWeights(config, { height: 256, width: 256 }, 3);
    weights.generator.set('bottleneck.r1.conv2.weight', {
      dtype: 'float32',
      shape: [64, 64, 5, 5],
      data: new Float32Array(64 * 64 * 25),
    });
    await assert.rejects(
      FommModel.load({ config, checkpoint: { ...weights, sha256: 'mismatch-shape' }, cacheDir }),
      (error: unknown) =>
        error instanceof ReenactError &&
        error.code === 'CHECKPOINT_MISMATCH' &&
        /generator\.bottleneck\.r1\.conv2\.weight/.test(error.message) &&
        /\[64, 64, 5, 5\]/.test(error.message) &&
        /\[32, 32, 3, 3\]/.test(error.message),
    );
  });

  test('a missing tensor, or a config that does not fit the checkpoint, is CHECKPOINT_MISMATCH', async () => {
    const config = tinyConfig();
    const weights = randomWeights(config, { height: 256, width: 256 }, 3);
    weights.kpDetector.delete('kp.bias');
    await assert.rejects(
      FommModel.load({ config, checkpoint: { ...weights, sha256: 'mismatch-missing' }, cacheDir }),
      (error: unknown) =>
        error instanceof ReenactError &&
        error.code === 'CHECKPOINT_MISMATCH' &&
        /kp_detector\.kp\.bias/.test(error.message),
    );
    const other = tinyConfig();
    other.commonParams.numKp = 15;
    await assert.rejects(
      FommModel.load({
        config: other,
        checkpoint: { ...randomWeights(config, { height: 256, width: 256 }, 3), sha256: 'mismatch-config' },
        cacheDir,
      }),
      (error: unknown) =>
        error instanceof ReenactError && error.code === 'CHECKPOINT_MISMATCH' && /\[15, /.test(error.message),
    );
  });

  test('the expected state-dict layout of the published vox-adv-256 architecture', () => {
    const config = tinyConfig();
    Object.assign(config.kpDetectorParams, { blockExpansion: 32, maxFeatures: 1024 });
    Object.assign(config.generatorParams, { blockExpansion: 64, maxFeatures: 512, numBottleneckBlocks: 6 });
    Object.assign(config.generatorParams.denseMotionParams, { blockExpansion: 64, maxFeatures: 1024 });
    const shapes = expectedShapes(config, { height: 256, width: 256 });
    assert.deepEqual(shapes.generator.get('bottleneck.r5.conv2.weight'), [256, 256, 3, 3]);
    assert.deepEqual(
      shapes.generator.get('dense_motion_network.hourglass.encoder.down_blocks.0.conv.weight'),
      [128, 44, 3, 3],
    );
    assert.deepEqual(shapes.generator.get('dense_motion_network.mask.weight'), [11, 108, 7, 7]);
    assert.deepEqual(shapes.generator.get('dense_motion_network.down.weight'), [3, 1, 13, 13]);
    assert.deepEqual(shapes.generator.get('final.weight'), [3, 64, 7, 7]);
    assert.deepEqual(shapes.kpDetector.get('kp.weight'), [10, 35, 7, 7]);
    assert.deepEqual(shapes.kpDetector.get('jacobian.weight'), [40, 35, 7, 7]);
    assert.deepEqual(shapes.kpDetector.get('predictor.decoder.up_blocks.0.conv.weight'), [512, 1024, 3, 3]);
  });
});
