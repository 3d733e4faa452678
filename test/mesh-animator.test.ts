import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import sharp from 'sharp';
import { FaceAnalyzer, type Face } from '../src/face/detector.js';
import { landmark, LANDMARKS, rollDegrees } from '../src/face/landmarks.js';
import { LandmarkPool } from '../src/pipeline/landmark-pool.js';
import { decodeVideo } from '../src/media/decode.js';
import { readImage } from '../src/media/image.js';
import { MeshAnimator } from '../src/mesh/animator.js';
import { FACE_OVAL, INNER_LIPS } from '../src/mesh/regions.js';
import { warpMesh } from '../src/mesh/topology.js';
import type { RgbImage, VideoFrame } from '../src/types.js';
import { psnr } from './animate-measure.js';
import { shared, skipWithoutShared } from './shared.js';

/** Inner-lip gap over the eye-corner distance: 0 closed, ~0.3 wide open. */
function mouthOpening(face: Face): number {
  const upper = landmark(face, LANDMARKS.upperInnerLip);
  const lower = landmark(face, LANDMARKS.lowerInnerLip);
  const left = landmark(face, LANDMARKS.imageLeftEyeOuter);
  const right = landmark(face, LANDMARKS.imageRightEyeOuter);
  return Math.hypot(lower.x - upper.x, lower.y - upper.y) / Math.hypot(right.x - left.x, right.y - left.y);
}

/** Lid gap at the eye centres over the eye-corner distance, both eyes averaged. */
function eyeOpening(face: Face): number {
  const gap = (upper: number, lower: number) =>
    Math.hypot(landmark(face, upper).x - landmark(face, lower).x, landmark(face, upper).y - landmark(face, lower).y);
  const left = landmark(face, LANDMARKS.imageLeftEyeOuter);
  const right = landmark(face, LANDMARKS.imageRightEyeOuter);
  return (gap(159, 145) + gap(386, 374)) / 2 / Math.hypot(right.x - left.x, right.y - left.y);
}

/** Mean brightness (0..255) inside the inner-lip polygon. */
function mouthBrightness(image: RgbImage, face: Face): number {
  const polygon = INNER_LIPS.map((i) => landmark(face, i));
  let sum = 0;
  let n = 0;
  for (let y = 0; y < image.height; y++) {
    for (let x = 0; x < image.width; x++) {
      let inside = false;
      for (let i = 0, j = polygon.length - 1; i < polygon.length; j = i++) {
        const a = polygon[i]!,
          b = polygon[j]!;
        if (a.y > y + 0.5 !== b.y > y + 0.5 && x + 0.5 < ((b.x - a.x) * (y + 0.5 - a.y)) / (b.y - a.y) + a.x)
          inside = !inside;
      }
      if (!inside) continue;
      const o = (y * image.width + x) * 3;
      sum += (image.data[o]! + image.data[o + 1]! + image.data[o + 2]!) / 3;
      n++;
    }
  }
  return n ? sum / n : 0;
}

function correlation(a: number[], b: number[]): number {
  const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;
  const ma = mean(a);
  const mb = mean(b);
  let ab = 0,
    aa = 0,
    bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += (a[i]! - ma) * (b[i]! - mb);
    aa += (a[i]! - ma) ** 2;
    bb += (b[i]! - mb) ** 2;
  }
  return ab / Math.sqrt(aa * bb);
}

/** Centre and largest radius of the face outline. */
function faceExtent(face: Face): { x: number; y: number; radius: number } {
  let x = 0,
    y = 0;
  for (const i of FACE_OVAL) {
    x += face.landmarks[3 * i]!;
    y += face.landmarks[3 * i + 1]!;
  }
  x /= FACE_OVAL.length;
  y /= FACE_OVAL.length;
  let radius = 0;
  for (const i of FACE_OVAL)
    radius = Math.max(radius, Math.hypot(face.landmarks[3 * i]! - x, face.landmarks[3 * i + 1]! - y));
  return { x, y, radius };
}

async function rotated(frame: RgbImage, degrees: number): Promise<RgbImage> {
  const { data, info } = await sharp(frame.data, { raw: { width: frame.width, height: frame.height, channels: 3 } })
    .rotate(degrees, { background: '#808080' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return {
    width: info.width,
    height: info.height,
    data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  };
}

describe('mesh animator', { skip: skipWithoutShared }, () => {
  let analyzer: FaceAnalyzer;
  /** The first 4 s of the talking-head clip (neutral, then the mouth opens wide around 2 s) and its tracked faces. */
  let frames: VideoFrame[];
  let driving: (Face | null)[];
  const sources: Record<string, { image: RgbImage; face: Face }> = {};

  before(async () => {
    analyzer = await FaceAnalyzer.create();
    frames = [];
    for await (const frame of decodeVideo(shared('fixtures', 'driving-talking.mp4'), { duration: 4 }))
      frames.push(frame);
    const pool = await LandmarkPool.create(analyzer, 0);
    driving = [];
    for (const frame of frames) driving.push(await pool.detect(frame));
    await pool.close();
    for (const name of ['portrait-outdoor.jpg', 'portrait-studio.png']) {
      const image = await readImage(shared('fixtures', name));
      sources[name] = { image, face: (await analyzer.detect(image))[0]! };
    }
  });

  test('the clip is tracked in every frame', () => {
    assert.equal(frames.length, 120);
    assert.ok(driving.every((face) => face !== null));
  });

  for (const name of ['portrait-outdoor.jpg', 'portrait-studio.png']) {
    test(`${name}: the reference frame reproduces the source`, () => {
      const source = sources[name]!;
      const animator = new MeshAnimator(source, driving[0]!);
      const out = animator.render({ face: driving[0]!, frame: frames[0]!, time: 0 });
      assert.equal(out.width, source.image.width);
      assert.equal(out.height, source.image.height);
      assert.ok(psnr(source.image, out) > 35);
    });
  }

  for (const name of ['portrait-outdoor.jpg', 'portrait-studio.png']) {
    test(`${name}: the warp mesh tiles the whole photo, without gaps or overlaps`, () => {
      const { image, face } = sources[name]!;
      const { vertices, triangles } = warpMesh(face, image);
      // Rings around a head near the border reach past it: each triangle counts only where it
      // covers the photo (clipped to its rectangle).
      let area = 0;
      for (let t = 0; t < triangles.length; t += 3) {
        const corners = [triangles[t]!, triangles[t + 1]!, triangles[t + 2]!].map(
          (v) => [vertices[2 * v]!, vertices[2 * v + 1]!] as [number, number],
        );
        area += Math.abs(polygonArea(clipToRectangle(corners, image.width, image.height)));
      }
      assert.ok(vertices.every(Number.isFinite));
      // Gaps would leave the sum short of the photo's area, overlaps push it over.
      assert.ok(
        Math.abs(area / (image.width * image.height) - 1) < 0.005,
        `triangles cover ${area.toFixed(0)} px of ${image.width * image.height}`,
      );
    });
  }

  test('driving the source with its own landmarks is the identity', () => {
    const source = sources['portrait-studio.png']!;
    const animator = new MeshAnimator(source, source.face, { smoothing: false });
    const out = animator.render({ face: source.face, frame: source.image, time: 0 });
    assert.deepEqual(out.data, source.image.data);
  });

  test('a fast move is blurred along its path, as a camera shows it (a frame repeated after it too); a slow one to the same place is not', () => {
    const source = sources['portrait-studio.png']!;
    const eyes = (() => {
      const a = landmark(source.face, LANDMARKS.imageLeftEyeOuter),
        b = landmark(source.face, LANDMARKS.imageRightEyeOuter);
      return Math.hypot(b.x - a.x, b.y - a.y);
    })();
    // The photo's own landmarks moved sideways by `share` of the eye-corner distance.
    const moved = (share: number): Face => {
      const landmarks = Float32Array.from(source.face.landmarks);
      for (let i = 0; i < landmarks.length; i += 3) landmarks[i]! += share * eyes;
      return { ...source.face, landmarks };
    };
    const render = (steps: number[], options: { motionBlur?: boolean } = {}) => {
      const animator = new MeshAnimator(source, source.face, { smoothing: false, ...options });
      let out = animator.render({ face: source.face, frame: source.image, time: 0 });
      steps.forEach(
        (share, k) => (out = animator.render({ face: moved(share), frame: source.image, time: (k + 1) / 25 })),
      );
      return out;
    };
    const fast = render([0.15]);
    const slow = render(Array.from({ length: 30 }, (_, k) => (0.15 * (k + 1)) / 30));
    const unblurred = render([0.15], { motionBlur: false });
    // At the same place the slow move and the fast one without blur are the same frame.
    assert.deepEqual(unblurred.data, slow.data);
    assert.notDeepEqual(fast.data, slow.data);
    // Blurred sideways: across the face the fast frame's steps from pixel to pixel shrink
    // sideways much more than up and down.
    const face = faceExtent(moved(0.15));
    const steps = (image: RgbImage, dx: number, dy: number) => {
      let sum = 0;
      for (let y = Math.round(face.y - face.radius); y < face.y + face.radius; y++)
        for (let x = Math.round(face.x - face.radius); x < face.x + face.radius; x++) {
          const o = (y * image.width + x) * 3,
            q = ((y + dy) * image.width + x + dx) * 3;
          for (let c = 0; c < 3; c++) sum += Math.abs(image.data[o + c]! - image.data[q + c]!);
        }
      return sum;
    };
    const sideways = steps(fast, 1, 0) / steps(slow, 1, 0),
      upDown = steps(fast, 0, 1) / steps(slow, 0, 1);
    assert.ok(
      sideways < 0.85 && sideways < upDown - 0.05,
      `sideways ${sideways.toFixed(3)}, up and down ${upDown.toFixed(3)}`,
    );
    // A frame repeated after the jump (a driver's duplicate frame) is still blurred, less so.
    const repeated = steps(render([0.15, 0.15]), 1, 0) / steps(slow, 1, 0);
    assert.ok(repeated > sideways && repeated < 0.95, `repeated frame sideways ${repeated.toFixed(3)}`);
  });

  for (const name of ['portrait-outdoor.jpg', 'portrait-studio.png']) {
    test(`${name}: the mouth of the output opens and closes with the driver, and the background stays still`, async () => {
      const source = sources[name]!;
      const animator = new MeshAnimator(source, driving[0]!);
      const head = faceExtent(source.face);
      const far = (x: number, y: number) => Math.hypot(x + 0.5 - head.x, y + 0.5 - head.y) > 3.2 * head.radius;
      const away = (x: number, y: number) => Math.hypot(x + 0.5 - head.x, y + 0.5 - head.y) > 2.5 * head.radius;
      const driver: number[] = [];
      const output: number[] = [];
      let widest = { opening: 0, brightness: 0 };
      for (let k = 0; k < frames.length; k++) {
        const out = animator.render({ face: driving[k]!, frame: frames[k]!, time: frames[k]!.time });
        if (k % 3 !== 0) continue;
        const [reference] = await analyzer.detect(frames[k]!);
        const [rendered] = await analyzer.detect(out);
        assert.ok(reference && rendered, `frame ${k}: a face in the driver and in the output`);
        driver.push(mouthOpening(reference));
        output.push(mouthOpening(rendered));
        if (driver.at(-1)! > widest.opening)
          widest = { opening: driver.at(-1)!, brightness: mouthBrightness(out, rendered) };
        // Far from the head nothing is resampled; nearer, the background barely moves.
        assert.equal(psnr(source.image, out, far), Infinity, `frame ${k}: pixels far from the head changed`);
        assert.ok(
          psnr(source.image, out, away) > 35,
          `frame ${k}: background PSNR ${psnr(source.image, out, away).toFixed(1)} dB`,
        );
      }
      const r = correlation(driver, output);
      assert.ok(
        r > 0.7,
        `mouth opening correlation ${r.toFixed(3)} (driver ${driver.map((v) => v.toFixed(2))}, output ${output.map((v) => v.toFixed(2))})`,
      );
      assert.ok(Math.max(...output) > mouthOpening(source.face) + 0.1, 'the output mouth opens wider than the source');
      if (name === 'portrait-outdoor.jpg') {
        // This source smiles with its teeth showing: the opened mouth is filled from the driver
        // (a dark interior), not left as those teeth stretched over the opening.
        const sourceMouth = mouthBrightness(source.image, source.face);
        assert.ok(
          widest.brightness < 0.7 * sourceMouth,
          `mouth interior brightness ${widest.brightness.toFixed(0)}, source teeth ${sourceMouth.toFixed(0)}`,
        );
      }
    });
  }

  for (const degrees of [-15, 12]) {
    test(`a driver rolled by ${degrees} degrees rolls the output by as much`, async () => {
      const source = sources['portrait-outdoor.jpg']!;
      const frame = await rotated(frames[0]!, degrees);
      const [face] = await analyzer.detect(frame);
      assert.ok(face);
      const [reference] = await analyzer.detect(await rotated(frames[0]!, 0));
      const animator = new MeshAnimator(source, reference!);
      const out = animator.render({ face, frame, time: 0 });
      const [rendered] = await analyzer.detect(out);
      assert.ok(rendered);
      const turned = rollDegrees(rendered) - rollDegrees(source.face);
      assert.ok(
        Math.abs(turned - degrees) < 3,
        `output rolled ${turned.toFixed(1)} degrees for a driver rolled ${degrees}`,
      );
    });
  }

  test('a blink of the driver closes the eyes of the output', async () => {
    // The clip blinks at frames 161-162 (5.37-5.40 s).
    const clip: VideoFrame[] = [];
    for await (const frame of decodeVideo(shared('fixtures', 'driving-talking.mp4'), { startTime: 5, duration: 0.6 }))
      clip.push(frame);
    const pool = await LandmarkPool.create(analyzer, 0);
    const source = sources['portrait-studio.png']!;
    let animator: MeshAnimator | undefined;
    const openness: Record<string, number> = {};
    for (const frame of clip) {
      const face = await pool.detect(frame);
      assert.ok(face);
      animator ??= new MeshAnimator(source, face);
      const out = animator.render({ face, frame, time: frame.time });
      const index = Math.round(frame.time * 30);
      if (index === 158 || index === 162) {
        const [rendered] = await analyzer.detect(out);
        assert.ok(rendered);
        openness[index] = eyeOpening(rendered);
      }
    }
    await pool.close();
    assert.ok(
      openness[162]! < 0.8 * openness[158]!,
      `eye opening ${openness[162]!.toFixed(3)} in the blink, ${openness[158]!.toFixed(3)} before`,
    );
  });

  test('a frame without a face holds the last pose', () => {
    const source = sources['portrait-studio.png']!;
    const animator = new MeshAnimator(source, driving[0]!);
    const moved = animator.render({ face: driving[60]!, frame: frames[60]!, time: 2 });
    const held = animator.render({ face: null, frame: frames[61]!, time: 2 + 1 / 30 });
    assert.deepEqual(held.data, moved.data);
    assert.notDeepEqual(moved.data, source.image.data);
  });
});

/** The part of a polygon inside [0, width] x [0, height] (Sutherland-Hodgman). */
function clipToRectangle(polygon: [number, number][], width: number, height: number): [number, number][] {
  // Each side as a signed distance, positive inside.
  const sides: ((p: [number, number]) => number)[] = [
    (p) => p[0],
    (p) => width - p[0],
    (p) => p[1],
    (p) => height - p[1],
  ];
  let out = polygon;
  for (const inside of sides) {
    const input = out;
    out = [];
    for (let i = 0; i < input.length; i++) {
      const a = input[i]!;
      const b = input[(i + 1) % input.length]!;
      const da = inside(a),
        db = inside(b);
      if (da >= 0) out.push(a);
      if (da >= 0 !== db >= 0) {
        const f = da / (da - db);
        out.push([a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1])]);
      }
    }
  }
  return out;
}

/** Signed area of a polygon (shoelace). */
function polygonArea(polygon: [number, number][]): number {
  let twice = 0;
  for (let i = 0; i < polygon.length; i++) {
    const a = polygon[i]!,
      b = polygon[(i + 1) % polygon.length]!;
    twice += a[0] * b[1] - b[0] * a[1];
  }
  return twice / 2;
}
