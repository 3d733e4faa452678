import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ReenactError } from '../src/errors.js';
import { loadConfig, parseConfig, type FommConfig } from '../src/fomm/config.js';
import { shared, skipWithoutShared } from './shared.js';

const PUBLISHED = [
  'vox-256',
  'vox-adv-256',
  'taichi-256',
  'taichi-adv-256',
  'mgif-256',
  'fashion-256',
  'bair-256',
  'nemo-256',
];

/** What every published model_params holds (mgif alone shares one jacobian map). */
function published(singleJacobianMap: boolean): FommConfig {
  return {
    commonParams: { numKp: 10, numChannels: 3, estimateJacobian: true },
    kpDetectorParams: {
      temperature: 0.1,
      blockExpansion: 32,
      maxFeatures: 1024,
      scaleFactor: 0.25,
      numBlocks: 5,
      singleJacobianMap,
      pad: 0,
    },
    generatorParams: {
      blockExpansion: 64,
      maxFeatures: 512,
      numDownBlocks: 2,
      numBottleneckBlocks: 6,
      estimateOcclusionMap: true,
      denseMotionParams: { blockExpansion: 64, maxFeatures: 1024, numBlocks: 5, scaleFactor: 0.25, kpVariance: 0.01 },
    },
  };
}

describe('published configs', { skip: skipWithoutShared }, () => {
  for (const name of PUBLISHED) {
    test(`${name}.yaml parses`, async () => {
      assert.deepEqual(await loadConfig(shared('fomm', 'configs', `${name}.yaml`)), published(name === 'mgif-256'));
    });
  }

  test('golden-tiny config.yaml parses', async () => {
    const config = await loadConfig(shared('fomm', 'golden-tiny', 'config.yaml'));
    assert.equal(config.kpDetectorParams.blockExpansion, 8);
    assert.equal(config.kpDetectorParams.maxFeatures, 64);
    assert.equal(config.generatorParams.blockExpansion, 8);
    assert.equal(config.generatorParams.denseMotionParams.maxFeatures, 128);
    assert.equal(config.generatorParams.numBottleneckBlocks, 6);
  });
});

const MINIMAL = `
model_params:
  common_params: { num_kp: 4, num_channels: 1 }
  kp_detector_params: { temperature: 0.2, block_expansion: 8, max_features: 16, num_blocks: 3 }
  generator_params:
    block_expansion: 8
    max_features: 32
    num_down_blocks: 1
    num_bottleneck_blocks: 0
    dense_motion_params: { block_expansion: 4, max_features: 8, num_blocks: 2 }
`;

describe('config validation', () => {
  test('optional keys take the reference defaults', () => {
    const config = parseConfig(MINIMAL);
    assert.equal(config.commonParams.estimateJacobian, false);
    assert.equal(config.kpDetectorParams.scaleFactor, 1);
    assert.equal(config.kpDetectorParams.singleJacobianMap, false);
    assert.equal(config.kpDetectorParams.pad, 0);
    assert.equal(config.generatorParams.estimateOcclusionMap, false);
    assert.equal(config.generatorParams.numBottleneckBlocks, 0);
    assert.equal(config.generatorParams.denseMotionParams.scaleFactor, 1);
    assert.equal(config.generatorParams.denseMotionParams.kpVariance, 0.01);
  });

  test('extra keys and explicit optional values are read', () => {
    const text = MINIMAL.replace(
      'num_blocks: 3 }',
      'num_blocks: 3, pad: 3, single_jacobian_map: true, scale_factor: 0.5 }',
    ).replace('num_blocks: 2 }', 'num_blocks: 2, kp_variance: 0.02, use_deformed_source: true }');
    const config = parseConfig(text);
    assert.equal(config.kpDetectorParams.pad, 3);
    assert.equal(config.kpDetectorParams.singleJacobianMap, true);
    assert.equal(config.kpDetectorParams.scaleFactor, 0.5);
    assert.equal(config.generatorParams.denseMotionParams.kpVariance, 0.02);
  });

  const broken: [string, string, RegExp][] = [
    ['no model_params', 'train_params: {}\n', /model_params is missing/],
    ['not a mapping', 'model_params: 3\n', /model_params must be a mapping/],
    ['missing num_kp', MINIMAL.replace('num_kp: 4, ', ''), /model_params\.common_params\.num_kp is missing/],
    ['negative num_kp', MINIMAL.replace('num_kp: 4', 'num_kp: -4'), /num_kp must be a positive integer \(got -4\)/],
    [
      'zero blocks',
      MINIMAL.replace('num_blocks: 3', 'num_blocks: 0'),
      /kp_detector_params\.num_blocks must be a positive integer/,
    ],
    [
      'fractional count',
      MINIMAL.replace('max_features: 32', 'max_features: 32.5'),
      /generator_params\.max_features must be a positive integer/,
    ],
    ['string count', MINIMAL.replace('num_kp: 4', 'num_kp: ten'), /num_kp must be a positive integer \(got "ten"\)/],
    [
      'string flag',
      MINIMAL.replace('num_channels: 1', 'num_channels: 1, estimate_jacobian: "yes"'),
      /estimate_jacobian must be true or false/,
    ],
    [
      'scale above 1',
      MINIMAL.replace('num_blocks: 3', 'num_blocks: 3, scale_factor: 2'),
      /scale_factor must be a number in \(0, 1\]/,
    ],
    [
      'zero temperature',
      MINIMAL.replace('temperature: 0.2', 'temperature: 0'),
      /temperature must be a positive number/,
    ],
    ['no dense motion', MINIMAL.replace(/ {4}dense_motion_params.*\n/, ''), /dense_motion_params is missing/],
    ['invalid YAML', 'model_params: [\n', /is not valid YAML/],
  ];
  for (const [name, text, pattern] of broken) {
    test(`${name} is BAD_CONFIG naming the key and the file`, () => {
      assert.throws(
        () => parseConfig(text, 'my.yaml'),
        (e: unknown) => {
          assert.ok(e instanceof ReenactError);
          assert.equal(e.code, 'BAD_CONFIG');
          assert.match(e.message, /^my\.yaml: /);
          assert.match(e.message, pattern);
          assert.ok(e.hint);
          return true;
        },
      );
    });
  }

  test('loadConfig names the file, and a missing file is FILE_NOT_FOUND', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'reenact-config-'));
    try {
      const path = join(dir, 'broken.yaml');
      writeFileSync(path, MINIMAL.replace('num_kp: 4', 'num_kp: 0'));
      await assert.rejects(
        loadConfig(path),
        (e: unknown) => e instanceof ReenactError && e.code === 'BAD_CONFIG' && e.message.startsWith(`${path}: `),
      );
      await assert.rejects(
        loadConfig(join(dir, 'absent.yaml')),
        (e: unknown) => e instanceof ReenactError && e.code === 'FILE_NOT_FOUND',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
