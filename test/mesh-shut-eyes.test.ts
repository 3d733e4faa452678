import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { FaceAnalyzer, type Face } from '../src/face/detector.js';
import { IMAGE_LEFT_EYE_CONTOUR, IMAGE_RIGHT_EYE_CONTOUR } from '../src/face/landmarks.js';
import { decodeVideo } from '../src/media/decode.js';
import { readImage } from '../src/media/image.js';
import { MeshAnimator } from '../src/mesh/animator.js';
import { EYE_LID_PAIRS } from '../src/mesh/regions.js';
import { LandmarkPool } from '../src/pipeline/landmark-pool.js';
import type { RgbImage } from '../src/types.js';
import { shared, skipWithoutShared } from './shared.js';

const CONTOURS = [IMAGE_LEFT_EYE_CONTOUR, IMAGE_RIGHT_EYE_CONTOUR] as const;

/**
 * How thick (px) the dark line of a shut eye is, per eye: the brightness across the line through
 * the eye's corners on `face` (a fifth of the eye's width above and below it), averaged over the
 * columns of the eye's middle half; the thickness is how many rows of that profile are darker than
 * halfway from the skin above the eye (the profile's brightest) to the line's darkest. A shut eye
 * shows a band of lashes and lid shadow (about 10 px on driving-eyes.mp4's shut eyes, 52 px wide);
 * squeezed shut by the warp alone, the open eye's lashes, iris and lid margins became a line of
 * about 3 px, stair-stepped: the slit of an eye that is not quite shut.
 */
function shutLineThickness(image: RgbImage, face: Face): number[] {
  return CONTOURS.map((contour) => {
    const a = contour[0],
      b = contour[contour.length / 2]!;
    const ax = face.landmarks[3 * a]!,
      ay = face.landmarks[3 * a + 1]!;
    const bx = face.landmarks[3 * b]!,
      by = face.landmarks[3 * b + 1]!;
    const reach = Math.round(0.2 * Math.hypot(bx - ax, by - ay));
    const profile = new Float64Array(2 * reach + 1);
    const from = Math.round(Math.min(ax, bx) + 0.25 * Math.abs(bx - ax)),
      to = Math.max(ax, bx) - 0.25 * Math.abs(bx - ax);
    let columns = 0;
    for (let x = from; x <= to; x++, columns++) {
      const y0 = Math.round(ay + ((x - ax) / (bx - ax)) * (by - ay));
      for (let k = -reach; k <= reach; k++) {
        const o = ((y0 + k) * image.width + x) * 3;
        profile[k + reach]! += image.data[o]! + image.data[o + 1]! + image.data[o + 2]!;
      }
    }
    const skin = Math.max(...profile) / columns,
      line = Math.min(...profile) / columns;
    return profile.filter((v) => v / columns < (skin + line) / 2).length;
  });
}

function eyeOpenings(face: Face): number[] {
  return EYE_LID_PAIRS.map((pairs, e) => {
    const contour = CONTOURS[e]!;
    const a = contour[0],
      b = contour[contour.length / 2]!;
    const width = Math.hypot(
      face.landmarks[3 * b]! - face.landmarks[3 * a]!,
      face.landmarks[3 * b + 1]! - face.landmarks[3 * a + 1]!,
    );
    let gap = 0;
    for (const [upper, lower] of pairs)
      gap += Math.hypot(
        face.landmarks[3 * lower]! - face.landmarks[3 * upper]!,
        face.landmarks[3 * lower + 1]! - face.landmarks[3 * upper + 1]!,
      );
    return gap / pairs.length / width;
  });
}

describe('mesh animator: shut eyes and winks', { skip: skipWithoutShared }, () => {
  let analyzer: FaceAnalyzer;
  before(async () => {
    analyzer = await FaceAnalyzer.create();
  });

  test('a shut eye of the driver comes out shut: a dark lash line about as thick as the real one, no slit', async () => {
    // Self-reenactment: the clip's first frame is the photo; at frame 144 both eyes are shut.
    const path = shared('fixtures', 'driving-eyes.mp4');
    const pool = await LandmarkPool.create(analyzer, 0);
    let animator: MeshAnimator | undefined;
    let measured: { output: number[]; real: number[] } | undefined;
    try {
      for await (const frame of decodeVideo(path, { duration: 145 / 30 })) {
        const face = await pool.detect(frame);
        assert.ok(face, `a face in frame ${frame.index}`);
        if (!animator) {
          const [photoFace] = await analyzer.detect(frame);
          animator = new MeshAnimator({ image: { ...frame, data: frame.data.slice() }, face: photoFace! }, face);
        }
        const output = animator.render({ face, frame, time: frame.time });
        if (frame.index !== 144) continue;
        const [real] = await analyzer.detect(frame);
        assert.ok(real);
        // The same place on both: in self-reenactment the output's eyes sit where the real ones do.
        measured = { output: shutLineThickness(output, real), real: shutLineThickness(frame, real) };
      }
    } finally {
      await pool.close();
    }
    assert.ok(measured, 'frame 144 rendered');
    for (let e = 0; e < 2; e++) {
      const { output, real } = { output: measured.output[e]!, real: measured.real[e]! };
      assert.ok(real >= 4, `the real shut eye ${e} shows a dark line ${real} px thick`);
      assert.ok(
        output >= 0.5 * real && output <= 1.5 * real,
        `eye ${e}: the output's shut eye has a dark line ${output} px thick, the real one ${real} px`,
      );
    }
  });

  test('a wink stays a wink: one eye shuts, the other stays open', async () => {
    // The driver is the photo's own face with the image-left eye shut: its upper lid points moved
    // onto the lower lid, as Face Mesh reads a shut eye (a gap of ~0.1 of the open one).
    const photo = await readImage(shared('fixtures', 'portrait-studio.png'));
    const [face] = await analyzer.detect(photo);
    assert.ok(face);
    const wink: Face = { ...face, landmarks: Float32Array.from(face.landmarks) };
    for (const [upper, lower] of EYE_LID_PAIRS[0]!)
      for (let c = 0; c < 2; c++)
        wink.landmarks[3 * upper + c] =
          face.landmarks[3 * lower + c]! + 0.1 * (face.landmarks[3 * upper + c]! - face.landmarks[3 * lower + c]!);
    const animator = new MeshAnimator({ image: photo, face }, face);
    let output = animator.render({ face, frame: photo, time: 0 });
    for (let k = 1; k <= 5; k++) output = animator.render({ face: wink, frame: photo, time: k / 30 });
    const [rendered] = await analyzer.detect(output);
    assert.ok(rendered);
    const [shut, open] = eyeOpenings(rendered);
    const [shutBefore, openBefore] = eyeOpenings(face);
    assert.ok(
      shut! < 0.5 * shutBefore!,
      `the winking eye reads ${shut!.toFixed(3)} open, ${shutBefore!.toFixed(3)} in the photo`,
    );
    assert.ok(
      open! > 0.85 * openBefore!,
      `the other eye reads ${open!.toFixed(3)} open, ${openBefore!.toFixed(3)} in the photo`,
    );
  });
});
