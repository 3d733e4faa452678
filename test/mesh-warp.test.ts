import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { random } from './shared.js';
import { delaunay } from '../src/mesh/delaunay.js';
import { rotationFromVector, rotationVector } from '../src/mesh/head.js';
import { OneEuroFilter } from '../src/mesh/one-euro.js';
import { nativeWarp, warpPiecewiseAffine, warpPiecewiseAffineInJs } from '../src/mesh/warp.js';
import type { RgbImage } from '../src/types.js';

/** Grid vertices over a width x height image, border included, `steps` cells per side. */
function grid(width: number, height: number, steps: number): Float64Array {
  const xy: number[] = [];
  for (let j = 0; j <= steps; j++) for (let i = 0; i <= steps; i++) xy.push((i * width) / steps, (j * height) / steps);
  return Float64Array.from(xy);
}

function texture(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      data[o] = (x * 7 + y * 3) & 255;
      data[o + 1] = (x * y) & 255;
      data[o + 2] = 40 + ((x ^ y) & 127);
    }
  }
  return { width, height, data };
}

/** Random pixels from `next`. */
function noiseImage(width: number, height: number, next: () => number): RgbImage {
  return { width, height, data: Uint8Array.from({ length: width * height * 3 }, () => next() * 256) };
}

describe('delaunay', () => {
  test('no point lies inside any triangle circumcircle, and the triangles tile the hull', () => {
    const next = random(7);
    const xy: number[] = [0, 0, 100, 0, 100, 100, 0, 100];
    // Interior points keep half a pixel from the hull, as mesh points keep from the image border.
    for (let i = 0; i < 300; i++) xy.push(0.5 + next() * 99, 0.5 + next() * 99);
    const triangles = delaunay(xy);
    let area = 0;
    for (let t = 0; t < triangles.length; t += 3) {
      const [a, b, c] = [triangles[t]!, triangles[t + 1]!, triangles[t + 2]!];
      const ax = xy[2 * a]!,
        ay = xy[2 * a + 1]!,
        bx = xy[2 * b]!,
        by = xy[2 * b + 1]!,
        cx = xy[2 * c]!,
        cy = xy[2 * c + 1]!;
      area += Math.abs((bx - ax) * (cy - ay) - (cx - ax) * (by - ay)) / 2;
      const d = 2 * (ax * (by - cy) + bx * (cy - ay) + cx * (ay - by));
      const ux =
        ((ax * ax + ay * ay) * (by - cy) + (bx * bx + by * by) * (cy - ay) + (cx * cx + cy * cy) * (ay - by)) / d;
      const uy =
        ((ax * ax + ay * ay) * (cx - bx) + (bx * bx + by * by) * (ax - cx) + (cx * cx + cy * cy) * (bx - ax)) / d;
      const r2 = (ax - ux) ** 2 + (ay - uy) ** 2;
      for (let p = 0; p < xy.length / 2; p++) {
        if (p === a || p === b || p === c) continue;
        assert.ok(
          (xy[2 * p]! - ux) ** 2 + (xy[2 * p + 1]! - uy) ** 2 >= r2 * (1 - 1e-9),
          `point ${p} inside the circumcircle of ${a},${b},${c}`,
        );
      }
    }
    assert.ok(Math.abs(area - 100 * 100) < 1e-6, `triangles cover ${area}, not the 100x100 square`);
  });
});

describe('piecewise-affine warp', () => {
  const source = texture(97, 83);

  test('is the identity when the target mesh equals the source mesh', () => {
    const from = grid(source.width, source.height, 6);
    const out = source.data.slice();
    warpPiecewiseAffine(source, from, from, delaunay(from), out);
    assert.deepEqual(out, source.data);
  });

  test('a shifted interior moves the pixels by the shift, exactly for whole pixels', () => {
    const from = grid(source.width, source.height, 8);
    const to = Float64Array.from(from);
    // Move every vertex at least one cell from the border by (3, 2) px: the cells between them translate.
    const inner: number[] = [];
    for (let i = 0; i < from.length / 2; i++) {
      const x = from[2 * i]!,
        y = from[2 * i + 1]!;
      if (x > 20 && x < 77 && y > 20 && y < 63) {
        to[2 * i] = x + 3;
        to[2 * i + 1] = y + 2;
        inner.push(i);
      }
    }
    assert.ok(inner.length >= 9);
    const out = source.data.slice();
    warpPiecewiseAffine(source, from, to, delaunay(from), out);
    // Inside the moved block (its cells translate rigidly), output (x, y) = source (x - 3, y - 2).
    for (let y = 40; y < 55; y++) {
      for (let x = 40; x < 65; x++) {
        for (let c = 0; c < 3; c++)
          assert.equal(
            out[(y * source.width + x) * 3 + c],
            source.data[((y - 2) * source.width + (x - 3)) * 3 + c],
            `(${x}, ${y})`,
          );
      }
    }
    // Pixels at the border stay exact copies.
    for (let x = 0; x < source.width; x++) assert.equal(out[x * 3], source.data[x * 3]);
  });

  test('a strong random deformation leaves no unwritten pixel (no holes between triangles)', () => {
    const next = random(11);
    const steps = 10;
    const from = grid(source.width, source.height, steps);
    const to = Float64Array.from(from);
    const cellX = source.width / steps;
    const cellY = source.height / steps;
    for (let j = 0; j <= steps; j++) {
      for (let i = 0; i <= steps; i++) {
        const k = j * (steps + 1) + i;
        // Up to 40% of a cell, so no triangle folds; border vertices slide along their edge only.
        const dx = (next() - 0.5) * 0.8 * cellX;
        const dy = (next() - 0.5) * 0.8 * cellY;
        if (i > 0 && i < steps) to[2 * k] = from[2 * k]! + dx;
        if (j > 0 && j < steps) to[2 * k + 1] = from[2 * k + 1]! + dy;
      }
    }
    const flat: RgbImage = {
      width: source.width,
      height: source.height,
      data: new Uint8Array(source.data.length).fill(200),
    };
    const out = new Uint8Array(source.data.length);
    warpPiecewiseAffine(flat, from, to, delaunay(from), out);
    const holes = out.reduce((n, v) => n + (v === 0 ? 1 : 0), 0);
    assert.equal(holes, 0, `${holes / 3} pixels were not written`);
    assert.ok(out.every((v) => v === 200));
  });
});

// CI builds the native warp (npm ci runs the install script) and sets REENACT_REQUIRE_NATIVE, so
// there this test runs; elsewhere it skips where no compiler built it.
const noNativeWarp = nativeWarp.module
  ? false
  : process.env.REENACT_REQUIRE_NATIVE
    ? false
    : `native warp unavailable: ${nativeWarp.reason}`;

describe('native warp', () => {
  test("writes the JavaScript loop's pixels, byte for byte", { skip: noNativeWarp }, () => {
    assert.ok(nativeWarp.module, nativeWarp.reason);
    const next = random(23);
    const [width, height] = [301, 217];
    const noise = noiseImage(width, height, next);
    const steps = 20;
    const from = grid(width, height, steps);
    const cell = width / steps;
    let compared = 0;
    for (const strength of [0.05, 0.6, 3]) {
      // Up to 3 cells: triangles fold and overlap, and vertices leave the image.
      const to = Float64Array.from(from, (v) => v + (next() - 0.5) * strength * cell);
      const triangles = delaunay(from);
      // A degenerate triangle (two corners at one point) and a sliver, and the order reversed:
      // which of two overlapping triangles is drawn last shows.
      const extra = Uint32Array.from([...triangles, 5, 5, 30, 7, 8, 9].reverse());
      for (const order of [triangles, extra]) {
        const js = noise.data.slice();
        const native = noise.data.slice();
        warpPiecewiseAffineInJs(noise, from, to, order, js);
        nativeWarp.module!.warp(noise.data, width, height, from, to, order, native);
        let differing = 0;
        for (let i = 0; i < js.length; i++) if (js[i] !== native[i]) differing++;
        assert.equal(differing, 0, `strength ${strength}: ${differing} values differ`);
        assert.ok(!js.every((v, i) => v === noise.data[i]), 'the warp moved pixels');
        // With layers: which triangle drew each pixel, 0 leaving the mask alone.
        const values = Uint8Array.from({ length: order.length / 3 }, () => Math.floor(next() * 3));
        const masks = [new Uint8Array(width * height), new Uint8Array(width * height)];
        warpPiecewiseAffineInJs(noise, from, to, order, js, { mask: masks[0]!, values });
        nativeWarp.module!.warp(noise.data, width, height, from, to, order, native, masks[1], values);
        assert.deepEqual(masks[1], masks[0], `strength ${strength}: the masks differ`);
        assert.ok(
          masks[0]!.some((v) => v === 2),
          'the mask was written',
        );
        compared++;
      }
    }
    assert.equal(compared, 6);
  });

  test(
    'a vertex that is not a finite number draws none of its triangles, in both loops',
    { skip: noNativeWarp },
    () => {
      const next = random(29);
      const [width, height] = [120, 90];
      const noise = noiseImage(width, height, next);
      const from = grid(width, height, 6);
      const triangles = delaunay(from);
      const moved = Float64Array.from(from, (v) => v + (next() - 0.5) * 8);
      // One target vertex NaN, one source vertex Infinity: before, the native loop indexed the
      // image with them and could crash the process.
      const bad = [moved.length / 2 + 4, 2 * 9];
      const to = moved.slice();
      to[bad[0]!] = NaN;
      const fromBad = from.slice();
      fromBad[bad[1]!] = Infinity;
      const js = noise.data.slice();
      const native = noise.data.slice();
      warpPiecewiseAffineInJs(noise, fromBad, to, triangles, js);
      nativeWarp.module!.warp(noise.data, width, height, fromBad, to, triangles, native);
      assert.deepEqual(native, js);
      // The rest is drawn as with finite vertices: triangles not touching the two are the same.
      const good = triangles.filter((_, k) => {
        const t = k - (k % 3);
        return ![0, 1, 2].some((c) => [bad[0]! >> 1, bad[1]! >> 1].includes(triangles[t + c]!));
      });
      const drawnAlone = noise.data.slice();
      warpPiecewiseAffineInJs(noise, from, moved, good, drawnAlone);
      assert.deepEqual(js, drawnAlone);
      assert.ok(!js.every((v, i) => v === noise.data[i]), 'the warp moved pixels');
    },
  );

  test('refuses arguments that do not fit, by name, instead of reading past them', { skip: noNativeWarp }, () => {
    const warp = nativeWarp.module!.warp;
    const image = new Uint8Array(4 * 4 * 3);
    const xy = grid(4, 4, 1);
    assert.throws(
      () => warp(image, 4, 4, xy, xy, Uint32Array.from([0, 1, 9]), image.slice()),
      /vertex that does not exist/,
    );
    assert.throws(() => warp(image, 5, 4, xy, xy, Uint32Array.from([0, 1, 2]), image.slice()), /width x height/);
    assert.throws(
      () => warp(image, 4, 4, xy, xy.subarray(2), Uint32Array.from([0, 1, 2]), image.slice()),
      /same x, y pairs/,
    );
    assert.throws(
      () => warp(image, 4, 4, Float32Array.from(xy) as never, xy, Uint32Array.from([0, 1, 2]), image.slice()),
      /from must be a Float64Array/,
    );
    const one = Uint32Array.from([0, 1, 2]);
    assert.throws(() => warp(image, 4, 4, xy, xy, one, image.slice(), new Uint8Array(15), Uint8Array.of(1)), /mask/);
    assert.throws(() => warp(image, 4, 4, xy, xy, one, image.slice(), new Uint8Array(16), new Uint8Array(0)), /values/);
  });
});

describe('One Euro filter', () => {
  test('smooths jitter at rest and follows a fast move with little lag', () => {
    const next = random(5);
    const filter = new OneEuroFilter(1, { minCutoff: 1.5, beta: 4, derivativeCutoff: 1 });
    const value = new Float64Array(1);
    let rawSpread = 0;
    let smoothSpread = 0;
    for (let i = 0; i < 60; i++) {
      const noise = (next() - 0.5) * 0.02;
      value[0] = 1 + noise;
      filter.filter(value, i / 30);
      if (i >= 30) {
        rawSpread += noise * noise;
        smoothSpread += (value[0] - 1) ** 2;
      }
    }
    assert.ok(smoothSpread < rawSpread / 4, `jitter ${smoothSpread} vs raw ${rawSpread}`);
    // A jump of half a face in one frame: within 4 frames the output has covered 90% of it.
    let reached = 0;
    for (let i = 60; i < 64; i++) {
      value[0] = 1.5;
      filter.filter(value, i / 30);
      reached = value[0];
    }
    assert.ok(reached > 1.45, `after 4 frames at 1.5 the output is ${reached}`);
  });
});

describe('head rotation as a rotation vector', () => {
  test('rotationFromVector undoes rotationVector, and a vector turns by its length about itself', () => {
    const next = random(11);
    for (let k = 0; k < 50; k++) {
      // Angles up to ~2.5 rad, a few near zero.
      const length = k < 5 ? k * 1e-7 : next() * 2.5;
      const axis = [next() - 0.5, next() - 0.5, next() - 0.5];
      const norm = Math.hypot(...axis);
      const w = axis.map((v) => (v / norm) * length) as [number, number, number];
      const R = rotationFromVector(...w);
      // Orthonormal with determinant 1.
      const det =
        R[0] * (R[4] * R[8] - R[5] * R[7]) - R[1] * (R[3] * R[8] - R[5] * R[6]) + R[2] * (R[3] * R[7] - R[4] * R[6]);
      assert.ok(Math.abs(det - 1) < 1e-12, `det ${det}`);
      // The axis stays put; the trace gives the angle.
      const Rw = [0, 1, 2].map((r) => R[3 * r]! * w[0] + R[3 * r + 1]! * w[1] + R[3 * r + 2]! * w[2]);
      for (let c = 0; c < 3; c++) assert.ok(Math.abs(Rw[c]! - w[c]!) < 1e-12);
      assert.ok(Math.abs(Math.acos(Math.min(1, (R[0] + R[4] + R[8] - 1) / 2)) - length) < 1e-6);
      const back = rotationVector(R);
      for (let c = 0; c < 3; c++) assert.ok(Math.abs(back[c]! - w[c]!) < 1e-7, `${back} vs ${w}`);
    }
  });
});
