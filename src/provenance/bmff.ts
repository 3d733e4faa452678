import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

/**
 * A C2PA manifest store inside an ISO BMFF file (MP4), per the C2PA specification's embedding of
 * manifests in BMFF: a top-level `uuid` box with the C2PA extended type, a FullBox (version 0,
 * flags 0), the purpose "manifest", a 64-bit Merkle offset (0: none) and the JUMBF store. It goes
 * right after `ftyp`; the chunk offsets in `moov` (stco/co64) move by its size. The hard binding
 * is `c2pa.hash.bmff.v2`: SHA-256 over every top-level box except the mandatory exclusions (the
 * C2PA box, `ftyp`, `mfra`), each box preceded by its file offset as 8 bytes big-endian.
 */
export const C2PA_BOX_UUID = Uint8Array.from([
  0xd8, 0xfe, 0xc3, 0xd6, 0x1b, 0x0e, 0x48, 0x3c, 0x92, 0x97, 0x58, 0x28, 0x87, 0x7e, 0xc4, 0x81,
]);
const PURPOSE = 'manifest';

export interface TopBox {
  type: string;
  offset: number;
  size: number;
  /** The 16-byte extended type of a `uuid` box, hex. */
  uuid?: string;
}

/** An exclusion of a c2pa.hash.bmff.v2 assertion, as far as reenact writes and reads them. */
export interface BmffExclusion {
  xpath: string;
  data?: { offset: number; value: Uint8Array }[];
}

/** The mandatory exclusions, as written into the assertion. */
export const BMFF_EXCLUSIONS: BmffExclusion[] = [
  { xpath: '/uuid', data: [{ offset: 8, value: C2PA_BOX_UUID }] },
  { xpath: '/ftyp' },
  { xpath: '/mfra' },
];

const C2PA_HEX = Buffer.from(C2PA_BOX_UUID).toString('hex');

/** Top-level boxes of a file; undefined when it is not a well-formed BMFF file starting with `ftyp`. */
export async function topLevelBoxes(file: FileHandle): Promise<TopBox[] | undefined> {
  const { size: length } = await file.stat();
  const boxes: TopBox[] = [];
  const header = Buffer.alloc(32);
  for (let offset = 0; offset < length;) {
    const { bytesRead } = await file.read(header, 0, 32, offset);
    if (bytesRead < 8) return undefined;
    let size = header.readUInt32BE(0);
    const type = header.toString('latin1', 4, 8);
    let headerSize = 8;
    if (size === 1) {
      if (bytesRead < 16) return undefined;
      size = Number(header.readBigUInt64BE(8));
      headerSize = 16;
    } else if (size === 0) size = length - offset;
    if (!/^[\x20-\x7e]{4}$/.test(type) || size < headerSize || offset + size > length) return undefined;
    const box: TopBox = { type, offset, size };
    if (type === 'uuid') {
      if (bytesRead < headerSize + 16 || size < headerSize + 16) return undefined;
      box.uuid = header.toString('hex', headerSize, headerSize + 16);
    }
    boxes.push(box);
    offset += size;
  }
  return boxes[0]?.type === 'ftyp' ? boxes : undefined;
}

function excluded(box: TopBox, exclusions: BmffExclusion[], head: Uint8Array): boolean {
  return exclusions.some((exclusion) => {
    if (exclusion.xpath !== `/${box.type}`) return false;
    return (exclusion.data ?? []).every(
      ({ offset, value }) =>
        Buffer.compare(Buffer.from(head.subarray(offset, offset + value.length)), Buffer.from(value)) === 0,
    );
  });
}

function offsetMarker(offset: number): Buffer {
  const marker = Buffer.alloc(8);
  marker.writeBigUInt64BE(BigInt(offset));
  return marker;
}

async function hashRange(hash: Hash, path: string, start: number, size: number): Promise<void> {
  if (size === 0) return;
  for await (const chunk of createReadStream(path, { start, end: start + size - 1, highWaterMark: 1 << 20 }))
    hash.update(chunk as Buffer);
}

/** Whether an exclusion list is one this reader understands: top-level paths, with at most `data` matches. */
export function readableExclusions(exclusions: BmffExclusion[]): boolean {
  return exclusions.every((exclusion) => /^\/[\x20-\x7e]{4}$/.test(exclusion.xpath));
}

/** The c2pa.hash.bmff.v2 hash of a file as it is on disk. */
export async function bmffHashOfFile(path: string, exclusions: BmffExclusion[]): Promise<Uint8Array> {
  const file = await open(path, 'r');
  try {
    const boxes = await topLevelBoxes(file);
    if (!boxes) throw new Error('not an ISO BMFF file');
    const hash = createHash('sha256');
    const head = Buffer.alloc(64);
    for (const box of boxes) {
      head.fill(0);
      await file.read(head, 0, Math.min(64, box.size), box.offset);
      if (excluded(box, exclusions, head)) continue;
      hash.update(offsetMarker(box.offset));
      await hashRange(hash, path, box.offset, box.size);
    }
    return new Uint8Array(hash.digest());
  } finally {
    await file.close();
  }
}

/** The C2PA box around a manifest store. */
export function c2paBox(store: Uint8Array): Uint8Array {
  const purpose = Buffer.from(`${PURPOSE}\0`, 'latin1');
  const size = 8 + 16 + 4 + purpose.length + 8 + store.length;
  const out = Buffer.alloc(size);
  out.writeUInt32BE(size, 0);
  out.write('uuid', 4, 'latin1');
  out.set(C2PA_BOX_UUID, 8);
  // version 0, flags 0 at 24..27
  purpose.copy(out, 28);
  // merkle offset 0 (8 bytes), then the store
  out.set(store, 28 + purpose.length + 8);
  return out;
}

/** The manifest store in a file's C2PA box: undefined when it has none (or is not BMFF). */
export async function readEmbeddedStore(path: string): Promise<{ store: Uint8Array; box: TopBox } | undefined> {
  let file: FileHandle;
  try {
    file = await open(path, 'r');
  } catch {
    return undefined;
  }
  try {
    const boxes = await topLevelBoxes(file);
    const box = boxes?.find((b) => b.type === 'uuid' && b.uuid === C2PA_HEX);
    if (!box) return undefined;
    const bytes = Buffer.alloc(box.size);
    await file.read(bytes, 0, box.size, box.offset);
    const headerSize = bytes.readUInt32BE(0) === 1 ? 16 : 8;
    const purposeStart = headerSize + 16 + 4;
    const purposeEnd = bytes.indexOf(0, purposeStart);
    if (purposeEnd < 0 || bytes.toString('latin1', purposeStart, purposeEnd) !== PURPOSE) return undefined;
    return { store: new Uint8Array(bytes.subarray(purposeEnd + 1 + 8)), box };
  } finally {
    await file.close();
  }
}

/** Container boxes on the way from `moov` to the chunk offset tables. */
const CONTAINERS = new Set(['moov', 'trak', 'mdia', 'minf', 'stbl']);

/** Adds `delta` to every chunk offset (stco, co64) in a `moov` box, in place. False when an offset would overflow 32 bits. */
function shiftChunkOffsets(moov: Buffer, delta: number): boolean {
  const walk = (start: number, end: number): boolean => {
    for (let at = start; at + 8 <= end;) {
      const size = moov.readUInt32BE(at);
      const type = moov.toString('latin1', at + 4, at + 8);
      if (size < 8 || at + size > end) return false;
      if (CONTAINERS.has(type)) {
        if (!walk(at + 8, at + size)) return false;
      } else if (type === 'stco' || type === 'co64') {
        const count = moov.readUInt32BE(at + 12);
        const width = type === 'stco' ? 4 : 8;
        if (16 + count * width > size) return false;
        for (let i = 0, o = at + 16; i < count; i++, o += width) {
          if (type === 'stco') {
            const value = moov.readUInt32BE(o) + delta;
            if (value > 0xffffffff) return false;
            moov.writeUInt32BE(value, o);
          } else moov.writeBigUInt64BE(moov.readBigUInt64BE(o) + BigInt(delta), o);
        }
      }
      at += size;
    }
    return true;
  };
  return walk(8, moov.length);
}

/**
 * A plan for embedding a C2PA box of `boxSize` bytes into an MP4: the boxes of the new file in
 * order (`moov` patched), so its hash can be computed before it is written. Undefined where
 * embedding is not possible here (not BMFF, fragmented, already has a C2PA box, offsets overflow).
 */
export interface EmbedPlan {
  source: string;
  ftyp: TopBox;
  /** Boxes after the C2PA box, with their new offsets; `bytes` replaces the source's bytes (the patched moov). */
  rest: { box: TopBox; newOffset: number; bytes?: Buffer }[];
  boxSize: number;
}

export async function planEmbedding(path: string, boxSize: number): Promise<EmbedPlan | undefined> {
  const file = await open(path, 'r');
  try {
    const boxes = await topLevelBoxes(file);
    if (!boxes) return undefined;
    if (boxes.some((b) => b.type === 'moof' || (b.type === 'uuid' && b.uuid === C2PA_HEX))) return undefined;
    const [ftyp, ...others] = boxes as [TopBox, ...TopBox[]];
    const moov = others.find((b) => b.type === 'moov');
    if (!moov || moov.size > 256 * 1024 * 1024) return undefined;
    const rest: EmbedPlan['rest'] = [];
    for (const box of others) {
      const entry: EmbedPlan['rest'][number] = { box, newOffset: box.offset + boxSize };
      if (box === moov) {
        const bytes = Buffer.alloc(box.size);
        await file.read(bytes, 0, box.size, box.offset);
        if (bytes.readUInt32BE(0) === 1 || !shiftChunkOffsets(bytes, boxSize)) return undefined;
        entry.bytes = bytes;
      }
      rest.push(entry);
    }
    return { source: path, ftyp, rest, boxSize };
  } finally {
    await file.close();
  }
}

/** The c2pa.hash.bmff.v2 hash the planned file will have (its excluded boxes: ftyp, the C2PA box, mfra). */
export async function bmffHashOfPlan(plan: EmbedPlan): Promise<Uint8Array> {
  const hash = createHash('sha256');
  for (const { box, newOffset, bytes } of plan.rest) {
    if (box.type === 'mfra') continue;
    hash.update(offsetMarker(newOffset));
    if (bytes) hash.update(bytes);
    else await hashRange(hash, plan.source, box.offset, box.size);
  }
  return new Uint8Array(hash.digest());
}

/** Writes the planned file to `target`: ftyp, the C2PA box, then the other boxes. */
export async function writePlan(plan: EmbedPlan, box: Uint8Array, target: string): Promise<void> {
  if (box.length !== plan.boxSize) throw new Error(`C2PA box is ${box.length} bytes, planned ${plan.boxSize}`);
  const source = await open(plan.source, 'r');
  const out = await open(target, 'w');
  try {
    const buffer = Buffer.alloc(1 << 20);
    let position = 0;
    const copy = async (start: number, size: number) => {
      for (let done = 0; done < size;) {
        const { bytesRead } = await source.read(buffer, 0, Math.min(buffer.length, size - done), start + done);
        if (bytesRead === 0) throw new Error(`${plan.source} changed while its credential was embedded`);
        await out.write(buffer, 0, bytesRead, position);
        position += bytesRead;
        done += bytesRead;
      }
    };
    await copy(plan.ftyp.offset, plan.ftyp.size);
    await out.write(box, 0, box.length, position);
    position += box.length;
    for (const { box: part, bytes } of plan.rest) {
      if (bytes) {
        await out.write(bytes, 0, bytes.length, position);
        position += bytes.length;
      } else await copy(part.offset, part.size);
    }
  } finally {
    await out.close();
    await source.close();
  }
}
