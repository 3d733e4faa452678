import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cropDrivingVideo } from '../src/driving/crop.js';
import { findFaceTracks, iou, squareCrop, writeTracksJson } from '../src/driving/tracks.js';
import { FaceAnalyzer } from '../src/face/detector.js';
import { decodeVideo } from '../src/media/decode.js';
import { runFfmpeg, runTool } from '../src/media/ffmpeg.js';
import { probeVideo } from '../src/media/probe.js';
import type { VideoFrame } from '../src/types.js';
import { shared, skipWithoutShared } from './shared.js';

const driving = shared('fixtures', 'driving-talking.mp4');

/** Durations of the video and audio streams, from ffprobe. */
async function streamDurations(path: string): Promise<{ video: number; audio: number }> {
  const result = await runTool('ffprobe', [
    '-v',
    'error',
    '-show_entries',
    'stream=codec_type,duration',
    '-of',
    'json',
    path,
  ]);
  const streams = (JSON.parse(result.stdout) as { streams: { codec_type: string; duration: string }[] }).streams;
  const of = (type: string) => Number(streams.find((s) => s.codec_type === type)?.duration ?? NaN);
  return { video: of('video'), audio: of('audio') };
}

describe('face track geometry', () => {
  test('IoU of boxes', () => {
    assert.equal(iou({ x: 0, y: 0, width: 10, height: 10 }, { x: 0, y: 0, width: 10, height: 10 }), 1);
    assert.equal(iou({ x: 0, y: 0, width: 10, height: 10 }, { x: 20, y: 0, width: 10, height: 10 }), 0);
    assert.ok(
      Math.abs(iou({ x: 0, y: 0, width: 10, height: 10 }, { x: 5, y: 0, width: 10, height: 10 }) - 50 / 150) < 1e-12,
    );
  });

  test('the crop is square, enlarged, and moved inside the frame rather than cut', () => {
    // A tall union box near the right edge of a 640x360 frame.
    const box = squareCrop({ x0: 560, y0: 100, x1: 620, y1: 200 }, 0.1, 640, 360);
    assert.equal(box.width, box.height);
    assert.equal(box.width, 120);
    assert.equal(box.x + box.width, 640);
    assert.ok(box.y <= 100 && box.y + box.height >= 200);
    // Larger than the frame's short side: shrunk to it.
    const huge = squareCrop({ x0: 100, y0: 0, x1: 500, y1: 360 }, 0.1, 640, 360);
    assert.deepEqual([huge.width, huge.height, huge.y], [360, 360, 0]);
  });
});

describe('driving video tracks and crop', { skip: skipWithoutShared }, () => {
  let analyzer: FaceAnalyzer;
  let folder: string;
  let padded: string;

  before(async () => {
    analyzer = await FaceAnalyzer.create();
    folder = await mkdtemp(join(tmpdir(), 'reenact-driving-'));
    // The talking head placed at (300, 100) in a wider 1280x720 frame, audio kept.
    padded = join(folder, 'padded.mp4');
    await runFfmpeg(
      [
        '-i',
        driving,
        '-vf',
        'pad=1280:720:300:100:color=0x506070',
        '-c:v',
        'libx264',
        '-preset',
        'ultrafast',
        '-crf',
        '18',
        '-c:a',
        'copy',
        padded,
      ],
      'making a padded driving clip',
    );
  });
  after(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  test('the talking-head clip is one track over all 240 frames', async () => {
    const tracks = await findFaceTracks(driving, analyzer);
    assert.equal(tracks.length, 1);
    const [track] = tracks;
    assert.deepEqual([track!.start, track!.end, track!.frames], [0, 240, 240]);
    assert.equal(track!.startTime, 0);
    assert.equal(track!.endTime, 8);
    assert.equal(track!.box.width, track!.box.height);
  });

  test('in a larger frame the track box finds the face where it was placed; detecting every 6th frame agrees', async () => {
    const progress: number[] = [];
    const [track] = await findFaceTracks(padded, analyzer, {
      stride: 2,
      onProgress: (event) => progress.push(event.done),
    });
    assert.ok(track);
    assert.equal(track.frames, 240);
    assert.equal(progress.at(-1), 240);
    const { box } = track;
    assert.equal(box.width, box.height);
    // The talking head fills its 256 px square at (300, 100), so the crop (the area the face moves
    // in, plus 10% a side) is centred near that square's centre and about as large.
    const centreX = box.x + box.width / 2;
    const centreY = box.y + box.height / 2;
    assert.ok(Math.abs(centreX - 428) < 60 && Math.abs(centreY - 228) < 60, JSON.stringify(box));
    assert.ok(box.width >= 220 && box.width <= 330, JSON.stringify(box));
    const strided = await findFaceTracks(padded, analyzer, { stride: 6 });
    assert.equal(strided.length, 1);
    assert.equal(strided[0]!.frames, 240);
    assert.ok(iou(strided[0]!.box, box) > 0.8);
  });

  test('the crop clip is 256x256 with every frame and its audio in sync', async () => {
    const [track] = await findFaceTracks(padded, analyzer, { stride: 4 });
    const output = join(folder, 'crop.mp4');
    const result = await cropDrivingVideo(padded, track!, output);
    assert.equal(result.frames, 240);
    const info = await probeVideo(output);
    assert.deepEqual([info.width, info.height, info.frameCount, info.fps], [256, 256, 240, 30]);
    assert.ok(info.hasAudio);
    assert.ok(Math.abs(info.duration - 8) < 0.05, `duration ${info.duration}`);
    const durations = await streamDurations(output);
    assert.ok(Math.abs(durations.audio - durations.video) < 0.05, JSON.stringify(durations));
    // The crop shows the face: its centre pixel matches the source clip's centre region, not the padding colour.
    for await (const frame of decodeVideo(output, { duration: 0.05 })) {
      const p = (128 * 256 + 128) * 3;
      assert.notDeepEqual(Array.from(frame.data.subarray(p, p + 3)), [0x50, 0x60, 0x70]);
    }
    const faces = await analyzer.detectBoxes((await firstFrame(output))!);
    assert.equal(faces.length, 1);
    assert.ok(faces[0]!.box.width > 100, `face width in the crop ${faces[0]!.box.width}`);
  });

  test('a track from the middle of the clip takes the matching stretch of audio', async () => {
    const output = join(folder, 'middle.mp4');
    const track = {
      start: 60,
      end: 180,
      startTime: 2,
      endTime: 6,
      frames: 120,
      box: { x: 300, y: 100, width: 256, height: 256 },
    };
    await cropDrivingVideo(padded, track, output, { size: 128 });
    const info = await probeVideo(output);
    assert.deepEqual([info.width, info.frameCount], [128, 120]);
    const durations = await streamDurations(output);
    assert.ok(Math.abs(durations.video - 4) < 0.05 && Math.abs(durations.audio - 4) < 0.05, JSON.stringify(durations));
    // Frame 0 of the crop is frame 60 of the source, scaled down.
    let source: VideoFrame | undefined;
    for await (const frame of decodeVideo(driving)) {
      if (frame.index === 60) {
        source = frame;
        break;
      }
    }
    assert.ok(source);
    const cropped = (await firstFrame(output))!;
    let diff = 0;
    for (let y = 0; y < 128; y++) {
      for (let x = 0; x < 128; x++) {
        for (let ch = 0; ch < 3; ch++) {
          const s =
            (source.data[(2 * y * 256 + 2 * x) * 3 + ch]! + source.data[((2 * y + 1) * 256 + 2 * x + 1) * 3 + ch]!) / 2;
          diff += Math.abs(s - cropped.data[(y * 128 + x) * 3 + ch]!);
        }
      }
    }
    // Frame 60 differs by ~2 on average; frames 59 and 61 by more than 11.
    assert.ok(diff / (128 * 128 * 3) < 6, `mean difference ${diff / (128 * 128 * 3)}`);
  });

  test('a cut to another place starts a new track; two blank frames do not, unless maxMissed is 0', async () => {
    // 0-4 s: the head at (100, 100) with frames 50 and 51 blacked out; 4-8 s: the head at (800, 300).
    const cut = join(folder, 'cut.mp4');
    const graph =
      '[0:v]split[a][b];' +
      "[a]trim=0:4,setpts=PTS-STARTPTS,drawbox=x=0:y=0:w=iw:h=ih:color=black:t=fill:enable='between(n,50,51)',pad=1280:720:100:100[x];" +
      '[b]trim=4:8,setpts=PTS-STARTPTS,pad=1280:720:800:300[y];[x][y]concat=n=2:v=1[v]';
    await runFfmpeg(
      ['-i', driving, '-filter_complex', graph, '-map', '[v]', '-c:v', 'libx264', '-preset', 'ultrafast', cut],
      'making a clip with a cut',
    );
    const tracks = await findFaceTracks(cut, analyzer, { minFrames: 40, stride: 2 });
    assert.deepEqual(
      tracks.map((t) => [t.start, t.end]),
      [
        [0, 120],
        [120, 240],
      ],
    );
    assert.ok(tracks[0]!.box.x < 400 && tracks[1]!.box.x > 600, JSON.stringify(tracks.map((t) => t.box)));
    const strict = await findFaceTracks(cut, analyzer, { minFrames: 40, maxMissed: 0 });
    assert.deepEqual(
      strict.map((t) => [t.start, t.end]),
      [
        [0, 50],
        [52, 120],
        [120, 240],
      ],
    );
    // The default minimum of 150 frames keeps neither 120-frame track.
    assert.deepEqual(await findFaceTracks(cut, analyzer, { stride: 4 }), []);
  });

  test('tracks are written as JSON; nothing is left behind', async () => {
    const tracks = await findFaceTracks(driving, analyzer, { stride: 5 });
    const path = join(folder, 'tracks.json');
    await writeTracksJson(path, await probeVideo(driving), tracks);
    const document = JSON.parse(await readFile(path, 'utf8')) as { video: { frameCount: number }; tracks: unknown[] };
    assert.equal(document.video.frameCount, 240);
    assert.deepEqual(document.tracks, JSON.parse(JSON.stringify(tracks)));
    assert.ok((await readdir(folder)).every((name) => !name.includes('.partial')));
  });
});

async function firstFrame(path: string) {
  for await (const frame of decodeVideo(path, { duration: 0.1 })) return frame;
  return undefined;
}
