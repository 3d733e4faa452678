import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ReenactError } from '../src/errors.js';
import { FaceAnalyzer, type Face } from '../src/face/detector.js';
import { decodeVideo } from '../src/media/decode.js';
import { readImage } from '../src/media/image.js';
import { LandmarkPool } from '../src/pipeline/landmark-pool.js';
import { MeshAnimator, type MeshAnimatorOptions } from '../src/mesh/animator.js';
import { animate } from '../src/pipeline/animate.js';
import type { RgbImage, VideoFrame } from '../src/types.js';
import { mouthOpening, psnr, scratchFolder } from './animate-measure.js';
import { assertRefused, reenact } from './cli-run.js';
import { shared, skipWithoutShared } from './shared.js';

function badArgument(pattern: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof ReenactError, `expected a ReenactError, got ${String(error)}`);
    assert.equal(error.code, 'BAD_ARGUMENT');
    assert.match(error.message, pattern);
    assert.ok(error.hint);
    return true;
  };
}

describe('mesh controls: expressionScale and animate are checked before any work', () => {
  // Inputs that do not exist: the options are refused before anything is read.
  const base = { source: 'missing.jpg', driving: 'missing.mp4', output: join('no-such-folder', 'out.mp4') };
  test('expressionScale outside 0-2 names the option', async () => {
    for (const expressionScale of [-0.1, 2.5, Number.NaN]) {
      await assert.rejects(
        animate({ ...base, expressionScale }),
        badArgument(/`expressionScale` must be a number from 0 to 2/),
      );
    }
  });
  test('animate with an unknown or no part names the option and the parts', async () => {
    await assert.rejects(
      animate({ ...base, animate: ['pose', 'wink'] as never }),
      badArgument(/`animate` must list parts .*pose, expression, eyes, mouth, not "wink"/),
    );
    await assert.rejects(animate({ ...base, animate: [] }), badArgument(/`animate` must list parts/));
  });
  test('with --model fomm they are refused', async () => {
    await assert.rejects(
      animate({ ...base, model: 'fomm', config: 'a.yaml', checkpoint: 'b.pth.tar', expressionScale: 0.5 }),
      badArgument(/for the mesh model/),
    );
  });
  test('the CLI refuses a bad --expression-scale and --animate with the option named', async () => {
    const output = join('no-such-folder', 'out.mp4');
    await assertRefused(
      await reenact('animate', '--source', 'a.jpg', '--driving', 'b.mp4', '-o', output, '--expression-scale', '3'),
      /--expression-scale.*from 0 to 2/,
      output,
    );
    await assertRefused(
      await reenact('animate', '--source', 'a.jpg', '--driving', 'b.mp4', '-o', output, '--animate', 'pose,smile'),
      /--animate must list parts.*"smile"/,
      output,
    );
  });
});

describe('mesh controls: what each part of the motion does', { skip: skipWithoutShared }, () => {
  let analyzer: FaceAnalyzer;
  let source: { image: RgbImage; face: Face };
  /** driving-talking.mp4: the neutral first frame, and frame 60 with the mouth wide open. */
  let frames: VideoFrame[];
  let faces: Face[];

  before(async () => {
    analyzer = await FaceAnalyzer.create();
    const image = await readImage(shared('fixtures', 'portrait-studio.png'));
    source = { image, face: (await analyzer.detect(image))[0]! };
    frames = [];
    faces = [];
    const pool = await LandmarkPool.create(analyzer, 0);
    for await (const frame of decodeVideo(shared('fixtures', 'driving-talking.mp4'), { duration: 2.05 })) {
      const face = await pool.detect(frame);
      assert.ok(face);
      if (frame.index === 0 || frame.index === 60) {
        frames.push(frame);
        faces.push(face);
      }
    }
    await pool.close();
  });

  async function openingWith(options: MeshAnimatorOptions): Promise<{ opening: number; out: RgbImage }> {
    const animator = new MeshAnimator(source, faces[0]!, { smoothing: false, ...options });
    const out = animator.render({ face: faces[1]!, frame: frames[1]!, time: 2 });
    const [rendered] = await analyzer.detect(out);
    assert.ok(rendered);
    return { opening: mouthOpening(rendered), out };
  }

  test('the mouth opens with mouth in animate, and further with a larger expressionScale', async () => {
    const still = mouthOpening(source.face);
    const full = (await openingWith({})).opening;
    const half = (await openingWith({ expressionScale: 0.5 })).opening;
    const double = (await openingWith({ expressionScale: 2 })).opening;
    const withoutMouth = (await openingWith({ animate: ['pose', 'expression', 'eyes'] })).opening;
    assert.ok(full > still + 0.1, `opening ${full.toFixed(3)} against the photo's ${still.toFixed(3)}`);
    assert.ok(half > still + 0.03 && half < full - 0.03, `half scale ${half.toFixed(3)}, full ${full.toFixed(3)}`);
    assert.ok(double > full + 0.03, `double scale ${double.toFixed(3)}, full ${full.toFixed(3)}`);
    assert.ok(
      Math.abs(withoutMouth - still) < 0.03,
      `without the mouth ${withoutMouth.toFixed(3)} against the photo's ${still.toFixed(3)}`,
    );
  });

  test('expressionScale 0 with the pose alone leaves the face as the photo, only moved', async () => {
    const posed = await openingWith({ animate: ['pose'] });
    const zero = await openingWith({ expressionScale: 0 });
    assert.ok(Math.abs(posed.opening - mouthOpening(source.face)) < 0.03);
    assert.ok(psnr(posed.out, zero.out) > 40, 'scale 0 is the pose alone');
  });
});

describe('mesh controls: the CLI passes them through', { skip: skipWithoutShared }, () => {
  let folder: string;
  before(async () => {
    folder = await scratchFolder();
  });
  after(async () => {
    if (folder) await rm(folder, { recursive: true, force: true });
  });
  test('--animate pose,eyes --expression-scale 0.5 writes a video', async () => {
    const output = join(folder, 'out.mp4');
    const result = await reenact(
      'animate',
      '--source',
      shared('fixtures', 'portrait-studio.png'),
      '--driving',
      shared('fixtures', 'driving-talking.mp4'),
      '-o',
      output,
      '--animate',
      'pose,eyes',
      '--expression-scale',
      '0.5',
      '--json',
    );
    assert.equal(result.code, 0, result.stderr);
    assert.equal(JSON.parse(result.stdout).frames, 240);
  });
});
