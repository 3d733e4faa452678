import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { invert, rotationAbout, warpAffine } from '../src/align/affine.js';
import { measureRoll } from '../src/align/source.js';
import { cropToEven } from '../src/compose/even.js';
import { FaceAnalyzer, type Face } from '../src/face/detector.js';
import { decodeVideo } from '../src/media/decode.js';
import { readImage } from '../src/media/image.js';
import { animate, type AnimateResult } from '../src/pipeline/animate.js';
import type { RgbImage } from '../src/types.js';
import {
  correlation,
  framesAt,
  frontalFacePatch,
  frontalFrame,
  makeClip,
  measureVideo,
  patchSimilarity,
  probeTags,
  psnr,
  scratchFolder,
  type FrameMeasure,
  type FrontalFrame,
} from './animate-measure.js';
import { shared, skipWithoutShared } from './shared.js';

/** Acceptance checks of `animate` in mesh mode on the fixtures, measured with the landmark detector. */
describe('animate (mesh) on portrait-outdoor.jpg + driving-talking.mp4', { skip: skipWithoutShared }, () => {
  let folder: string;
  let analyzer: FaceAnalyzer;
  let photo: RgbImage;
  let photoFace: Face;
  let frontal: FrontalFrame;
  let output: string;
  let result: AnimateResult;
  let out: FrameMeasure[];
  let driver: FrameMeasure[];

  before(async () => {
    folder = await scratchFolder();
    analyzer = await FaceAnalyzer.create();
    photo = cropToEven(await readImage(shared('fixtures', 'portrait-outdoor.jpg')));
    [photoFace] = (await analyzer.detect(photo)) as [Face];
    output = join(folder, 'out.mp4');
    result = await animate({
      source: shared('fixtures', 'portrait-outdoor.jpg'),
      driving: shared('fixtures', 'driving-talking.mp4'),
      output,
    });
    // Every 3rd frame: 80 samples of the 8 s clip, faces compared in the photo's pose.
    frontal = frontalFrame(photoFace);
    out = await measureVideo(output, analyzer, 3, { frontal });
    driver = await measureVideo(shared('fixtures', 'driving-talking.mp4'), analyzer, 3, { frontal });
  });
  after(async () => {
    if (folder) await rm(folder, { recursive: true, force: true });
  });

  /** Output and driver measures of the same frames. */
  function pairs(): [FrameMeasure, FrameMeasure][] {
    const byIndex = new Map(driver.map((m) => [m.index, m]));
    return out.filter((m) => byIndex.has(m.index)).map((m) => [m, byIndex.get(m.index)!]);
  }

  test('an 8 s MP4 at the photo size rounded to even, 30 fps, with the driving audio, marked AI-generated', async () => {
    assert.equal(result.frames, 240);
    assert.equal(result.fps, 30);
    assert.equal(result.width, 586);
    assert.equal(result.height, 586);
    assert.equal(result.hasAudio, true);
    assert.equal(result.framesWithoutFace, 0);
    const { tags, streams } = await probeTags(output);
    const video = streams.find((s) => s.codec_type === 'video')!;
    assert.equal(video.width, 586);
    assert.equal(video.height, 586);
    assert.equal(video.nb_frames, '240');
    assert.equal(video.r_frame_rate, '30/1');
    assert.ok(
      streams.some((s) => s.codec_type === 'audio'),
      'has an audio stream',
    );
    assert.match(tags.comment ?? '', /AI-generated/);
    assert.match(tags.description ?? '', /AI-generated/);
  });

  test('the face is found in every sampled output frame', () => {
    assert.equal(out.length, 80);
  });

  test('the mouth opens and closes with the driver (correlation > 0.7)', () => {
    const matched = pairs();
    assert.ok(matched.length >= 75, `${matched.length} frames with faces in both`);
    const r = correlation(
      matched.map(([o]) => o.mouth),
      matched.map(([, d]) => d.mouth),
    );
    assert.ok(r > 0.7, `mouth-opening correlation ${r.toFixed(3)}`);
  });

  test("head roll follows the driver's (mean error under 3 degrees, fast turns included)", () => {
    const matched = pairs();
    const [o0, d0] = matched[0]!;
    const errors = matched.map(([o, d]) => Math.abs(o.roll - o0.roll - (d.roll - d0.roll)));
    const range = Math.max(...matched.map(([, d]) => Math.abs(d.roll - d0.roll)));
    assert.ok(range > 10, `the driver rolls its head (${range.toFixed(1)} degrees)`);
    const mean = errors.reduce((s, e) => s + e, 0) / errors.length;
    assert.ok(mean < 3, `mean roll error ${mean.toFixed(2)} degrees`);
  });

  test('the background away from the head stays the photo (PSNR > 35 dB)', async () => {
    const { box } = photoFace;
    const cx = box.x + box.width / 2;
    const cy = box.y + box.height / 2;
    const reach = 1.2 * Math.max(box.width, box.height);
    // Away from the head, and not under the AI-generated mark in the bottom-right corner.
    const background = (x: number, y: number) =>
      Math.hypot(x - cx, y - cy) > reach && !(x > photo.width * 0.75 && y > photo.height * 0.88);
    const frames = await framesAt(output, [0, 50, 100, 150, 200, 239]);
    for (const [index, frame] of frames) {
      const value = psnr(frame, photo, background);
      assert.ok(value > 35, `frame ${index}: background PSNR ${value.toFixed(1)} dB`);
    }
  });

  test('the person stays the source: at the reference frame the output is the photo, and nearly every frame looks more like the photo than the driver', async () => {
    const sourcePatch = frontalFacePatch(photo, photoFace, frontal);
    assert.equal(out[0]!.index, result.startFrame);
    const { box } = photoFace;
    const inFace = (x: number, y: number) =>
      x >= box.x && x < box.x + box.width && y >= box.y && y < box.y + box.height;
    const reference = (await framesAt(output, [result.startFrame])).get(result.startFrame)!;
    assert.ok(
      psnr(reference, photo, inFace) > 35,
      `reference frame: face ${psnr(reference, photo, inFace).toFixed(1)} dB from the photo`,
    );
    const matched = pairs();
    const likeSource = matched.map(([o]) => patchSimilarity(o.patch, sourcePatch));
    const likeDriver = matched.map(([o, d]) => patchSimilarity(o.patch, d.patch));
    // Faces are compared with their head pose undone (frontalFacePatch), so a turn the output
    // shares with the driver does not make it look like the driver; nearly all must look like
    // the photo.
    const closerToSource = likeSource.filter((v, i) => v > likeDriver[i]!).length;
    assert.ok(
      closerToSource >= 0.9 * matched.length,
      `${closerToSource} of ${matched.length} frames look more like the photo than the driver`,
    );
    const mean = (values: number[]) => values.reduce((s, v) => s + v, 0) / values.length;
    assert.ok(
      mean(likeSource) > mean(likeDriver) + 0.15,
      `mean similarity ${mean(likeSource).toFixed(2)} to the photo, ${mean(likeDriver).toFixed(2)} to the driver`,
    );
  });

  test('the identity measure tells people apart: the driver, turning as it does, looks like itself, not like the photo', () => {
    // The same comparison on a video that is not the photo's person: the driver's frames against
    // the photo and against the driver's first frame (another pose of the same person). It must
    // say "not the source" where the output passes, big turns included.
    const sourcePatch = frontalFacePatch(photo, photoFace, frontal);
    const first = driver[0]!.patch;
    const rest = driver.slice(1);
    const likeSource = rest.filter((d) => patchSimilarity(d.patch, sourcePatch) > patchSimilarity(d.patch, first));
    assert.ok(
      likeSource.length <= 0.1 * rest.length,
      `${likeSource.length} of ${rest.length} driver frames look more like the photo than the driver's first frame`,
    );
  });

  for (const degrees of [15, -15]) {
    test(`a slow roll of the driver (0 to ${degrees} degrees) turns the photo's head by the same amount, within 3 degrees`, async () => {
      // A still driver frame turning slowly: pure roll, nothing else moving.
      const still = await makeClip(
        ['-i', shared('fixtures', 'driving-talking.mp4')],
        ['-frames:v', '1'],
        join(folder, 'still.png'),
      );
      const rolled = await makeClip(
        ['-loop', '1', '-framerate', '30', '-t', '2', '-i', still],
        ['-vf', `rotate=a='${degrees}*PI/180*t/2':fillcolor=0x808080,format=yuv420p`, '-c:v', 'libx264', '-crf', '16'],
        join(folder, `rolled${degrees}.mp4`),
      );
      const rolledOutput = join(folder, `rolled${degrees}-out.mp4`);
      await animate({
        source: shared('fixtures', 'portrait-outdoor.jpg'),
        driving: rolled,
        output: rolledOutput,
        label: false,
      });
      // Rolls are measured by straightening (measureRoll): one detector reading of this tilted
      // face is pulled towards level or past it by up to 2 degrees, differently for the photo and
      // for its warped copy.
      const detect = (image: RgbImage): Promise<Face[]> => analyzer.detect(image);
      const rollsOf = async (path: string): Promise<{ index: number; roll: number }[]> => {
        const rolls: { index: number; roll: number }[] = [];
        for await (const frame of decodeVideo(path)) {
          if (frame.index % 5 !== 0) continue;
          const [face] = await analyzer.detect(frame);
          if (face) rolls.push({ index: frame.index, roll: await measureRoll(frame, face, detect) });
        }
        return rolls;
      };
      const outputRoll = await rollsOf(rolledOutput);
      const driverRoll = await rollsOf(rolled);
      assert.equal(outputRoll.length, driverRoll.length);
      const turned = driverRoll.at(-1)!.roll - driverRoll[0]!.roll;
      assert.ok(Math.abs(turned) > 12, `the driver turns ${turned.toFixed(1)} degrees`);
      const centre = { x: photoFace.box.x + photoFace.box.width / 2, y: photoFace.box.y + photoFace.box.height / 2 };
      const photoRoll = await measureRoll(photo, photoFace, detect);
      for (let i = 0; i < outputRoll.length; i++) {
        const driverTurn = driverRoll[i]!.roll - driverRoll[0]!.roll;
        const actual = outputRoll[i]!.roll - outputRoll[0]!.roll;
        // What the detector reads for this photo truly rotated by the driver's turn.
        const { image: turnedPhoto } = warpAffine(
          photo,
          invert(rotationAbout(driverTurn, centre)),
          photo.width,
          photo.height,
        );
        const [turnedFace] = await analyzer.detect(turnedPhoto);
        const readable = (await measureRoll(turnedPhoto, turnedFace!, detect)) - photoRoll;
        assert.ok(
          Math.abs(actual - readable) < 3,
          `frame ${outputRoll[i]!.index}: driver turned ${driverTurn.toFixed(1)}, output reads ${actual.toFixed(1)}, the photo turned as much reads ${readable.toFixed(1)} degrees`,
        );
        assert.ok(
          Math.abs(actual - driverTurn) < 4,
          `frame ${outputRoll[i]!.index}: output turned ${actual.toFixed(1)}, driver ${driverTurn.toFixed(1)} degrees`,
        );
      }
    });
  }
});
