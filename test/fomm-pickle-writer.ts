/**
 * Test helper: writes pickle opcodes and torch.save containers by hand (torch is not installed),
 * so tests can make well-formed and hostile checkpoints byte by byte.
 */
import { zipSync, type Zippable } from 'fflate';

export class PickleWriter {
  private readonly parts: number[] = [];

  op(...bytes: number[]): this {
    this.parts.push(...bytes);
    return this;
  }
  proto(version = 2): this {
    return this.op(0x80, version);
  }
  mark(): this {
    return this.op(0x28);
  }
  stop(): this {
    return this.op(0x2e);
  }
  none(): this {
    return this.op(0x4e);
  }
  bool(value: boolean): this {
    return this.op(value ? 0x88 : 0x89);
  }
  emptyDict(): this {
    return this.op(0x7d);
  }
  emptyTuple(): this {
    return this.op(0x29);
  }
  tuple(): this {
    return this.op(0x74);
  }
  setItems(): this {
    return this.op(0x75);
  }
  reduce(): this {
    return this.op(0x52);
  }
  binpersid(): this {
    return this.op(0x51);
  }

  int(value: number): this {
    const b = new DataView(new ArrayBuffer(4));
    b.setInt32(0, value, true);
    return this.op(0x4a, ...new Uint8Array(b.buffer));
  }

  long(value: bigint): this {
    const bytes: number[] = [];
    let v = value;
    while (v !== 0n && v !== -1n) {
      bytes.push(Number(v & 0xffn));
      v >>= 8n;
    }
    if (bytes.length === 0 || (value > 0n && bytes[bytes.length - 1]! & 0x80)) bytes.push(0);
    return this.op(0x8a, bytes.length, ...bytes);
  }

  str(value: string): this {
    const utf8 = new TextEncoder().encode(value);
    return this.op(
      0x58,
      utf8.length & 0xff,
      (utf8.length >> 8) & 0xff,
      (utf8.length >> 16) & 0xff,
      utf8.length >>> 24,
      ...utf8,
    );
  }

  global(module: string, name: string): this {
    return this.op(0x63, ...new TextEncoder().encode(`${module}\n${name}\n`));
  }

  /** A tuple of ints, as sizes and strides are pickled. */
  ints(values: number[]): this {
    this.mark();
    for (const v of values) this.int(v);
    return this.tuple();
  }

  /** torch._utils._rebuild_tensor_v2(persistent storage, offset, size, stride, False, OrderedDict()). */
  tensor(
    storageClass: string,
    key: string,
    numel: number,
    offset: number,
    size: number[],
    stride: number[],
    legacyPid = true,
  ): this {
    this.global('torch._utils', '_rebuild_tensor_v2').mark();
    this.mark().str('storage').global('torch', storageClass).str(key).str('cpu').int(numel);
    if (legacyPid) this.none();
    this.tuple().binpersid();
    this.int(offset).ints(size).ints(stride).bool(false).global('collections', 'OrderedDict').emptyTuple().reduce();
    return this.tuple().reduce();
  }

  bytes(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

export const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;

export interface RawStorage {
  key: string;
  elementSize: number;
  data: Uint8Array;
}

/** A legacy (pre-1.6) torch.save file: magic, protocol, sys_info, main pickle, key list, storages. */
export function legacyFile(main: Uint8Array, storages: RawStorage[], magic = LEGACY_MAGIC): Uint8Array {
  const header = new PickleWriter()
    .proto()
    .long(magic)
    .stop()
    .proto()
    .int(1001)
    .stop()
    .proto()
    .emptyDict()
    .mark()
    .str('protocol_version')
    .int(1001)
    .str('little_endian')
    .bool(true)
    .setItems()
    .stop()
    .bytes();
  const keys = new PickleWriter().proto().op(0x5d).mark();
  for (const s of storages) keys.str(s.key);
  keys.op(0x65).stop();
  const chunks: Uint8Array[] = [header, main, keys.bytes()];
  for (const s of storages) {
    const count = new DataView(new ArrayBuffer(8));
    count.setBigInt64(0, BigInt(s.data.length / s.elementSize), true);
    chunks.push(new Uint8Array(count.buffer), s.data);
  }
  return concat(chunks);
}

/** A zip-format (PyTorch >= 1.6) file: archive/data.pkl plus archive/data/<key> entries, stored. */
export function zipFile(main: Uint8Array, storages: RawStorage[], name = 'archive'): Uint8Array {
  const files: Zippable = {
    [`${name}/data.pkl`]: [main, { level: 0 }],
    [`${name}/version`]: [new TextEncoder().encode('3\n'), { level: 0 }],
  };
  for (const s of storages) files[`${name}/data/${s.key}`] = [s.data, { level: 0 }];
  return zipSync(files);
}

export function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

export function float32Bytes(values: number[]): Uint8Array {
  return new Uint8Array(Float32Array.from(values).buffer);
}

/**
 * A minimal FOMM-shaped main pickle: {'generator': OrderedDict(entries), 'kp_detector': OrderedDict(entries)}
 * where `entries` writes key/tensor pairs (called once per state dict).
 */
export function checkpointPickle(
  entries: (w: PickleWriter) => void,
  topKeys: string[] = ['generator', 'kp_detector'],
): Uint8Array {
  const w = new PickleWriter().proto().emptyDict().mark();
  for (const key of topKeys) {
    w.str(key).global('collections', 'OrderedDict').emptyTuple().reduce().mark();
    entries(w);
    w.setItems();
  }
  return w.setItems().stop().bytes();
}
