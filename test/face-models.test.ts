import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { cropBilinearInJs, faceModelRunner, nativeCrop, turnedPixels, type Box } from '../src/face/face-models.js';
import { tfjsGraphToOnnx } from '../src/face/tfjs-onnx.js';

const require = createRequire(import.meta.url);
const tf = require('@tensorflow/tfjs-core') as typeof import('@tensorflow/tfjs-core');
const converter = require('@tensorflow/tfjs-converter') as typeof import('@tensorflow/tfjs-converter');
const wasm = require('@tensorflow/tfjs-backend-wasm') as typeof import('@tensorflow/tfjs-backend-wasm');
const modelFolder = join(dirname(require.resolve('@vladmandic/human')), '..', 'models');

/** The tfjs graph model from Human's folder, loaded as Human loads it (without fetch). */
async function loadTfjs(file: string) {
  const { readFile } = await import('node:fs/promises');
  const json = JSON.parse(await readFile(file, 'utf8')) as {
    modelTopology: object;
    weightsManifest: { paths: string[]; weights: import('@tensorflow/tfjs-core').io.WeightsManifestEntry[] }[];
  };
  const weights = Buffer.concat(
    await Promise.all(json.weightsManifest.flatMap((g) => g.paths.map((p) => readFile(join(dirname(file), p))))),
  );
  return converter.loadGraphModel({
    load: async () => ({
      modelTopology: json.modelTopology,
      weightSpecs: json.weightsManifest.flatMap((g) => g.weights),
      weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength),
    }),
  });
}

/** Uniform values in [-1, 1] (the models' input range), from a fixed seed. */
function noise(length: number): Float32Array {
  const data = new Float32Array(length);
  let seed = 12345;
  for (let i = 0; i < length; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    data[i] = (seed / 2 ** 32) * 2 - 1;
  }
  return data;
}

describe('face models converted to ONNX', () => {
  const cases = [
    { name: 'blazeface', size: 256, batch: 1 },
    { name: 'facemesh', size: 192, batch: 1 },
    { name: 'iris', size: 64, batch: 2 },
  ];
  for (const { name, size, batch } of cases) {
    it(`${name}: onnxruntime gives the tfjs graph's outputs on the same input`, async () => {
      wasm.setWasmPaths(join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm')), '/'));
      await tf.setBackend('wasm');
      const file = join(modelFolder, `${name}.json`);
      const model = await loadTfjs(file);
      const session = await ort.InferenceSession.create(tfjsGraphToOnnx(file), { intraOpNumThreads: 1 });
      const shape = [batch, size, size, 3];
      const input = noise(shape.reduce((a, b) => a * b, 1));
      const executed = model.execute(tf.tensor(input, shape)) as import('@tensorflow/tfjs-core').Tensor[];
      const expected = (Array.isArray(executed) ? executed : [executed]).map((t) => ({
        shape: t.shape,
        data: t.dataSync() as Float32Array,
      }));
      const outputs = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', input, shape) });
      const actual = session.outputNames.map((output) => outputs[output]!);
      assert.equal(actual.length, expected.length, 'as many outputs as the tfjs graph');
      let largestOfAll = 0;
      for (const want of expected) {
        // Outputs are matched by shape (tfjs lists them in its own order); every shape is distinct.
        const got = actual.find((t) => t.dims.join() === want.shape.join());
        assert.ok(got, `an output of shape [${want.shape.join(', ')}]`);
        const data = got.data as Float32Array;
        let largest = 0;
        let worst = 0;
        for (let i = 0; i < want.data.length; i++) {
          largest = Math.max(largest, Math.abs(want.data[i]!));
          worst = Math.max(worst, Math.abs(data[i]! - want.data[i]!));
        }
        // Float rounding differs between the two runtimes' kernels; a wrong padding, layout or
        // weight order moves outputs by a good fraction of their range.
        assert.ok(worst <= 1e-5 * Math.max(largest, 1), `[${want.shape.join(', ')}]: off by ${worst} of ${largest}`);
        largestOfAll = Math.max(largestOfAll, largest);
      }
      assert.ok(largestOfAll > 1, 'the outputs are not all but zero');
      await session.release();
      model.dispose();
    });
  }

  it("crops the face and the eyes within it as tfjs's cropAndResize does, inside and across the edges", async () => {
    wasm.setWasmPaths(join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm')), '/'));
    await tf.setBackend('wasm');
    const runner = await faceModelRunner(tf, modelFolder);
    const [height, width] = [48, 64];
    const pixels = Uint8Array.from(noise(height * width * 3), (v) => Math.round((v + 1) * 127.5));
    const boxes: Box[] = [
      [0.1, 0.2, 0.7, 0.9], // inside
      [-0.2, 0.5, 0.6, 1.3], // across the top and right edges: those samples read 0
      [0.3, 0.6, 0.3, 0.6], // a single point (both sizes 1 below)
      [0.8, 0.9, 0.2, 0.1], // upside down and mirrored
    ];
    // As the detector hands a frame to Human: float32, 4-D, the frame's pixels given with it.
    const frame = tf.tensor4d(new Float32Array(pixels), [1, height, width, 3], 'float32');
    runner.useFrame(frame, { width, height, data: pixels });
    const worstOf = (got: ArrayLike<number>, want: ArrayLike<number>) => {
      assert.equal(got.length, want.length);
      let worst = 0;
      for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
      return worst;
    };
    for (const size of [
      [17, 23],
      [1, 1],
      [64, 64],
    ] as [number, number][]) {
      for (const box of boxes) {
        const want = tf.div(tf.image.cropAndResize(frame, [box], [0], size), 255).dataSync();
        // A reshape shares the frame's data, as Human's own 4-D view of its input does.
        const face = runner.faceCrop(tf.reshape(frame, frame.shape), box, size)!;
        // Float rounding only (1e-5 of the 0-1 range); a half-pixel slip moves samples by a tenth.
        const worst = worstOf(face.dataSync(), want);
        assert.ok(worst <= 1e-5, `face ${size.join('x')} of ${box.join(', ')}: off by ${worst}`);
        // The eyes are cropped from the face crop (two boxes at once, as Human's iris model takes them).
        const eyes = [boxes[0]!, boxes[3]!];
        const wantEyes = tf.image.cropAndResize(face as never, eyes, [0, 0], [9, 13]).dataSync();
        const eyesWorst = worstOf(runner.cropAndResize(face, eyes, [0, 0], [9, 13]).dataSync(), wantEyes);
        assert.ok(eyesWorst <= 1e-5, `eyes of face ${size.join('x')}: off by ${eyesWorst}`);
      }
    }
    // The face crop was the runner's own, from the pixels it was given (tfjs's would not change).
    runner.useFrame(frame, { width, height, data: pixels.map((v) => 255 - v) });
    const inverted = runner.faceCrop(tf.reshape(frame, frame.shape), boxes[0]!, [8, 8])!.dataSync();
    const plain = tf.image.cropAndResize(frame, [boxes[0]!], [0], [8, 8]).dataSync();
    assert.ok(
      inverted.every((v, i) => Math.abs(v * 255 + plain[i]! - 255) < 1e-3),
      'the crop reads the frame given to useFrame',
    );
    // A tensor that is not the frame is left to tfjs.
    assert.equal(runner.faceCrop(tf.add(frame, 0), boxes[0]!, [8, 8]), undefined);
    runner.useFrame(undefined);
    frame.dispose();
  });

  it("turns and crops a tilted face as tfjs's rotateWithOffset and cropAndResize do", async () => {
    wasm.setWasmPaths(join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm')), '/'));
    await tf.setBackend('wasm');
    const runner = await faceModelRunner(tf, modelFolder);
    const [height, width] = [60, 80];
    const pixels = Uint8Array.from(noise(height * width * 3), (v) => Math.round((v + 1) * 127.5));
    const frame = tf.tensor4d(new Float32Array(pixels), [1, height, width, 3], 'float32');
    runner.useFrame(frame, { width, height, data: pixels });
    const regions = [
      { startPoint: [20, 10], endPoint: [60, 50] }, // inside
      { startPoint: [-15, 30], endPoint: [45, 90] }, // across the left and bottom edges
    ] as { startPoint: [number, number]; endPoint: [number, number] }[];
    let compared = 0;
    for (const radians of [0.25, -0.6, 1.3, -2.9]) {
      for (const center of [
        [0.5, 0.5],
        [0.31, 0.62],
      ] as [number, number][]) {
        for (const region of regions) {
          const size: [number, number] = [33, 33];
          const turned = tf.image.rotateWithOffset(frame, radians, 0, center);
          const box = [
            region.startPoint[1] / height,
            region.startPoint[0] / width,
            region.endPoint[1] / height,
            region.endPoint[0] / width,
          ];
          const want = tf.div(tf.image.cropAndResize(turned, [box], [0], size), 255).dataSync();
          const got = runner.turnedCrop(tf.reshape(frame, frame.shape), radians, center, region, size)!.dataSync();
          assert.equal(got.length, want.length);
          let worst = 0;
          for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
          // Float rounding only; a pixel's nearest neighbour taken on the other side of a half, or
          // the turn's sign or centre wrong, moves samples by a good part of the 0-1 range.
          assert.ok(worst <= 1e-5, `${radians} rad about ${center.join(', ')}: off by ${worst}`);
          compared++;
          turned.dispose();
        }
      }
    }
    assert.equal(compared, 16);
    // A tensor that is not the frame (a copy of it elsewhere) is left to tfjs.
    const other = tf.add(frame, 0);
    assert.equal(runner.turnedCrop(other, 0.3, [0.5, 0.5], regions[0]!, [8, 8]), undefined);
    other.dispose();
    runner.useFrame(undefined);
    frame.dispose();
  });

  it('refuses a graph with an operator it does not know, by name', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'reenact-tfjs-onnx-'));
    try {
      const file = join(dir, 'model.json');
      await writeFile(
        file,
        JSON.stringify({
          modelTopology: {
            node: [
              {
                name: 'input',
                op: 'Placeholder',
                attr: { shape: { shape: { dim: [1, 8, 8, 3].map(String).map((size) => ({ size })) } } },
              },
              { name: 'soft', op: 'Softmax', input: ['input'] },
            ],
          },
          weightsManifest: [],
        }),
      );
      assert.throws(() => tfjsGraphToOnnx(file), /operator Softmax \(soft\) is not supported/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

// CI builds the native crop (npm ci runs the install script) and sets REENACT_REQUIRE_NATIVE, so
// there this test runs; elsewhere it skips where no compiler built it.
const noNativeCrop = nativeCrop.module
  ? false
  : process.env.REENACT_REQUIRE_NATIVE
    ? false
    : `native face crop unavailable: ${nativeCrop.reason}`;

describe('native face crop', () => {
  it(
    "gives the JavaScript loop's values, bit for bit: of a frame, turned or not, and of a crop's values",
    { skip: noNativeCrop },
    () => {
      assert.ok(nativeCrop.module, nativeCrop.reason);
      const [height, width] = [61, 83];
      const bytes = Uint8Array.from(noise(height * width * 3), (v) => Math.round((v + 1) * 127.5));
      const values = noise(height * width * 3);
      const boxes: Box[] = [
        [0.2, 0.1, 0.7, 0.6], // inside
        [-0.25, 0.3, 0.9, 1.2], // across the edges
        [0.4, 0.5, 0.4, 0.5], // a point
      ];
      let compared = 0;
      for (const [data, divisor] of [
        [bytes, 255],
        [values, 1],
      ] as const) {
        const image = { width, height, data };
        for (const turn of [undefined, turnedPixels(image, 0.37, 0.5, 0.5), turnedPixels(image, -2.6, 0.3, 0.7)]) {
          for (const box of boxes) {
            for (const size of [
              [33, 40],
              [1, 1],
            ] as const) {
              const js = new Float32Array(size[0] * size[1] * 3);
              const native = js.slice();
              cropBilinearInJs(image, box, size[0], size[1], js, divisor, turn);
              nativeCrop.module!.crop(
                data,
                width,
                height,
                Float64Array.from(box),
                size[0],
                size[1],
                native,
                divisor,
                ...(turn
                  ? ([turn.colCos, turn.colSin, turn.rowCos, turn.rowSin, turn.cx, turn.cy] as const)
                  : ([] as const)),
              );
              const differing = js.filter((v, i) => !Object.is(v, native[i])).length;
              assert.equal(differing, 0, `box ${box.join(',')} size ${size.join('x')}: ${differing} values differ`);
              compared++;
            }
          }
        }
      }
      assert.equal(compared, 36);
    },
  );

  it('refuses arguments that do not fit, by name, instead of reading past them', { skip: noNativeCrop }, () => {
    const crop = nativeCrop.module!.crop;
    const pixels = new Uint8Array(4 * 4 * 3);
    const box = Float64Array.of(0, 0, 1, 1);
    assert.throws(() => crop(pixels, 5, 4, box, 2, 2, new Float32Array(12), 255), /imageWidth x imageHeight/);
    assert.throws(() => crop(pixels, 4, 4, box, 2, 2, new Float32Array(11), 255), /width x height/);
    assert.throws(() => crop(pixels, 4, 4, box.subarray(1), 2, 2, new Float32Array(12), 255), /y1, x1, y2, x2/);
    assert.throws(
      () => crop(pixels, 4, 4, Float64Array.of(0, Number.NaN, 1, 1), 2, 2, new Float32Array(12), 255),
      /finite/,
    );
    const line = new Float32Array(4);
    assert.throws(
      () => crop(pixels, 4, 4, box, 2, 2, new Float32Array(12), 255, line, line, line.subarray(1), line, 2, 2),
      /per column and per row/,
    );
    assert.throws(
      () => crop(Array.from(pixels) as never, 4, 4, box, 2, 2, new Float32Array(12), 255),
      /Uint8Array or Float32Array/,
    );
  });
});
