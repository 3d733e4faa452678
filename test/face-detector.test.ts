import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { FaceAnalyzer, LANDMARK_COUNT } from '../src/face/detector.js';
import { eyeCentres, landmark, LANDMARKS } from '../src/face/landmarks.js';
import { readImage } from '../src/media/image.js';
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
      for (const index of [LANDMARKS.noseTip, LANDMARKS.upperInnerLip, LANDMARKS.imageLeftEyeOuter, LANDMARKS.imageRightEyeOuter]) {
        assert.ok(inside(index), `landmark ${index} outside the face box`);
      }
      const eyes = eyeCentres(face!);
      const nose = landmark(face!, LANDMARKS.noseTip);
      assert.ok(eyes.imageLeft.x < nose.x && nose.x < eyes.imageRight.x, 'nose between the eyes');
      assert.ok(nose.y > eyes.imageLeft.y && landmark(face!, LANDMARKS.upperInnerLip).y > nose.y, 'eyes above nose above mouth');
      // Sub-pixel landmarks: not every coordinate is a whole number.
      assert.ok(Array.from(face!.landmarks).some((v) => !Number.isInteger(v)));
    });
  }

  test('finds no face in a cartoon', async () => {
    const faces = await analyzer.detect(await readImage(shared('fixtures', 'cartoon-no-face.jpg')));
    assert.equal(faces.length, 0);
  });
});
