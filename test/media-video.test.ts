import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { ReenactError } from '../src/errors.js';
import { decodeVideo, type DecodeOptions } from '../src/media/decode.js';
import { VideoEncoder, copyAudio } from '../src/media/encode.js';
import { runFfmpeg, runTool } from '../src/media/ffmpeg.js';
import { probeVideo } from '../src/media/probe.js';
import type { RgbImage, VideoFrame } from '../src/types.js';
import { shared, skipWithoutShared } from './shared.js';

const driving = shared('fixtures', 'driving-talking.mp4');

async function collect(path: string, options?: DecodeOptions): Promise<VideoFrame[]> {
  const frames: VideoFrame[] = [];
  for await (const frame of decodeVideo(path, options)) frames.push(frame);
  return frames;
}

/** ffprobe's view of a file, independent of probeVideo. */
async function ffprobeJson(path: string): Promise<{
  streams: { codec_type: string; codec_name: string; pix_fmt?: string; nb_frames?: string; duration?: string }[];
  format: { duration: string; tags?: Record<string, string> };
}> {
  const result = await runTool('ffprobe', [
    '-v',
    'error',
    '-print_format',
    'json',
    '-show_format',
    '-show_streams',
    path,
  ]);
  assert.equal(result.code, 0, result.stderr.lines());
  return JSON.parse(result.stdout);
}

/** Top-level MP4 box types in file order. */
async function topLevelBoxes(path: string): Promise<string[]> {
  const bytes = await readFile(path);
  const types: string[] = [];
  for (let offset = 0; offset + 8 <= bytes.length;) {
    let size = bytes.readUInt32BE(offset);
    const type = bytes.toString('latin1', offset + 4, offset + 8);
    if (size === 1) size = Number(bytes.readBigUInt64BE(offset + 8));
    if (size === 0) size = bytes.length - offset;
    types.push(type);
    offset += size;
  }
  return types;
}

function meanAbsDifference(a: Uint8Array, b: Uint8Array): number {
  assert.equal(a.length, b.length);
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / a.length;
}

/** A test card: a horizontal gradient whose brightness level encodes the frame number. */
function testFrame(width: number, height: number, index: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const offset = (y * width + x) * 3;
      data[offset] = (index * 5) % 256;
      data[offset + 1] = Math.round((x / (width - 1)) * 255);
      data[offset + 2] = Math.round((y / (height - 1)) * 255);
    }
  }
  return { width, height, data };
}

describe('probeVideo', { skip: skipWithoutShared }, () => {
  test('reads size, rate, frame count, duration and audio of the driving fixture', async () => {
    const info = await probeVideo(driving);
    assert.equal(info.width, 256);
    assert.equal(info.height, 256);
    assert.equal(info.fps, 30);
    assert.equal(info.frameCount, 240);
    assert.ok(Math.abs(info.duration - 8) < 0.05, `duration ${info.duration}`);
    assert.equal(info.hasAudio, true);
    assert.equal(info.audioCodec, 'aac');
    assert.equal(info.videoCodec, 'h264');
    assert.equal(info.rotation, 0);
    assert.equal(info.needsRepair, false);
  });
});

describe('decodeVideo', { skip: skipWithoutShared }, () => {
  test('yields every frame once, at full size, with increasing index and time', async () => {
    let count = 0;
    let lastTime = -1;
    for await (const frame of decodeVideo(driving)) {
      assert.equal(frame.width, 256);
      assert.equal(frame.height, 256);
      assert.equal(frame.data.length, 256 * 256 * 3);
      assert.equal(frame.index, count);
      assert.ok(frame.time > lastTime, `time ${frame.time} after ${lastTime}`);
      assert.ok(Math.abs(frame.time - count / 30) < 1e-9);
      lastTime = frame.time;
      count++;
    }
    assert.equal(count, 240);
  });

  test('crop then scale matches cropping and resizing the full frame', async () => {
    const crop = { x: 40, y: 30, width: 160, height: 180 };
    const [full] = await collect(driving, { startTime: 2, duration: 1 / 30 });
    const [cropped] = await collect(driving, { crop, width: 64, height: 72, startTime: 2, duration: 1 / 30 });
    assert.ok(full && cropped);
    assert.equal(cropped.width, 64);
    assert.equal(cropped.height, 72);
    assert.equal(cropped.index, 60);
    assert.ok(Math.abs(cropped.time - 2) < 1e-9);
    const expected = await sharp(full.data, { raw: { width: 256, height: 256, channels: 3 } })
      .extract({ left: crop.x, top: crop.y, width: crop.width, height: crop.height })
      .resize(64, 72, { kernel: 'linear' })
      .raw()
      .toBuffer();
    const difference = meanAbsDifference(cropped.data, expected);
    assert.ok(difference < 4, `mean difference ${difference.toFixed(2)} per channel`);
    // A different region must not match: the comparison can fail.
    const elsewhere = await sharp(full.data, { raw: { width: 256, height: 256, channels: 3 } })
      .extract({ left: 0, top: 0, width: crop.width, height: crop.height })
      .resize(64, 72, { kernel: 'linear' })
      .raw()
      .toBuffer();
    assert.ok(meanAbsDifference(cropped.data, elsewhere) > difference * 2);
  });

  test('crop and scale over the whole clip keep every frame; a range decodes exactly its frames', async () => {
    let count = 0;
    for await (const frame of decodeVideo(driving, { crop: { x: 64, y: 64, width: 128, height: 128 }, width: 32 })) {
      assert.equal(frame.width, 32);
      assert.equal(frame.height, 32);
      assert.equal(frame.data.length, 32 * 32 * 3);
      count++;
    }
    assert.equal(count, 240);
    const range = await collect(driving, { startTime: 1, duration: 2, width: 16, height: 16 });
    assert.equal(range.length, 60);
    assert.deepEqual(
      range.map((frame) => frame.index),
      Array.from({ length: 60 }, (_, i) => 30 + i),
    );
    // The seek lands on the right pictures: each frame of the range equals the same-numbered frame of a full decode.
    const all = await collect(driving, { width: 16, height: 16 });
    for (const frame of range)
      assert.ok(meanAbsDifference(frame.data, all[frame.index]!.data) < 0.5, `frame ${frame.index}`);
    assert.ok(meanAbsDifference(range[0]!.data, all[40]!.data) > 0.5, 'frames 30 and 40 differ, so the check can fail');
  });

  test('a crop box reaching past the edge is padded with black', async () => {
    const [frame] = await collect(driving, { crop: { x: -32, y: 0, width: 64, height: 64 }, duration: 1 / 30 });
    assert.ok(frame);
    assert.equal(frame.width, 64);
    const [full] = await collect(driving, { duration: 1 / 30 });
    assert.ok(full);
    // Left half lies outside the video: black; the right half is the video's left edge.
    let outside = 0;
    let insideDifference = 0;
    for (let y = 0; y < 64; y++) {
      for (let x = 0; x < 32; x++) {
        for (let c = 0; c < 3; c++) {
          outside = Math.max(outside, frame.data[(y * 64 + x) * 3 + c]!);
          insideDifference += Math.abs(frame.data[(y * 64 + x + 32) * 3 + c]! - full.data[(y * 256 + x) * 3 + c]!);
        }
      }
    }
    assert.ok(outside < 20, `brightest padded pixel ${outside}`);
    assert.ok(insideDifference / (64 * 32 * 3) < 3, `inside differs by ${insideDifference / (64 * 32 * 3)}`);
  });

  test('stopping early and aborting end the decoder', async () => {
    let seen = 0;
    for await (const frame of decodeVideo(driving)) {
      seen = frame.index + 1;
      if (seen === 5) break;
    }
    assert.equal(seen, 5);

    const controller = new AbortController();
    let yielded = 0;
    await assert.rejects(
      (async () => {
        for await (const _frame of decodeVideo(driving, { signal: controller.signal })) {
          yielded++;
          if (yielded === 10) controller.abort();
        }
      })(),
      (error: unknown) => error instanceof ReenactError && error.code === 'CANCELLED',
    );
    assert.equal(yielded, 10);
  });

  test('bad arguments are refused', async () => {
    await assert.rejects(collect(driving, { width: 10.5 }), { code: 'BAD_ARGUMENT' });
    await assert.rejects(collect(driving, { crop: { x: 300, y: 0, width: 10, height: 10 } }), { code: 'BAD_ARGUMENT' });
    await assert.rejects(collect(driving, { startTime: -1 }), { code: 'BAD_ARGUMENT' });
  });
});

describe('VideoEncoder', { skip: skipWithoutShared }, () => {
  let folder: string;
  before(async () => {
    folder = await mkdtemp(join(tmpdir(), 'reenact-encode-'));
  });
  after(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  async function encodeTestClip(
    path: string,
    frames: number,
    extra: Partial<Parameters<typeof VideoEncoder.create>[1]> = {},
  ): Promise<void> {
    const encoder = await VideoEncoder.create(path, { width: 96, height: 64, fps: 25, ...extra });
    for (let i = 0; i < frames; i++) await encoder.write(testFrame(96, 64, i));
    await encoder.finish();
  }

  test('writes H.264 yuv420p MP4 with faststart, metadata and the driving audio, readable frame by frame', async () => {
    const path = join(folder, 'with-audio.mp4');
    await encodeTestClip(path, 50, {
      audioFrom: { path: driving, startTime: 1 },
      metadata: { comment: 'made by reenact test', reenact_source: 'driving-talking.mp4' },
    });
    const info = await probeVideo(path);
    assert.equal(info.width, 96);
    assert.equal(info.height, 64);
    assert.equal(info.fps, 25);
    assert.equal(info.frameCount, 50);
    assert.equal(info.hasAudio, true);
    assert.equal(info.audioCodec, 'aac');
    const probed = await ffprobeJson(path);
    const video = probed.streams.find((stream) => stream.codec_type === 'video');
    const audio = probed.streams.find((stream) => stream.codec_type === 'audio');
    assert.equal(video?.codec_name, 'h264');
    assert.equal(video?.pix_fmt, 'yuv420p');
    // The audio (7 s available) is cut to the video's 2 s.
    assert.ok(Math.abs(Number(audio?.duration) - 2) < 0.1, `audio lasts ${audio?.duration}`);
    assert.equal(probed.format.tags?.comment, 'made by reenact test');
    assert.equal(probed.format.tags?.reenact_source, 'driving-talking.mp4');
    const boxes = await topLevelBoxes(path);
    assert.ok(boxes.includes('moov') && boxes.includes('mdat'));
    assert.ok(boxes.indexOf('moov') < boxes.indexOf('mdat'), `boxes in order ${boxes.join(',')}`);

    const decoded = await collect(path);
    assert.equal(decoded.length, 50);
    for (const frame of decoded) {
      const expected = testFrame(96, 64, frame.index);
      const difference = meanAbsDifference(frame.data, expected.data);
      assert.ok(difference < 4, `frame ${frame.index} differs by ${difference.toFixed(2)}`);
      // The red level tells which frame was written: no frame dropped, repeated or shifted.
      let red = 0;
      for (let i = 0; i < frame.data.length; i += 3) red += frame.data[i]!;
      assert.equal(Math.round(red / (frame.data.length / 3) / 5), frame.index);
    }
  });

  test('the output keeps the video length when the audio is shorter, and has no audio when the source has none', async () => {
    const silentSource = join(folder, 'silent.mp4');
    await encodeTestClip(silentSource, 10);
    assert.equal((await probeVideo(silentSource)).hasAudio, false);

    const fromSilent = join(folder, 'from-silent.mp4');
    await encodeTestClip(fromSilent, 20, { audioFrom: { path: silentSource } });
    const silentInfo = await probeVideo(fromSilent);
    assert.equal(silentInfo.hasAudio, false);
    assert.equal(silentInfo.frameCount, 20);

    // 1 s of audio under a 4 s video: the video keeps all its frames.
    const shortAudio = join(folder, 'short-audio.mp4');
    await encodeTestClip(shortAudio, 100, { audioFrom: { path: driving, startTime: 7 } });
    const shortInfo = await probeVideo(shortAudio);
    assert.equal(shortInfo.frameCount, 100);
    assert.equal(shortInfo.hasAudio, true);
    assert.ok(Math.abs(shortInfo.duration - 4) < 0.1, `duration ${shortInfo.duration}`);
  });

  test('copyAudio adds a range of audio to a finished video without touching its frames', async () => {
    const silent = join(folder, 'picture-only.mp4');
    await encodeTestClip(silent, 40, { metadata: { comment: 'kept' } });
    const withAudio = join(folder, 'picture-and-sound.mp4');
    await copyAudio(silent, driving, withAudio, { startTime: 2, duration: 5 });
    const info = await probeVideo(withAudio);
    assert.equal(info.hasAudio, true);
    assert.equal(info.frameCount, 40);
    assert.ok(Math.abs(info.duration - 1.6) < 0.1, `duration ${info.duration}`);
    assert.equal((await ffprobeJson(withAudio)).format.tags?.comment, 'kept');
  });

  test('a frame buffer may be reused as soon as write() resolves', async () => {
    const path = join(folder, 'reused-buffer.mp4');
    const encoder = await VideoEncoder.create(path, { width: 32, height: 32, fps: 30 });
    const frame = testFrame(32, 32, 0);
    for (let i = 0; i < 30; i++) {
      for (let p = 0; p < frame.data.length; p += 3) frame.data[p] = (i * 5) % 256;
      await encoder.write(frame);
    }
    await encoder.finish();
    const decoded = await collect(path);
    assert.equal(decoded.length, 30);
    for (const { data, index } of decoded) {
      let red = 0;
      for (let p = 0; p < data.length; p += 3) red += data[p]!;
      assert.equal(Math.round(red / (data.length / 3) / 5), index);
    }
  });

  test('rotation metadata is applied: probe and decode give the display size', async () => {
    const upright = join(folder, 'landscape.mp4');
    await encodeTestClip(upright, 5);
    const rotated = join(folder, 'rotated.mp4');
    await runFfmpeg(['-y', '-i', upright, '-c', 'copy', '-metadata:s:v:0', 'rotate=90', rotated], 'tagging a rotation');
    const info = await probeVideo(rotated);
    // ffmpeg builds disagree on the sign of the legacy rotate tag; what matters is that probe and decode agree.
    assert.ok(info.rotation === 90 || info.rotation === 270, `rotation ${info.rotation}`);
    assert.equal(info.width, 64);
    assert.equal(info.height, 96);
    const frames = await collect(rotated);
    assert.equal(frames.length, 5);
    assert.equal(frames[0]!.width, 64);
    assert.equal(frames[0]!.height, 96);
    // Turned clockwise the source's left column (green 0) becomes the top row; anticlockwise, the bottom row.
    const topGreen = frames[0]!.data[(0 * 64 + 32) * 3 + 1]!;
    const bottomGreen = frames[0]!.data[(95 * 64 + 32) * 3 + 1]!;
    const [dark, light] = info.rotation === 90 ? [topGreen, bottomGreen] : [bottomGreen, topGreen];
    assert.ok(dark < 30 && light > 220, `rotation ${info.rotation}: green top ${topGreen}, bottom ${bottomGreen}`);
  });

  test('threads reach x264 (its settings, written into the stream, say so)', async () => {
    const settings = async (threads?: number) => {
      const path = join(folder, `threads-${threads}.mp4`);
      await encodeTestClip(path, 5, threads ? { threads } : {});
      return / threads=(\d+) /.exec((await readFile(path)).toString('latin1'))?.[1];
    };
    assert.equal(await settings(1), '1');
    assert.notEqual(await settings(), '1');
  });

  test('odd sizes and mismatched frames are refused; abort leaves no file', async () => {
    const odd = join(folder, 'odd.mp4');
    await assert.rejects(VideoEncoder.create(odd, { width: 97, height: 64, fps: 25 }), { code: 'BAD_ARGUMENT' });
    await assert.rejects(VideoEncoder.create(odd, { width: 96, height: 63, fps: 25 }), { code: 'BAD_ARGUMENT' });
    await assert.rejects(VideoEncoder.create(odd, { width: 96, height: 64, fps: 25, threads: 0 }), {
      code: 'BAD_ARGUMENT',
      message: /threads/,
    });

    const aborted = join(folder, 'aborted.mp4');
    const encoder = await VideoEncoder.create(aborted, { width: 96, height: 64, fps: 25 });
    for (let i = 0; i < 10; i++) await encoder.write(testFrame(96, 64, i));
    await assert.rejects(encoder.write(testFrame(64, 64, 0)), { code: 'BAD_ARGUMENT' });
    await encoder.abort();

    const empty = join(folder, 'empty.mp4');
    const unused = await VideoEncoder.create(empty, { width: 96, height: 64, fps: 25 });
    await assert.rejects(unused.finish(), { code: 'NO_FRAMES' });

    const names = await readdir(folder);
    for (const name of names) assert.ok(!/odd|aborted|empty/.test(name), `left behind: ${name}`);
  });

  test('an unwritable output folder is reported before any work', async () => {
    await assert.rejects(
      VideoEncoder.create(join(folder, 'no-such-folder', 'out.mp4'), { width: 96, height: 64, fps: 25 }),
      { code: 'OUTPUT_UNWRITABLE' },
    );
  });
});
