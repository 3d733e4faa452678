import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { assertRefused, reenact } from './cli-run.js';
import { projectRoot, shared, skipWithoutShared } from './shared.js';

describe('reenact align and inspect', { skip: skipWithoutShared }, () => {
  let folder: string;
  const studio = shared('fixtures', 'portrait-studio.png');
  const outdoor = shared('fixtures', 'portrait-outdoor.jpg');

  before(async () => {
    folder = await mkdtemp(join(tmpdir(), 'reenact-cli-align-'));
  });
  after(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  test('align writes a square crop of the requested size', async () => {
    const output = join(folder, 'crop.png');
    const result = await reenact('align', outdoor, '-o', output, '--size', '128', '--json');
    assert.equal(result.code, 0, result.stderr);
    const report = JSON.parse(result.stdout) as {
      face: { index: number; roll: number };
      width: number;
      output: string;
    };
    assert.equal(report.face.index, 0);
    assert.ok(Math.abs(report.face.roll) < 10);
    const metadata = await sharp(output).metadata();
    assert.deepEqual([metadata.width, metadata.height, metadata.format], [128, 128, 'png']);
  });

  test('align --upright writes the whole photo with the canvas grown', async () => {
    const output = join(folder, 'upright.jpg');
    const result = await reenact('align', outdoor, '-o', output, '--upright');
    assert.equal(result.code, 0, result.stderr);
    const metadata = await sharp(output).metadata();
    assert.equal(metadata.format, 'jpeg');
    // A roll of a few degrees grows a 587x586 photo by some pixels on each axis.
    assert.ok(metadata.width! > 587 && metadata.height! > 586, `${metadata.width}x${metadata.height}`);
  });

  test('a cartoon: NO_FACE with advice, non-zero exit, no output', async () => {
    const output = join(folder, 'cartoon.png');
    const result = await reenact('align', shared('fixtures', 'cartoon-no-face.jpg'), '-o', output);
    await assertRefused(
      result,
      /no face found in .*cartoon-no-face\.jpg[\s\S]*clearly visible, frontal, well lit, at least ~80 px wide/,
      output,
    );
  });

  test('--face beyond the faces found is refused', async () => {
    const output = join(folder, 'face.png');
    await assertRefused(
      await reenact('align', studio, '-o', output, '--face', '3'),
      /has 1 face; --face must be 0\.\.0/,
      output,
    );
  });

  test('bad arguments are refused before any work', async () => {
    const output = join(folder, 'size.png');
    await assertRefused(await reenact('align', studio, '-o', output, '--size', 'big'), /--size.*whole number/, output);
  });

  test('a missing file and a non-image are refused clearly', async () => {
    const output = join(folder, 'missing.png');
    await assertRefused(
      await reenact('align', join(folder, 'nope.jpg'), '-o', output),
      /nope\.jpg does not exist/,
      output,
    );
    const text = join(folder, 'notes.jpg');
    await writeFile(text, 'not a photo\n'.repeat(100));
    await assertRefused(await reenact('align', text, '-o', output), /notes\.jpg is not an image/, output);
    await assertRefused(await reenact('inspect', text), /neither an image nor a video/, output);
  });

  test('a 100-megapixel image is refused with IMAGE_TOO_LARGE, not read into memory', async () => {
    const huge = join(folder, 'huge.png');
    await sharp({ create: { width: 10_000, height: 10_000, channels: 3, background: '#8899aa' } })
      .png({ compressionLevel: 1 })
      .toFile(huge);
    const output = join(folder, 'huge-crop.png');
    await assertRefused(
      await reenact('align', huge, '-o', output),
      /10000x10000 \(100 megapixels\); the limit is 40 megapixels[\s\S]*Downscale/,
      output,
    );
  });

  test('inspect lists faces with boxes, scores and roll, and draws them with --debug', async () => {
    const debug = join(folder, 'debug.png');
    const result = await reenact('inspect', studio, '--json', '--debug', debug);
    assert.equal(result.code, 0, result.stderr);
    const report = JSON.parse(result.stdout) as {
      kind: string;
      faces: { box: { width: number }; score: number; roll: number; eyes: unknown; noseTip: unknown }[];
    };
    assert.equal(report.kind, 'image');
    assert.equal(report.faces.length, 1);
    assert.ok(report.faces[0]!.score > 0.5 && report.faces[0]!.box.width > 80 && Math.abs(report.faces[0]!.roll) < 5);
    // The overlay changes pixels on the box outline but keeps the image's size.
    const metadata = await sharp(debug).metadata();
    assert.deepEqual([metadata.width, metadata.height], [256, 256]);
    const drawn = await sharp(debug).removeAlpha().raw().toBuffer();
    const original = await sharp(studio).removeAlpha().raw().toBuffer();
    let changed = 0;
    for (let i = 0; i < drawn.length; i++) if (Math.abs(drawn[i]! - original[i]!) > 40) changed++;
    assert.ok(changed > 500, `${changed} changed values`);
    const text = await reenact('inspect', studio);
    assert.match(text.stdout, /256x256, 1 face\n {2}face 0: box \d+,\d+ \d+x\d+, score 0\.\d\d, roll -?\d+\.\d deg/);
  });

  test('a reader that closes the pipe early (reenact --help | head) ends the command quietly', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(projectRoot, 'src', 'cli', 'run.ts'), '--help'], {
      cwd: projectRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise((resolve) => child.on('close', resolve));
    assert.equal(stderr, '');
    assert.equal(code, 0);
  });

  test('--help describes each command', async () => {
    for (const command of ['inspect', 'align', 'crop-video']) {
      const result = await reenact(command, '--help');
      assert.equal(result.code, 0);
      assert.match(result.stdout, new RegExp(`Usage: reenact ${command}`));
      assert.match(result.stdout, /Examples:/);
    }
  });
});
