import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { Tensor } from '@tensorflow/tfjs-core';
import type { RgbImage } from '../types.js';
import { loadAddon, type Addon } from '../native/addon.js';
import { tfjsGraphToOnnx } from './tfjs-onnx.js';

type TfCore = typeof import('@tensorflow/tfjs-core');

/** The three face models Human runs per detection, by the names its bundle is patched with. */
export type FaceModelName = 'blazeface' | 'facemesh' | 'iris';
const MODEL_NAMES: FaceModelName[] = ['blazeface', 'facemesh', 'iris'];

/**
 * What Human's patched bundle calls in place of tfjs: each model's `execute`, and the crops of the
 * face and the eyes its models are fed. tfjs's wasm kernel took about 4 ms for a 192x192 crop of
 * a 640x480 frame, reading the frame back out of wasm as long, and where the face is tilted it
 * first turned the whole frame upright (rotateWithOffset: about a sixth of a live detection
 * thread's time). Here the face crop (`faceCrop`, `turnedCrop`) is taken from the pixels of the
 * frame being detected (`useFrame`), the eyes' crops from the face crop's own values (kept beside
 * its tensor), and a model's input is read from those values rather than back out of wasm.
 */
export type FaceModelRunner = Record<FaceModelName, (input: Tensor) => Promise<Tensor | Tensor[]>> & {
  /**
   * Human's crop of `box` ([y1, x1, y2, x2], fractions of the height and width) from `image`,
   * scaled to 0-1 (cropAndResize, then /255). Undefined where `image` is not the frame of
   * `useFrame` (Human then does it with tfjs).
   */
  faceCrop: (image: Tensor, box: Box, size: [number, number]) => Tensor | undefined;
  /**
   * Human's crop of `region` from `image` turned by `radians` about `center` (fractions of the
   * width and height), scaled to 0-1: rotateWithOffset with fill 0, then cropAndResize, then /255.
   * Undefined where `image` is not the frame of `useFrame` (Human then does it with tfjs).
   */
  turnedCrop: (
    image: Tensor,
    radians: number,
    center: [number, number],
    region: { startPoint: [number, number]; endPoint: [number, number] },
    size: [number, number],
  ) => Tensor | undefined;
  /** tf.image.cropAndResize; of a face crop above (the eyes), from its values kept in JS. */
  cropAndResize: (image: Tensor, boxes: number[][], boxIndices: number[], size: [number, number]) => Tensor;
  /** The tensor Human is given for `image` (its data, which Human's own input tensor shares). */
  useFrame: (input: Tensor | undefined, image?: RgbImage) => void;
};

/** An image's values in JS, 3 channels interleaved: a frame's pixels, or a crop's 0-1 values. */
interface Pixels {
  width: number;
  height: number;
  data: Uint8Array | Float32Array;
}

/** One model's run: its input tensor in, its outputs (in the session's order) out. */
type Run = (input: Tensor) => Promise<Tensor[]>;

/**
 * Converted ONNX bytes per model file, once per thread (a worker thread loads its own copy of
 * this module): about half a second for the three.
 */
const converted = new Map<string, Uint8Array>();

/**
 * Human's BlazeFace, Face Mesh and Iris graphs run by onnxruntime (its CPU kernels are about 7x
 * faster than tfjs's wasm ones for BlazeFace and 2x for the other two on one core); Human keeps
 * the image work around them (resizing, turning and cropping the face and eyes) and the decoding
 * of their outputs. One thread per session: several analyzers (landmark workers) run side by
 * side, and a fixed thread count keeps the results the same from run to run.
 */
export async function faceModelRunner(tf: TfCore, modelFolder: string): Promise<FaceModelRunner> {
  const sessions = await Promise.all(
    MODEL_NAMES.map(async (name) => {
      const file = join(modelFolder, `${name}.json`);
      let bytes = converted.get(file);
      if (!bytes) converted.set(file, (bytes = tfjsGraphToOnnx(file)));
      return ort.InferenceSession.create(bytes, {
        intraOpNumThreads: 1,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
      });
    }),
  );
  /** The values of the crops made here, by their tensors' data: read without a copy out of wasm. */
  const crops = new WeakMap<object, Float32Array>();
  const keep = (values: Float32Array, shape: [number, number, number, number]) => {
    const tensor = tf.tensor4d(values, shape, 'float32');
    crops.set(tensor.dataId, values);
    return tensor;
  };
  const run =
    (session: ort.InferenceSession): Run =>
    async (input) => {
      const data = crops.get(input.dataId) ?? (input.dataSync() as Float32Array);
      const outputs = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', data, input.shape) });
      return session.outputNames.map((name) => {
        const output = outputs[name]!;
        return tf.tensor(output.data as Float32Array, output.dims as number[], 'float32');
      });
    };
  const [blazeface, facemesh, iris] = sessions.map(run) as [Run, Run, Run];
  let frame: { dataId: object; image: RgbImage } | undefined;
  const isFrame = (image: Tensor) => !!frame && image.dataId === frame.dataId;
  /** A crop of the frame's pixels, scaled to 0-1 as Human's face crops are (its v5 divides by 255). */
  const frameCrop = (pixels: RgbImage, box: Box, [height, width]: [number, number], turn?: Turn) => {
    const out = new Float32Array(height * width * 3);
    cropBilinear(pixels, box, height, width, out, 255, turn);
    return keep(out, [1, height, width, 3]);
  };
  return {
    blazeface,
    facemesh,
    // Human reads the iris model's one output as a tensor, not a list.
    iris: async (input) => (await iris(input))[0]!,
    useFrame: (input, image) => {
      frame = input && image ? { dataId: input.dataId, image } : undefined;
    },
    faceCrop: (image, box, size) => (isFrame(image) ? frameCrop(frame!.image, box, size) : undefined),
    turnedCrop: (image, radians, [centerX, centerY], { startPoint, endPoint }, size) => {
      if (!isFrame(image)) return undefined;
      const { width: imageWidth, height: imageHeight } = frame!.image;
      // v5's box: the region in fractions of the (turned) image's height and width.
      const box: Box = [
        startPoint[1] / imageHeight,
        startPoint[0] / imageWidth,
        endPoint[1] / imageHeight,
        endPoint[0] / imageWidth,
      ];
      return frameCrop(frame!.image, box, size, turnedPixels(frame!.image, radians, centerX, centerY));
    },
    cropAndResize: (image, boxes, boxIndices, size) => {
      const values = crops.get(image.dataId);
      if (!values || image.shape.length !== 4 || image.shape[0] !== 1 || boxIndices.some((index) => index !== 0))
        return tf.image.cropAndResize(image as never, boxes, boxIndices, size);
      const source = { height: image.shape[1]!, width: image.shape[2]!, data: values };
      const [height, width] = size;
      const out = new Float32Array(boxes.length * height * width * 3);
      boxes.forEach((box, i) => {
        cropBilinear(
          source,
          box as Box,
          height,
          width,
          out.subarray(i * height * width * 3, (i + 1) * height * width * 3),
          1,
        );
      });
      return keep(out, [boxes.length, height, width, 3]);
    },
  };
}

/** A turn of an image about a point (see turnedPixels): its products by column and by row. */
export interface Turn {
  colCos: Float32Array;
  colSin: Float32Array;
  rowCos: Float32Array;
  rowSin: Float32Array;
  cx: number;
  cy: number;
}

/**
 * tfjs's rotateWithOffset (its wasm kernel of tfjs 4.22, in float32 as there): pixel (col, row)
 * of the turned image is the image's pixel nearest to (col, row) turned by `radians` about
 * (centerX, centerY) (those times the width and height), rounded half away from zero; outside
 * the image, 0. The products depend on the column or the row alone, so they are made once.
 */
export function turnedPixels({ width, height }: Pixels, radians: number, centerX: number, centerY: number): Turn {
  const f = Math.fround;
  const sin = f(Math.sin(radians));
  const cos = f(Math.cos(radians));
  const cx = f(width * centerX);
  const cy = f(height * centerY);
  const colCos = new Float32Array(width);
  const colSin = new Float32Array(width);
  for (let col = 0; col < width; col++) {
    colCos[col] = f(col - cx) * cos;
    colSin[col] = f(col - cx) * sin;
  }
  const rowCos = new Float32Array(height);
  const rowSin = new Float32Array(height);
  for (let row = 0; row < height; row++) {
    rowCos[row] = f(row - cy) * cos;
    rowSin[row] = f(row - cy) * sin;
  }
  return { colCos, colSin, rowCos, rowSin, cx, cy };
}

/** A crop box as tfjs gives it: [y1, x1, y2, x2], in units of the image's height and width. */
export type Box = [number, number, number, number];

/**
 * TensorFlow's crop_and_resize, bilinear: output row y samples the image at
 * y1·(H−1) + y·(y2−y1)·(H−1)/(h−1) (the box's middle when h is 1), likewise for columns, and
 * points outside the image read 0 (its extrapolation value). With `turned`, of the image turned
 * as that says (the same size, its corners filled with 0).
 * Each value is then divided by `divisor` (255 for a frame's pixels, 1 for a crop's values).
 */
function cropBilinear(
  pixels: Pixels,
  box: Box,
  height: number,
  width: number,
  out: Float32Array,
  divisor: number,
  turned?: Turn,
): void {
  const native = nativeCrop.module;
  if (!native) return cropBilinearInJs(pixels, box, height, width, out, divisor, turned);
  const turn = turned
    ? ([turned.colCos, turned.colSin, turned.rowCos, turned.rowSin, turned.cx, turned.cy] as const)
    : ([] as const);
  native.crop(pixels.data, pixels.width, pixels.height, Float64Array.from(box), height, width, out, divisor, ...turn);
}

/** cropBilinear's loop in JavaScript (native/crop.cc is its copy). */
export function cropBilinearInJs(
  { width: imageWidth, height: imageHeight, data: pixels }: Pixels,
  [y1, x1, y2, x2]: Box,
  height: number,
  width: number,
  out: Float32Array,
  divisor: number,
  turned?: Turn,
): void {
  const channels = 3;
  const yScale = height > 1 ? ((y2 - y1) * (imageHeight - 1)) / (height - 1) : 0;
  const xScale = width > 1 ? ((x2 - x1) * (imageWidth - 1)) / (width - 1) : 0;
  const rowStride = imageWidth * channels;
  const f = Math.fround;
  // Where pixel (row, col) of the (turned) image is in `pixels`, or -1 (outside: 0).
  const at = (row: number, col: number): number => {
    if (!turned) return row * rowStride + col * channels;
    const u = f(f(turned.colCos[col]! - turned.rowSin[row]!) + turned.cx);
    const v = f(f(turned.colSin[col]! + turned.rowCos[row]!) + turned.cy);
    const x = u < 0 ? -Math.floor(0.5 - u) : Math.floor(u + 0.5);
    const y = v < 0 ? -Math.floor(0.5 - v) : Math.floor(v + 0.5);
    return x >= 0 && x < imageWidth && y >= 0 && y < imageHeight ? y * rowStride + x * channels : -1;
  };
  // Each output column's two source columns and weight, the same on every row (-1: outside, 0).
  const lefts = new Int32Array(width);
  const rights = new Int32Array(width);
  const xLerps = new Float64Array(width);
  for (let x = 0; x < width; x++) {
    const inX = width > 1 ? x1 * (imageWidth - 1) + x * xScale : 0.5 * (x1 + x2) * (imageWidth - 1);
    const outside = inX < 0 || inX > imageWidth - 1;
    lefts[x] = outside ? -1 : Math.floor(inX);
    rights[x] = outside ? -1 : Math.ceil(inX);
    xLerps[x] = inX - Math.floor(inX);
  }
  for (let y = 0; y < height; y++) {
    const inY = height > 1 ? y1 * (imageHeight - 1) + y * yScale : 0.5 * (y1 + y2) * (imageHeight - 1);
    if (inY < 0 || inY > imageHeight - 1) continue; // stays 0
    const top = Math.floor(inY);
    const bottom = Math.ceil(inY);
    const yLerp = inY - top;
    for (let x = 0; x < width; x++) {
      const left = lefts[x]!;
      if (left < 0) continue;
      const right = rights[x]!;
      const xLerp = xLerps[x]!;
      const topLeftAt = at(top, left);
      const topRightAt = at(top, right);
      const bottomLeftAt = at(bottom, left);
      const bottomRightAt = at(bottom, right);
      const o = (y * width + x) * channels;
      for (let c = 0; c < channels; c++) {
        const topLeft = topLeftAt < 0 ? 0 : pixels[topLeftAt + c]!;
        const topRight = topRightAt < 0 ? 0 : pixels[topRightAt + c]!;
        const bottomLeft = bottomLeftAt < 0 ? 0 : pixels[bottomLeftAt + c]!;
        const bottomRight = bottomRightAt < 0 ? 0 : pixels[bottomRightAt + c]!;
        const upper = topLeft + (topRight - topLeft) * xLerp;
        const lower = bottomLeft + (bottomRight - bottomLeft) * xLerp;
        // Rounded to float32 (as stored in a crop) before the division, then again.
        out[o + c] = f(upper + (lower - upper) * yLerp) / divisor;
      }
    }
  }
}

interface NativeCrop {
  crop(
    pixels: Uint8Array | Float32Array,
    imageWidth: number,
    imageHeight: number,
    box: Float64Array,
    height: number,
    width: number,
    out: Float32Array,
    divisor: number,
    ...turn: [Float32Array, Float32Array, Float32Array, Float32Array, number, number] | []
  ): void;
}

/**
 * cropBilinear's loop in C++ (native/crop.cc, built by `npm install` where a compiler is present):
 * the same values, bit for bit, several times faster. Without it the JavaScript loop runs.
 */
export const nativeCrop: Addon<NativeCrop> = loadAddon('face_crop', 'the native face crop');
