import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { Tensor } from '@tensorflow/tfjs-core';
import { tfjsGraphToOnnx } from './tfjs-onnx.js';

type TfCore = typeof import('@tensorflow/tfjs-core');

/** The three face models Human runs per detection, by the names its bundle is patched with. */
export type FaceModelName = 'blazeface' | 'facemesh' | 'iris';
const MODEL_NAMES: FaceModelName[] = ['blazeface', 'facemesh', 'iris'];

/** What Human's patched bundle calls in place of each tfjs model's `execute`. */
export type FaceModelRunner = Record<FaceModelName, (input: Tensor) => Promise<Tensor | Tensor[]>>;

/** Converted ONNX bytes per model file, once per process (about half a second for the three). */
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
  const run = (session: ort.InferenceSession) => async (input: Tensor) => {
    const data = input.dataSync() as Float32Array;
    const outputs = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', data, input.shape) });
    return session.outputNames.map((name) => {
      const output = outputs[name]!;
      return tf.tensor(output.data as Float32Array, output.dims as number[], 'float32');
    });
  };
  const [blazeface, facemesh, iris] = sessions.map(run) as [
    ReturnType<typeof run>,
    ReturnType<typeof run>,
    ReturnType<typeof run>,
  ];
  // Human reads the iris model's one output as a tensor, not a list.
  return { blazeface, facemesh, iris: async (input) => (await iris(input))[0]! };
}
