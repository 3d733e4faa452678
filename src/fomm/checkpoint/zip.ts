/**
 * A small strict zip reader for PyTorch's checkpoint archives: it lists the central directory
 * (ZIP64 included) and hands out entry bytes, STORED as views into the file, DEFLATE via fflate.
 * Every offset and size is checked against the file before it is used, and every entry's bytes
 * against the CRC-32 its directory entry records (a flipped bit in a stored tensor would
 * otherwise load as a silently wrong weight).
 */
import { crc32 } from 'node:zlib';
import { inflateSync } from 'fflate';
import type { ReenactError } from '../../errors.js';
import { badCheckpoint } from './errors.js';

export interface ZipEntry {
  readonly name: string;
  readonly method: number;
  readonly compressedSize: number;
  readonly size: number;
  /** CRC-32 of the uncompressed bytes, from the central directory. */
  readonly crc: number;
  /** Offset of the entry's data (after its local header) in the archive. */
  readonly dataOffset: number;
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;

const bad = (message: string, cause?: unknown): ReenactError =>
  badCheckpoint(`Checkpoint zip archive is damaged: ${message}`, cause);

export function isZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
}

/** The archive's entries by name. */
export function readZipEntries(bytes: Uint8Array): Map<string, ZipEntry> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u16 = (at: number): number => view.getUint16(at, true);
  const u32 = (at: number): number => view.getUint32(at, true);
  const u64 = (at: number): number => {
    const v = view.getBigUint64(at, true);
    if (v > BigInt(bytes.length)) throw bad(`a ZIP64 field (${v}) exceeds the file size.`);
    return Number(v);
  };
  const within = (at: number, length: number, what: string): void => {
    if (at < 0 || length < 0 || at + length > bytes.length)
      throw bad(`${what} lies outside the file (offset ${at}, ${length} bytes, file ${bytes.length}).`);
  };

  // The end-of-central-directory record sits in the last 22 + 65535 (comment) bytes.
  let eocd = -1;
  for (let at = bytes.length - 22; at >= Math.max(0, bytes.length - 22 - 65535); at--) {
    if (u32(at) === EOCD) {
      eocd = at;
      break;
    }
  }
  if (eocd < 0) throw bad('no end-of-central-directory record (the file is probably truncated).');
  let entryCount = u16(eocd + 10);
  let directorySize = u32(eocd + 12);
  let directoryOffset = u32(eocd + 16);
  if (entryCount === 0xffff || directorySize === 0xffffffff || directoryOffset === 0xffffffff) {
    const locator = eocd - 20;
    within(locator, 20, 'the ZIP64 locator');
    if (u32(locator) !== ZIP64_LOCATOR) throw bad('the ZIP64 locator is missing.');
    const record = u64(locator + 8);
    within(record, 56, 'the ZIP64 directory record');
    if (u32(record) !== ZIP64_EOCD) throw bad('the ZIP64 directory record is missing.');
    entryCount = u64(record + 32);
    directorySize = u64(record + 40);
    directoryOffset = u64(record + 48);
  }
  within(directoryOffset, directorySize, 'the central directory');
  if (entryCount * 46 > directorySize) throw bad(`the central directory is too small for ${entryCount} entries.`);

  const entries = new Map<string, ZipEntry>();
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let at = directoryOffset;
  for (let i = 0; i < entryCount; i++) {
    within(at, 46, 'a central directory entry');
    if (u32(at) !== CENTRAL) throw bad(`central directory entry ${i} has a wrong signature.`);
    const flags = u16(at + 8);
    const method = u16(at + 10);
    const crc = u32(at + 16);
    let compressedSize = u32(at + 20);
    let size = u32(at + 24);
    const nameLength = u16(at + 28);
    const extraLength = u16(at + 30);
    const commentLength = u16(at + 32);
    let localOffset = u32(at + 42);
    within(at + 46, nameLength + extraLength + commentLength, 'a central directory entry');
    let name: string;
    try {
      name = decoder.decode(bytes.subarray(at + 46, at + 46 + nameLength));
    } catch (cause) {
      throw bad(`entry ${i} has a name that is not UTF-8.`, cause);
    }
    // ZIP64 extra field: the 64-bit values, in this order, for each 32-bit field that is saturated.
    let extra = at + 46 + nameLength;
    const extraEnd = extra + extraLength;
    while (extra + 4 <= extraEnd) {
      const id = u16(extra);
      const length = u16(extra + 2);
      if (extra + 4 + length > extraEnd) throw bad(`entry ${name} has a malformed extra field.`);
      if (id === 0x0001) {
        let field = extra + 4;
        const next = (): number => {
          if (field + 8 > extra + 4 + length) throw bad(`entry ${name} has a short ZIP64 field.`);
          const v = u64(field);
          field += 8;
          return v;
        };
        if (size === 0xffffffff) size = next();
        if (compressedSize === 0xffffffff) compressedSize = next();
        if (localOffset === 0xffffffff) localOffset = next();
      }
      extra += 4 + length;
    }
    if (flags & 0x1) throw bad(`entry ${name} is encrypted.`);
    if (method !== 0 && method !== 8)
      throw bad(`entry ${name} uses compression method ${method} (only stored and deflate are read).`);
    if (method === 0 && compressedSize !== size)
      throw bad(`stored entry ${name} has different compressed and uncompressed sizes.`);
    // DEFLATE expands at most ~1032:1; a larger claim is a corrupt header or a decompression bomb.
    if (method === 8 && size > compressedSize * 1032 + 64)
      throw bad(`entry ${name} claims to inflate ${compressedSize} bytes to ${size}.`);
    within(localOffset, 30, `the local header of ${name}`);
    if (u32(localOffset) !== LOCAL) throw bad(`the local header of ${name} has a wrong signature.`);
    const dataOffset = localOffset + 30 + u16(localOffset + 26) + u16(localOffset + 28);
    within(dataOffset, compressedSize, `the data of ${name}`);
    if (entries.has(name)) throw bad(`entry ${name} appears twice.`);
    entries.set(name, { name, method, compressedSize, size, crc, dataOffset });
    at += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

/** An entry's bytes, checked against its CRC-32: a view into the archive when stored, a fresh buffer when deflated. */
export function readZipEntry(bytes: Uint8Array, entry: ZipEntry): Uint8Array {
  const out = entryBytes(bytes, entry);
  const actual = crc32(out) >>> 0;
  if (actual !== entry.crc) {
    throw bad(`entry ${entry.name} fails its CRC-32 check (${hex(actual)}, the archive records ${hex(entry.crc)}).`);
  }
  return out;
}

function hex(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`;
}

function entryBytes(bytes: Uint8Array, entry: ZipEntry): Uint8Array {
  const raw = bytes.subarray(entry.dataOffset, entry.dataOffset + entry.compressedSize);
  if (entry.method === 0) return raw;
  // A preallocated output caps what a hostile stream can expand to.
  let out: Uint8Array;
  try {
    out = inflateSync(raw, { out: new Uint8Array(entry.size) });
  } catch (cause) {
    throw bad(`entry ${entry.name} does not inflate (${(cause as Error).message}).`, cause);
  }
  if (out.length !== entry.size)
    throw bad(`entry ${entry.name} inflates to ${out.length} bytes, not the ${entry.size} its header declares.`);
  return out;
}
