/**
 * The CBOR (RFC 8949) subset C2PA manifests use: integers, byte and text strings, arrays, maps
 * (string-keyed objects, or Map for integer keys as in COSE headers), booleans, null and tags.
 * Encoding is deterministic (definite lengths, shortest heads, keys in insertion order).
 */
export class Tagged {
  constructor(
    readonly tag: number,
    readonly value: CborValue,
  ) {}
}

export type CborValue =
  | number
  | string
  | boolean
  | null
  | Uint8Array
  | CborValue[]
  | Map<number | string, CborValue>
  | Tagged
  | { [key: string]: CborValue };

function head(major: number, value: number, out: number[]): void {
  if (value < 24) out.push((major << 5) | value);
  else if (value < 0x100) out.push((major << 5) | 24, value);
  else if (value < 0x10000) out.push((major << 5) | 25, value >> 8, value & 0xff);
  else if (value < 0x100000000)
    out.push((major << 5) | 26, (value >>> 24) & 0xff, (value >> 16) & 0xff, (value >> 8) & 0xff, value & 0xff);
  else {
    const high = Math.floor(value / 0x100000000);
    out.push((major << 5) | 27, (high >>> 24) & 0xff, (high >> 16) & 0xff, (high >> 8) & 0xff, high & 0xff);
    const low = value >>> 0;
    out.push((low >>> 24) & 0xff, (low >> 16) & 0xff, (low >> 8) & 0xff, low & 0xff);
  }
}

function encodeInto(value: CborValue, out: number[]): void {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new Error(`CBOR: only integers are supported, not ${value}`);
    if (value >= 0) head(0, value, out);
    else head(1, -1 - value, out);
  } else if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'utf8');
    head(3, bytes.length, out);
    for (const b of bytes) out.push(b);
  } else if (typeof value === 'boolean') out.push(value ? 0xf5 : 0xf4);
  else if (value === null) out.push(0xf6);
  else if (value instanceof Uint8Array) {
    head(2, value.length, out);
    for (const b of value) out.push(b);
  } else if (Array.isArray(value)) {
    head(4, value.length, out);
    for (const item of value) encodeInto(item, out);
  } else if (value instanceof Tagged) {
    head(6, value.tag, out);
    encodeInto(value.value, out);
  } else {
    const entries = value instanceof Map ? [...value.entries()] : Object.entries(value);
    head(5, entries.length, out);
    for (const [key, item] of entries) {
      encodeInto(key, out);
      encodeInto(item, out);
    }
  }
}

export function encodeCbor(value: CborValue): Uint8Array {
  const out: number[] = [];
  encodeInto(value, out);
  return Uint8Array.from(out);
}

/** Decodes one CBOR item (maps with any integer key come back as Map, others as objects). Throws on malformed input. */
export function decodeCbor(bytes: Uint8Array): CborValue {
  let offset = 0;
  const need = (n: number) => {
    if (offset + n > bytes.length) throw new Error('CBOR: truncated');
  };
  const readHead = (): [number, number] => {
    need(1);
    const first = bytes[offset++]!;
    const major = first >> 5;
    const info = first & 31;
    if (info < 24) return [major, info];
    const size = info === 24 ? 1 : info === 25 ? 2 : info === 26 ? 4 : info === 27 ? 8 : 0;
    if (!size) {
      if (major === 7) return [7, info];
      throw new Error('CBOR: indefinite lengths are not supported');
    }
    need(size);
    let value = 0;
    for (let i = 0; i < size; i++) value = value * 256 + bytes[offset++]!;
    return [major, value];
  };
  const item = (depth: number): CborValue => {
    if (depth > 64) throw new Error('CBOR: nested too deeply');
    const [major, value] = readHead();
    switch (major) {
      case 0:
        return value;
      case 1:
        return -1 - value;
      case 2:
        need(value);
        return bytes.slice(offset, (offset += value));
      case 3:
        need(value);
        return Buffer.from(bytes.subarray(offset, (offset += value))).toString('utf8');
      case 4:
        return Array.from({ length: value }, () => item(depth + 1));
      case 5: {
        const entries: [number | string, CborValue][] = [];
        for (let i = 0; i < value; i++) {
          const key = item(depth + 1);
          if (typeof key !== 'string' && typeof key !== 'number')
            throw new Error('CBOR: map keys must be strings or integers');
          entries.push([key, item(depth + 1)]);
        }
        return entries.some(([key]) => typeof key === 'number') ? new Map(entries) : Object.fromEntries(entries);
      }
      case 6:
        return new Tagged(value, item(depth + 1));
      default:
        if (value === 20) return false;
        if (value === 21) return true;
        if (value === 22) return null;
        throw new Error(`CBOR: unsupported simple value ${value}`);
    }
  };
  const result = item(0);
  if (offset !== bytes.length) throw new Error('CBOR: trailing bytes');
  return result;
}
