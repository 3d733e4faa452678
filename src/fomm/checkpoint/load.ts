/**
 * Loads First Order Motion Model checkpoints written by torch.save, in both the legacy format
 * (a sequence of pickles followed by raw storages, PyTorch < 1.6, like the published vox-cpk.pth.tar)
 * and the zip format (PyTorch >= 1.6). The pickles go through the strict reader in pickle.ts, so
 * loading never runs code from the file. Only `generator` and `kp_detector` tensors are decoded.
 */
import { createHash } from 'node:crypto';
import { ReenactError } from '../../errors.js';
import { badCheckpoint } from './errors.js';
import type { FommWeights, StateDict, TensorData } from './tensors.js';
import { readInputFile } from '../../media/image.js';
import {
  ELEMENT_SIZE,
  STORAGE_CLASSES,
  isGlobal,
  isTensor,
  isTuple,
  readPickle,
  type PickleValue,
  type StorageDtype,
  type StorageRef,
  type TensorRef,
} from './pickle.js';
import { isZip, readZipEntries, readZipEntry, type ZipEntry } from './zip.js';

/** Reads and parses a checkpoint file (.pth.tar); any problem is a ReenactError. */
export async function loadCheckpoint(path: string): Promise<FommWeights> {
  const bytes = await readInputFile(
    path,
    'BAD_CHECKPOINT',
    'checkpoint',
    'Check that the file is readable and smaller than 2 GiB.',
  );
  try {
    return parseCheckpoint(bytes);
  } catch (error) {
    if (error instanceof ReenactError) {
      throw new ReenactError(error.code, `${path}: ${error.message}`, error.hint, { cause: error });
    }
    throw error;
  }
}

/** Parses checkpoint bytes already in memory (the tensors may be views into `bytes`). */
export function parseCheckpoint(bytes: Uint8Array): FommWeights {
  const parsed = isZip(bytes) ? parseZip(bytes) : parseLegacy(bytes);
  const top = parsed.root;
  if (!(top instanceof Map)) throw notFomm('its top-level object is not a dict');
  const stateDict = (key: string): StateDict => {
    const value = top.get(key);
    if (value === undefined)
      throw notFomm(
        `it has no "${key}" entry (keys: ${[...top.keys()].map(String).slice(0, 10).join(', ') || 'none'})`,
      );
    if (!(value instanceof Map)) throw notFomm(`its "${key}" entry is not a state dict`);
    const out: StateDict = new Map();
    for (const [name, tensor] of value) {
      if (typeof name !== 'string')
        throw bad(`The "${key}" state dict has a key that is not a string (${String(name)}).`);
      if (!isTensor(tensor)) throw bad(`"${key}.${name}" is not a tensor.`);
      out.set(name, materialize(tensor, parsed.storageBytes, `${key}.${name}`));
    }
    return out;
  };
  return {
    generator: stateDict('generator'),
    kpDetector: stateDict('kp_detector'),
    sha256: createHash('sha256').update(bytes).digest('hex'),
    format: parsed.format,
  };
}

interface ParsedContainer {
  format: 'legacy' | 'zip';
  root: PickleValue;
  /** The bytes of a root storage (already checked to hold its declared element count). */
  storageBytes: (key: string) => Uint8Array;
}

const bad = (message: string, cause?: unknown): ReenactError => badCheckpoint(message, cause);

function notFomm(why: string): ReenactError {
  return new ReenactError(
    'BAD_CHECKPOINT',
    `This does not look like a First Order Motion Model checkpoint: ${why}.`,
    'Use a checkpoint saved by the FOMM training code (e.g. vox-cpk.pth.tar or vox-adv-cpk.pth.tar), which holds "generator" and "kp_detector".',
  );
}

/** Storages named so far by persistent ids: element type and count per key. */
class StorageTable {
  readonly entries = new Map<string, { dtype: StorageDtype; numel: number }>();

  /** Interprets ('storage', StorageClass, key, location, numel[, view_metadata]). */
  load(pid: PickleValue, allowViews: boolean): StorageRef {
    if (!isTuple(pid) || pid.length < 5 || pid.length > 6 || pid[0] !== 'storage') {
      throw bad(
        'Checkpoint has a persistent id that is not a storage reference; only tensor storages may be referenced.',
      );
    }
    const [, type, key, location, numel, view] = pid;
    const dtype = isGlobal(type) && type.module === 'torch' ? STORAGE_CLASSES.get(type.name) : undefined;
    if (!dtype) throw bad('Checkpoint storage reference does not name a torch storage class.');
    if (typeof key !== 'string' || typeof location !== 'string')
      throw bad('Checkpoint storage reference has a malformed key or location.');
    if (typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0)
      throw bad(`Checkpoint storage ${key} has an invalid size.`);
    const known = this.entries.get(key);
    if (known && (known.dtype !== dtype || known.numel !== numel))
      throw bad(`Checkpoint storage ${key} is declared twice with different types or sizes.`);
    this.entries.set(key, { dtype, numel });
    if (view === undefined || view === null) return { kind: 'storage', dtype, key, numel, viewOffset: 0 };
    // Legacy (PyTorch < 0.4) storage views: (view_key, element offset, view size) into the root storage.
    if (!allowViews || !isTuple(view) || view.length !== 3)
      throw bad(`Checkpoint storage ${key} has malformed view metadata.`);
    const [, offset, size] = view;
    if (
      typeof offset !== 'number' ||
      typeof size !== 'number' ||
      !Number.isSafeInteger(offset) ||
      !Number.isSafeInteger(size) ||
      offset < 0 ||
      size < 0 ||
      offset + size > numel
    ) {
      throw bad(`Checkpoint storage view into ${key} lies outside its storage.`);
    }
    return { kind: 'storage', dtype, key, numel: size, viewOffset: offset };
  }
}

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;

function parseLegacy(bytes: Uint8Array): ParsedContainer {
  // A legacy file starts with a protocol-2 pickle of the magic number: PROTO 2, LONG1 of 10 bytes.
  if (bytes.length < 4 || bytes[0] !== 0x80 || bytes[1] !== 0x02 || bytes[2] !== 0x8a || bytes[3] !== 0x0a) {
    throw new ReenactError(
      'BAD_CHECKPOINT',
      'This file is not a PyTorch checkpoint (neither a zip archive nor the legacy pickle format).',
      'Pass the .pth.tar checkpoint of the First Order Motion Model (e.g. vox-cpk.pth.tar).',
    );
  }
  const noStorage = (): never => {
    throw bad('Checkpoint header refers to a tensor storage.');
  };
  const magic = readPickle(bytes, 0, noStorage);
  if (magic.value !== LEGACY_MAGIC) throw bad('Checkpoint has a wrong magic number for the legacy PyTorch format.');
  const protocol = readPickle(bytes, magic.end, noStorage);
  if (protocol.value !== LEGACY_PROTOCOL)
    throw bad(`Checkpoint uses legacy protocol version ${String(protocol.value)}; only ${LEGACY_PROTOCOL} is known.`);
  const sysInfo = readPickle(bytes, protocol.end, noStorage);
  if (!(sysInfo.value instanceof Map) || sysInfo.value.get('little_endian') !== true) {
    throw bad(
      'Checkpoint was written on a big-endian machine or has a malformed header; only little-endian checkpoints are read.',
    );
  }

  const storages = new StorageTable();
  const main = readPickle(bytes, sysInfo.end, (pid) => storages.load(pid, true));
  const keyList = readPickle(bytes, main.end, noStorage);
  if (!Array.isArray(keyList.value) || !keyList.value.every((k) => typeof k === 'string'))
    throw bad('Checkpoint storage key list is malformed.');

  // The raw storages follow in key-list order: int64 element count, then the elements.
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const located = new Map<string, Uint8Array>();
  let pos = keyList.end;
  for (const key of keyList.value as string[]) {
    const entry = storages.entries.get(key);
    if (!entry) throw bad(`Checkpoint lists storage ${key}, which no tensor uses.`);
    if (located.has(key)) throw bad(`Checkpoint lists storage ${key} twice.`);
    if (pos + 8 > bytes.length)
      throw bad(`Checkpoint is truncated: storage ${key} is missing (file ends at ${bytes.length} bytes).`);
    const count = view.getBigInt64(pos, true);
    if (count !== BigInt(entry.numel))
      throw bad(`Checkpoint storage ${key} holds ${count} elements, but its tensors declare ${entry.numel}.`);
    const length = entry.numel * ELEMENT_SIZE[entry.dtype];
    pos += 8;
    if (pos + length > bytes.length)
      throw bad(`Checkpoint is truncated: storage ${key} needs ${length} bytes, ${bytes.length - pos} are left.`);
    located.set(key, bytes.subarray(pos, pos + length));
    pos += length;
  }
  if (pos !== bytes.length) throw bad(`Checkpoint has ${bytes.length - pos} unexpected bytes after its last storage.`);
  for (const key of storages.entries.keys()) {
    if (!located.has(key)) throw bad(`Checkpoint storage ${key} is used by a tensor but missing from the file.`);
  }
  return { format: 'legacy', root: main.value, storageBytes: (key) => located.get(key)! };
}

function parseZip(bytes: Uint8Array): ParsedContainer {
  const entries = readZipEntries(bytes);
  const pickles = [...entries.keys()].filter((name) => /^[^/]+\/data\.pkl$/.test(name));
  const [pickleName] = pickles;
  const pickleEntry = pickleName === undefined ? undefined : entries.get(pickleName);
  if (pickles.length !== 1 || pickleName === undefined || !pickleEntry) {
    throw notFomm(`its zip archive has ${pickles.length} "<name>/data.pkl" entries instead of one`);
  }
  const prefix = pickleName.slice(0, -'data.pkl'.length);
  const byteorder = entries.get(`${prefix}byteorder`);
  if (byteorder) {
    const order = new TextDecoder().decode(readZipEntry(bytes, byteorder));
    if (order !== 'little')
      throw bad(`Checkpoint was written with byte order "${order}"; only little-endian checkpoints are read.`);
  }
  const storages = new StorageTable();
  const pickle = readZipEntry(bytes, pickleEntry);
  const main = readPickle(pickle, 0, (pid) => storages.load(pid, false));
  if (main.end !== pickle.length) throw bad('Checkpoint data.pkl has bytes after the end of its pickle.');

  const located = new Map<string, ZipEntry>();
  for (const [key, { dtype, numel }] of storages.entries) {
    const entry = entries.get(`${prefix}data/${key}`);
    if (!entry) throw bad(`Checkpoint zip archive has no entry ${prefix}data/${key}, which a tensor uses.`);
    const length = numel * ELEMENT_SIZE[dtype];
    if (entry.size !== length)
      throw bad(
        `Checkpoint storage ${key} holds ${entry.size} bytes, but its tensors declare ${numel} ${dtype} elements (${length} bytes).`,
      );
    located.set(key, entry);
  }
  // Deflated storages are inflated once, however many tensors share them.
  const inflated = new Map<string, Uint8Array>();
  const storageBytes = (key: string): Uint8Array => {
    let data = inflated.get(key);
    if (!data) inflated.set(key, (data = readZipEntry(bytes, located.get(key)!)));
    return data;
  };
  return { format: 'zip', root: main.value, storageBytes };
}

/** The largest element count one tensor may claim; beyond that a size field is corrupt. */
const MAX_TENSOR_ELEMENTS = 2 ** 31;

function materialize(tensor: TensorRef, storageBytes: (key: string) => Uint8Array, name: string): TensorData {
  const { storage, offset, shape, stride } = tensor;
  if (shape.length !== stride.length)
    throw bad(`Tensor ${name} has ${shape.length} sizes but ${stride.length} strides.`);
  let numel = 1;
  let last = offset;
  for (let i = 0; i < shape.length; i++) {
    numel *= shape[i]!;
    if (numel > MAX_TENSOR_ELEMENTS)
      throw bad(`Tensor ${name} claims ${shape.join('x')} elements, which no FOMM checkpoint holds.`);
    if (shape[i]! > 0) last += (shape[i]! - 1) * stride[i]!;
  }
  const dtype = outputDtype(storage.dtype);
  if (numel === 0) return { dtype, shape: [...shape], data: allocate(dtype, 0) };
  if (last >= storage.numel || numel > storage.numel) {
    throw bad(
      `Tensor ${name} (${shape.join('x')} at offset ${offset}, strides ${stride.join(',')}) reaches past its storage of ${storage.numel} elements.`,
    );
  }
  const bytes = storageBytes(storage.key);
  const size = ELEMENT_SIZE[storage.dtype];
  const first = (storage.viewOffset + offset) * size;
  const contiguous = isContiguous(shape, stride);
  const span = contiguous ? numel : last - offset + 1;
  const elements = decode(bytes.subarray(first, first + span * size), storage.dtype, span);
  return { dtype, shape: [...shape], data: contiguous ? elements : gather(elements, shape, stride, numel) };
}

function isContiguous(shape: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && stride[i] !== expected) return false;
    expected *= shape[i]!;
  }
  return true;
}

type Elements = TensorData['data'];

/** Row-major copy of a strided tensor whose elements start at index 0 of `source`. */
function gather(source: Elements, shape: readonly number[], stride: readonly number[], numel: number): Elements {
  const out = allocateLike(source, numel);
  const index = new Array<number>(shape.length).fill(0);
  let at = 0;
  for (let i = 0; i < numel; i++) {
    (out as Float32Array)[i] = (source as Float32Array)[at]!;
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++index[d]! < shape[d]!) {
        at += stride[d]!;
        break;
      }
      at -= (shape[d]! - 1) * stride[d]!;
      index[d] = 0;
    }
  }
  return out;
}

function outputDtype(dtype: StorageDtype): TensorData['dtype'] {
  switch (dtype) {
    case 'float32':
    case 'float64':
    case 'float16':
    case 'bfloat16':
      return 'float32';
    case 'int64':
      return 'int64';
    case 'int32':
    case 'int16':
    case 'int8':
      return 'int32';
    case 'uint8':
      return 'uint8';
    case 'bool':
      return 'bool';
  }
}

function allocate(dtype: TensorData['dtype'], length: number): Elements {
  switch (dtype) {
    case 'float32':
      return new Float32Array(length);
    case 'int64':
      return new BigInt64Array(length);
    case 'int32':
      return new Int32Array(length);
    case 'uint8':
    case 'bool':
      return new Uint8Array(length);
  }
}

function allocateLike(source: Elements, length: number): Elements {
  if (source instanceof Float32Array) return new Float32Array(length);
  if (source instanceof BigInt64Array) return new BigInt64Array(length);
  if (source instanceof Int32Array) return new Int32Array(length);
  return new Uint8Array(length);
}

/**
 * `count` little-endian elements as the output type: a view when the bytes are aligned for it
 * (no copy of a large file), else one copy. Assumes a little-endian host, as every Node target is.
 */
function decode(bytes: Uint8Array, dtype: StorageDtype, count: number): Elements {
  const typed = <T>(make: (buffer: ArrayBufferLike, offset: number, length: number) => T, size: number): T =>
    bytes.byteOffset % size === 0
      ? make(bytes.buffer, bytes.byteOffset, count)
      : make(new Uint8Array(bytes).buffer, 0, count);
  switch (dtype) {
    case 'float32':
      return typed((b, o, n) => new Float32Array(b, o, n), 4);
    case 'int64':
      return typed((b, o, n) => new BigInt64Array(b, o, n), 8);
    case 'int32':
      return typed((b, o, n) => new Int32Array(b, o, n), 4);
    case 'uint8':
    case 'bool':
      return bytes;
    case 'float64':
      return Float32Array.from(typed((b, o, n) => new Float64Array(b, o, n), 8));
    case 'int16':
      return Int32Array.from(typed((b, o, n) => new Int16Array(b, o, n), 2));
    case 'int8':
      return Int32Array.from(new Int8Array(bytes.buffer, bytes.byteOffset, count));
    case 'bfloat16': {
      const half = typed((b, o, n) => new Uint16Array(b, o, n), 2);
      const bits = new Uint32Array(count);
      for (let i = 0; i < count; i++) bits[i] = half[i]! << 16;
      return new Float32Array(bits.buffer);
    }
    case 'float16': {
      const half = typed((b, o, n) => new Uint16Array(b, o, n), 2);
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = halfToFloat(half[i]!);
      return out;
    }
  }
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}
