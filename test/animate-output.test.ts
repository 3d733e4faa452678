import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { resizeBilinear } from '../src/compose/compare.js';
import { cropToEven } from '../src/compose/even.js';
import { createLabel } from '../src/compose/label.js';
import { FaceAnalyzer, type Face } from '../src/face/detector.js';
import { readImage } from '../src/media/image.js';
import { animate } from '../src/pipeline/animate.js';
import type { RgbImage } from '../src/types.js';
import { framesAt, makeClip, measureVideo, probeTags, psnr, scratchFolder } from './animate-measure.js';
import { assertRefused, reenact } from './cli-run.js';
import { shared, skipWithoutShared } from './shared.js';

/** The part of a frame at x0.., width wide. */
function panel(frame: RgbImage, x0: number, width: number): RgbImage {
  const data = new Uint8Array(width * frame.height * 3);
  for (let y = 0; y < frame.height; y++)
    data.set(frame.data.subarray((y * frame.width + x0) * 3, (y * frame.width + x0 + width) * 3), y * width * 3);
  return { width, height: frame.height, data };
}

describe('animate: outputs and options', { skip: skipWithoutShared }, () => {
  let folder: string;
  let short: string;
  let photo: RgbImage;
  let photoFace: Face;
  const source = shared('fixtures', 'portrait-outdoor.jpg');
  before(async () => {
    folder = await scratchFolder();
    short = await makeClip(
      ['-i', shared('fixtures', 'driving-talking.mp4')],
      ['-t', '1', '-c:v', 'libx264', '-crf', '16', '-c:a', 'aac'],
      join(folder, 'short.mp4'),
    );
    photo = cropToEven(await readImage(source));
    const analyzer = await FaceAnalyzer.create();
    [photoFace] = (await analyzer.detect(photo)) as [Face];
  });
  after(async () => {
    if (folder) await rm(folder, { recursive: true, force: true });
  });

  test('--compare writes source | driving | result, three panels at the result height', async () => {
    const output = join(folder, 'compare.mp4');
    const result = await animate({ source, driving: short, output, compare: true });
    assert.equal(result.width, 3 * 586);
    assert.equal(result.height, 586);
    const frames = await framesAt(output, [20]);
    const frame = frames.get(20)!;
    assert.equal(frame.width, 1758);
    assert.ok(psnr(panel(frame, 0, 586), photo) > 35, 'left: the photo');
    const driving = (await framesAt(short, [20])).get(20)!;
    assert.ok(
      psnr(panel(frame, 586, 586), resizeBilinear(driving, 586, 586)) > 30,
      'middle: the driving frame, scaled',
    );
    const right = panel(frame, 1172, 586);
    const { box } = photoFace;
    const inFace = (x: number, y: number) =>
      x >= box.x && x < box.x + box.width && y >= box.y && y < box.y + box.height;
    assert.ok(psnr(right, photo, inFace) < 30, 'right: the animated photo, its face moved');
    const cx = box.x + box.width / 2;
    const cy = box.y + box.height / 2;
    const background = (x: number, y: number) =>
      Math.hypot(x - cx, y - cy) > 1.2 * Math.max(box.width, box.height) && y < 500;
    assert.ok(psnr(right, photo, background) > 35, 'right: the same photo away from the head');
  });

  test("--no-label differs from the labelled output only in the mark's corner; both say AI-generated in their metadata", async () => {
    const labelled = join(folder, 'labelled.mp4');
    const plain = join(folder, 'plain.mp4');
    // One content id for both, so their invisible watermarks are the same too.
    await animate({ source, driving: short, output: labelled, contentId: '0a1b2c3d' });
    const result = await animate({ source, driving: short, output: plain, label: false, contentId: '0a1b2c3d' });
    assert.equal(result.labelled, false);
    const { box } = (await createLabel(586, 586))!;
    // The encoder works on 16x16 blocks: allow one block around the mark.
    const corner = (x: number, y: number) => x >= box.x - 16 && y >= box.y - 16;
    const [a, b] = [await framesAt(labelled, [0, 15]), await framesAt(plain, [0, 15])];
    for (const index of [0, 15]) {
      const withMark = a.get(index)!;
      const without = b.get(index)!;
      assert.ok(psnr(withMark, without, (x, y) => !corner(x, y)) > 45, `frame ${index}: the same outside the corner`);
      const inMark = (x: number, y: number) =>
        x >= box.x && x < box.x + box.width && y >= box.y && y < box.y + box.height;
      assert.ok(psnr(withMark, without, inMark) < 20, `frame ${index}: the mark is visible`);
    }
    for (const path of [labelled, plain]) {
      const { tags } = await probeTags(path);
      assert.match(tags.comment ?? '', /AI-generated/);
      assert.match(tags.description ?? '', /AI-generated/);
    }
  });

  test("a chosen or best start frame is the one where the output face is the photo's as it is", async () => {
    const analyzer = await FaceAnalyzer.create();
    for (const startFrame of [12, 'best'] as const) {
      const output = join(folder, `start-${startFrame}.mp4`);
      const result = await animate({ source, driving: short, output, startFrame });
      if (startFrame !== 'best') assert.equal(result.startFrame, 12);
      assert.equal(result.frames, 30);
      // Landmark distance (RMS px) of each output frame's face from the photo's.
      const distances = (await measureVideo(output, analyzer, 1)).map((m) => {
        let sum = 0;
        for (let i = 0; i < 468; i++)
          sum +=
            (m.face.landmarks[3 * i]! - photoFace.landmarks[3 * i]!) ** 2 +
            (m.face.landmarks[3 * i + 1]! - photoFace.landmarks[3 * i + 1]!) ** 2;
        return Math.sqrt(sum / 468);
      });
      assert.equal(distances.length, 30);
      const atStart = distances[result.startFrame]!;
      // The One Euro smoothing carries a little of the neighbouring frames' motion into it.
      assert.ok(
        atStart < 3.5,
        `start frame ${result.startFrame}: face landmarks ${atStart.toFixed(1)} px from the photo's`,
      );
      assert.ok(
        atStart <= Math.min(...distances) + 1,
        `start frame ${result.startFrame} is (nearly) the closest: ${distances.map((d) => d.toFixed(1))}`,
      );
      assert.ok(atStart < 0.35 * Math.max(...distances), 'other frames move away from it');
    }
  });

  test('--model fomm runs the whole pipeline with a checkpoint (the tiny conformance model)', async () => {
    const half = await makeClip(
      ['-i', short],
      ['-t', '0.5', '-c:v', 'libx264', '-crf', '16', '-c:a', 'aac'],
      join(folder, 'half.mp4'),
    );
    const output = join(folder, 'fomm.mp4');
    const result = await animate({
      source,
      driving: half,
      output,
      model: 'fomm',
      config: shared('fomm', 'golden-tiny', 'config.yaml'),
      checkpoint: shared('fomm', 'golden-tiny', 'checkpoint.zip.pth.tar'),
      threads: 1,
    });
    assert.equal(result.model, 'fomm');
    assert.equal(result.frames, 15);
    assert.equal(result.width, 586);
    assert.equal(result.hasAudio, true);
    const frame = (await framesAt(output, [10])).get(10)!;
    const { box } = photoFace;
    const cx = box.x + box.width / 2;
    const cy = box.y + box.height / 2;
    const reach = 1.2 * Math.max(box.width, box.height);
    // The generated face goes in a disc around the face; the rest is the photo.
    assert.ok(psnr(frame, photo, (x, y) => Math.hypot(x - cx, y - cy) > reach && y < 540) > 35, 'background kept');
    assert.ok(
      psnr(frame, photo, (x, y) => Math.hypot(x - cx, y - cy) < box.width / 3) < 25,
      'face replaced by the model output',
    );
  });

  test('reenact animate: the CLI writes the video and reports it as JSON; bad use exits non-zero with nothing written', async () => {
    const output = join(folder, 'cli.mp4');
    const ok = await reenact('animate', '--source', source, '--driving', short, '-o', output, '--json');
    assert.equal(ok.code, 0, ok.stderr);
    const report = JSON.parse(ok.stdout) as {
      frames: number;
      width: number;
      height: number;
      hasAudio: boolean;
      labelled: boolean;
    };
    assert.deepEqual(
      [report.frames, report.width, report.height, report.hasAudio, report.labelled],
      [30, 586, 586, true, true],
    );
    assert.ok(existsSync(output));

    const refused = join(folder, 'cli-refused.mp4');
    await assertRefused(
      await reenact('animate', '--source', source, '--driving', short, '-o', refused, '--model', 'fomm'),
      /vox-adv-256\.yaml/,
      refused,
    );
    await assertRefused(
      await reenact(
        'animate',
        '--source',
        shared('fixtures', 'cartoon-no-face.jpg'),
        '--driving',
        short,
        '-o',
        refused,
      ),
      /no face/,
      refused,
    );
    await assertRefused(
      await reenact(
        'animate',
        '--source',
        source,
        '--driving',
        short,
        '-o',
        refused,
        '--best-frame',
        '--start-frame',
        '3',
      ),
      /cannot be used with/,
      refused,
    );
  });
});
