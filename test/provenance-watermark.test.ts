import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cropToEven } from '../src/compose/even.js';
import { readImage } from '../src/media/image.js';
import { animate, type AnimateResult } from '../src/pipeline/animate.js';
import { WatermarkEmbedder } from '../src/provenance/embed.js';
import { PAYLOAD_BITS, decodePayload, encodePayload } from '../src/provenance/payload.js';
import { checkWatermark } from '../src/provenance/verify.js';
import { makeClip, probeTags, psnr, scratchFolder } from './animate-measure.js';
import { reenact } from './cli-run.js';
import { shared, skipWithoutShared } from './shared.js';

describe('watermark payload', () => {
  test('56 bits round-trip; any single flipped bit fails the CRC instead of decoding wrong', () => {
    const payload = { version: 1, model: 'fomm' as const, contentId: '9f00c0de' };
    const bits = encodePayload(payload);
    assert.equal(bits.length, PAYLOAD_BITS);
    assert.deepEqual(decodePayload(bits), payload);
    for (let i = 0; i < PAYLOAD_BITS; i++) {
      const damaged = Uint8Array.from(bits);
      damaged[i] ^= 1;
      assert.equal(decodePayload(damaged), undefined, `bit ${i}`);
    }
  });
});

describe('watermark on animate outputs', { skip: skipWithoutShared }, () => {
  let folder: string;
  let marked: string;
  let result: AnimateResult;
  const source = shared('fixtures', 'portrait-outdoor.jpg');
  before(async () => {
    folder = await scratchFolder();
    const driving = await makeClip(['-i', shared('fixtures', 'driving-talking.mp4')], ['-t', '3', '-c:v', 'libx264', '-crf', '16', '-an'], join(folder, 'driving.mp4'));
    marked = join(folder, 'marked.mp4');
    result = await animate({ source, driving, output: marked });
  });
  after(async () => {
    if (folder) await rm(folder, { recursive: true, force: true });
  });

  test('invisible: at least 42 dB from the unmarked frame, changing luma only', async () => {
    const photo = cropToEven(await readImage(source));
    const embedder = new WatermarkEmbedder(photo.width, photo.height, { version: 1, model: 'mesh', contentId: '01234567' });
    const frame = { ...photo, data: Uint8Array.from(photo.data) };
    // At time 0 the temporal modulation is at its peak: the strongest frame.
    embedder.mark(frame, 0);
    assert.ok(psnr(frame, photo) >= 42, `PSNR ${psnr(frame, photo).toFixed(2)} dB`);
    let chromaChanged = 0;
    for (let i = 0; i < frame.data.length; i += 3) {
      const d = [0, 1, 2].map((c) => frame.data[i + c]! - photo.data[i + c]!);
      const clamped = [0, 1, 2].some((c) => frame.data[i + c] === 0 || frame.data[i + c] === 255);
      // Equal offsets on R, G and B leave the colour as it was, unless a channel was clamped at 0 or 255.
      if (!clamped && (d[0] !== d[1] || d[1] !== d[2])) chromaChanged++;
    }
    assert.equal(chromaChanged, 0);
  });

  test('detected with its payload, whose content id is also in the metadata', async () => {
    assert.match(result.contentId ?? '', /^[0-9a-f]{8}$/);
    const { tags } = await probeTags(marked);
    assert.equal(tags.reenact_content_id, result.contentId);
    const check = await checkWatermark(marked);
    assert.ok(check.detected, `score ${check.score}`);
    assert.deepEqual(check.payload, { version: 1, model: 'mesh', contentId: result.contentId });
  });

  test('still detected with the right payload after an H.264 CRF 28 re-encode, and after a 0.5x resize', async () => {
    const crf28 = await makeClip(['-i', marked], ['-c:v', 'libx264', '-crf', '28', '-an'], join(folder, 'crf28.mp4'));
    const half = await makeClip(['-i', marked], ['-vf', 'scale=294:294', '-c:v', 'libx264', '-crf', '23', '-an'], join(folder, 'half.mp4'));
    for (const path of [crf28, half]) {
      const check = await checkWatermark(path);
      assert.ok(check.detected, `${path}: score ${check.score.toFixed(1)} < ${check.threshold.toFixed(1)}`);
      assert.ok(check.falsePositiveProbability < 1e-6);
      assert.equal(check.payload?.contentId, result.contentId, path);
    }
  });

  test('unmarked fixtures are not detected', async () => {
    for (const path of [shared('fixtures', 'driving-talking.mp4'), source]) {
      const check = await checkWatermark(path);
      assert.equal(check.detected, false, `${path}: score ${check.score.toFixed(1)}`);
      assert.ok(check.score < check.threshold);
    }
  });

  test('reenact verify: exit 0 with the payload when found, 1 when not, 2 with a clear message for text, truncated and missing files', async () => {
    const found = await reenact('verify', marked, '--json');
    assert.equal(found.code, 0, found.stderr);
    const report = JSON.parse(found.stdout) as { detected: boolean; payload: { contentId: string }; falsePositiveProbability: number };
    assert.equal(report.detected, true);
    assert.equal(report.payload.contentId, result.contentId);
    const notFound = await reenact('verify', shared('fixtures', 'driving-talking.mp4'));
    assert.equal(notFound.code, 1, notFound.stderr);
    assert.match(notFound.stdout, /no reenact watermark found/);

    const text = join(folder, 'notes.mp4');
    await writeFile(text, 'this is not a video\n');
    const truncated = join(folder, 'truncated.mp4');
    await writeFile(truncated, (await readFile(marked)).subarray(0, 40_000));
    const missing = join(folder, 'missing.mp4');
    for (const [path, message] of [
      [text, /not a video file/],
      [truncated, /truncated or damaged|damaged|not a video/],
      [missing, /does not exist/],
    ] as const) {
      const run = await reenact('verify', path);
      assert.equal(run.code, 2, `${path}: ${run.stdout}${run.stderr}`);
      assert.match(run.stderr, message);
      assert.match(run.stderr, new RegExp(`cannot check ${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
      assert.doesNotMatch(run.stderr, /unexpected error|at .*\.ts:/);
    }
  });
});
