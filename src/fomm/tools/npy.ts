import { readFile, writeFile } from 'node:fs/promises';
import { ReenactError } from '../../errors.js';
import { writeAtomically } from '../../output.js';

/** A float32 array with its shape, as stored in a .npy file. */
export interface NpyArray {
  shape: number[];
  data: Float32Array;
}

const MAGIC = '\x93NUMPY';

/** Parses a little-endian float32 C-order .npy file (version 1, 2 or 3). */
export function parseNpy(bytes: Uint8Array, name = 'array'): NpyArray {
  const fail = (why: string) =>
    new ReenactError(
      'BAD_ARGUMENT',
      `${name} is not a float32 .npy file: ${why}.`,
      'Write it with numpy.save(path, array.astype(numpy.float32)).',
    );
  if (bytes.length < 10 || String.fromCharCode(...bytes.subarray(0, 6)) !== MAGIC) throw fail('no NUMPY magic');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = bytes[6]!;
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const headerStart = major === 1 ? 10 : 12;
  const header = new TextDecoder().decode(bytes.subarray(headerStart, headerStart + headerLength));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr !== '<f4') throw fail(`dtype ${descr ?? 'unknown'}`);
  if (fortran !== 'False') throw fail('Fortran order');
  if (shapeText === undefined) throw fail('no shape');
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const start = headerStart + headerLength;
  if (bytes.length - start < count * 4) throw fail('truncated data');
  const data = new Float32Array(count);
  new Uint8Array(data.buffer).set(bytes.subarray(start, start + count * 4));
  return { shape, data };
}

/** Serialises a float32 array as a version 1 .npy file. */
export function formatNpy(array: NpyArray): Uint8Array {
  const count = array.shape.reduce((a, b) => a * b, 1);
  if (count !== array.data.length)
    throw new Error(`npy: shape [${array.shape}] does not hold ${array.data.length} values`);
  const shape = array.shape.length === 1 ? `(${array.shape[0]},)` : `(${array.shape.join(', ')})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shape}, }`;
  const unpadded = 10 + header.length + 1;
  header += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + count * 4);
  out.set([0x93, ...new TextEncoder().encode('NUMPY'), 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(array.data.buffer, array.data.byteOffset, count * 4), 10 + header.length);
  return out;
}

export async function readNpy(path: string): Promise<NpyArray> {
  return parseNpy(new Uint8Array(await readFile(path)), path);
}

/** Writes a .npy file atomically. */
export async function writeNpy(path: string, array: NpyArray, options: { signal?: AbortSignal } = {}): Promise<void> {
  await writeAtomically(path, (temp) => writeFile(temp, formatNpy(array)), options.signal);
}
