import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ReenactError } from '../src/errors.js';
import { FaceAnalyzer, LANDMARK_COUNT, loadHumanWithSubpixelMesh } from '../src/face/detector.js';
import { eyeCentres, landmark, LANDMARKS } from '../src/face/landmarks.js';
import { decodeVideo } from '../src/media/decode.js';
import { readImage } from '../src/media/image.js';
import type { RgbImage } from '../src/types.js';
import { shared, skipWithoutShared } from './shared.js';

describe('face detector', { skip: skipWithoutShared }, () => {
  let analyzer: FaceAnalyzer;
  before(async () => {
    analyzer = await FaceAnalyzer.create();
  });
  after(() => undefined);

  for (const name of ['portrait-studio.png', 'portrait-outdoor.jpg']) {
    test(`finds one face with landmarks inside its box in ${name}`, async () => {
      const image = await readImage(shared('fixtures', name));
      const faces = await analyzer.detect(image);
      assert.equal(faces.length, 1);
      const [face] = faces;
      assert.ok(face!.score > 0.5, `score ${face!.score}`);
      assert.equal(face!.landmarks.length, LANDMARK_COUNT * 3);
      const { box } = face!;
      assert.ok(box.x >= 0 && box.y >= 0 && box.x + box.width <= image.width && box.y + box.height <= image.height);
      const inside = (index: number) => {
        const p = landmark(face!, index);
        return p.x > box.x && p.x < box.x + box.width && p.y > box.y && p.y < box.y + box.height;
      };
      for (const index of [
        LANDMARKS.noseTip,
        LANDMARKS.upperInnerLip,
        LANDMARKS.imageLeftEyeOuter,
        LANDMARKS.imageRightEyeOuter,
      ]) {
        assert.ok(inside(index), `landmark ${index} outside the face box`);
      }
      const eyes = eyeCentres(face!);
      const nose = landmark(face!, LANDMARKS.noseTip);
      assert.ok(eyes.imageLeft.x < nose.x && nose.x < eyes.imageRight.x, 'nose between the eyes');
      assert.ok(
        nose.y > eyes.imageLeft.y && landmark(face!, LANDMARKS.upperInnerLip).y > nose.y,
        'eyes above nose above mouth',
      );
      // Sub-pixel landmarks: not every coordinate is a whole number.
      assert.ok(Array.from(face!.landmarks).some((v) => !Number.isInteger(v)));
    });
  }

  test('finds no face in a cartoon', async () => {
    const faces = await analyzer.detect(await readImage(shared('fixtures', 'cartoon-no-face.jpg')));
    assert.equal(faces.length, 0);
  });

  test('finds the iris of each eye where the mirrored frame puts it (the gaze of both eyes reads alike)', async () => {
    // driving-eyes.mp4 looks far to the image's left at frame 60 and far to its right at 80. An
    // eye's iris, relative to the midpoint of its corners, must come out mirrored when the frame
    // is mirrored (the same eye is then the other image side's). Human's iris step used to
    // mirror the image-left eye's iris inside its eye box: it read about 3 px left of centre at
    // frame 60 (mirrored frame: 10 px) and 13 px left at frame 80 (mirrored: 14 px right).
    const frames = new Map<number, RgbImage>();
    for await (const frame of decodeVideo(shared('fixtures', 'driving-eyes.mp4'))) {
      if (frame.index === 60 || frame.index === 80)
        frames.set(frame.index, { width: frame.width, height: frame.height, data: frame.data.slice() });
      if (frame.index >= 80) break;
    }
    // Per image side: outer corner, inner corner, iris centre.
    const sides = [
      [LANDMARKS.imageLeftEyeOuter, 133, LANDMARKS.imageLeftIris],
      [LANDMARKS.imageRightEyeOuter, 362, LANDMARKS.imageRightIris],
    ] as const;
    const irisOffsets = async (image: RgbImage) => {
      const [face] = await analyzer.detect(image);
      assert.ok(face, 'a face');
      const offset = ([outer, inner, iris]: (typeof sides)[number]) =>
        landmark(face, iris).x - (landmark(face, outer).x + landmark(face, inner).x) / 2;
      return [offset(sides[0]), offset(sides[1])] as const;
    };
    for (const [index, image] of frames) {
      const mirrored = new Uint8Array(image.data.length);
      for (let y = 0; y < image.height; y++) {
        for (let x = 0; x < image.width; x++)
          mirrored.set(
            image.data.subarray((y * image.width + x) * 3, (y * image.width + x) * 3 + 3),
            (y * image.width + image.width - 1 - x) * 3,
          );
      }
      const [left, right] = await irisOffsets(image);
      const [mirroredLeft, mirroredRight] = await irisOffsets({
        width: image.width,
        height: image.height,
        data: mirrored,
      });
      // The image-left eye is the mirrored frame's image-right eye, and the other way round.
      for (const [offset, seenMirrored] of [
        [left, mirroredRight],
        [right, mirroredLeft],
      ] as const) {
        assert.ok(
          Math.abs(offset + seenMirrored) < 4,
          `frame ${index}: iris ${offset.toFixed(1)} px from its eye's centre, ${(-seenMirrored).toFixed(1)} px in the mirrored frame`,
        );
      }
      // Both eyes look the same way, by about as much.
      assert.ok(
        Math.sign(left) === Math.sign(right) && Math.abs(left - right) < 6,
        `frame ${index}: irises ${left.toFixed(1)} and ${right.toFixed(1)} px from their eyes' centres`,
      );
    }
  });
});

describe('the Human bundle', () => {
  test('the installed release is the one package.json pins, exactly', async () => {
    const manifest = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    const installed = JSON.parse(
      await readFile(new URL('../node_modules/@vladmandic/human/package.json', import.meta.url), 'utf8'),
    ) as { version: string };
    assert.match(manifest.dependencies['@vladmandic/human']!, /^\d+\.\d+\.\d+$/);
    assert.equal(installed.version, manifest.dependencies['@vladmandic/human']);
  });

  test('another release of the bundle is a BAD_INSTALL naming both versions, with a hint', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'reenact-human-'));
    try {
      await mkdir(join(folder, 'dist'));
      await writeFile(join(folder, 'package.json'), JSON.stringify({ name: '@vladmandic/human', version: '3.4.0' }));
      const bundle = join(folder, 'dist', 'human.node-wasm.js');
      await writeFile(bundle, 'module.exports = { Human: class {} };\n');
      assert.throws(
        () => loadHumanWithSubpixelMesh(bundle),
        (error: unknown) =>
          error instanceof ReenactError &&
          error.code === 'BAD_INSTALL' &&
          /version 3\.4\.0/.test(error.message) &&
          /exactly version 3\.3\.6/.test(error.message) &&
          /npm ci/.test(error.hint ?? ''),
      );
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });
});
