import { createHash } from 'node:crypto';
import { codedLength } from './code.js';
import { PAYLOAD_BITS } from './payload.js';

/**
 * The watermark's geometry, shared by the embedder and the detector. The frame is tiled with a
 * square of CHIPS x CHIPS pseudo-random +/-1 chips whose side is 1/TILES_ACROSS of the frame's
 * shorter side, so the pattern scales with the picture: a resized copy carries the same pattern
 * at the same relative size. Chips are joined by raised-cosine interpolation (no edges, nothing
 * blocky on flat areas). A keyed permutation gives SYNC_CHIPS chips a fixed sign (found by the
 * detector's shift and scale search); the other PAYLOAD_CHIPS carry the payload's CODED_BITS
 * coded bits (code.ts), each on 3 or 4 chips scattered over the tile.
 */
export const CHIPS = 32;
export const TILES_ACROSS = 2;
export const PAYLOAD_CHIPS = 728;
export const CODED_BITS = codedLength(PAYLOAD_BITS);
/** Seconds per cycle of the pattern's temporal modulation (see modulation() in embed.ts). */
export const MODULATION_PERIOD = 1;
export const SYNC_CHIPS = CHIPS * CHIPS - PAYLOAD_CHIPS;

/** The key of the reenact watermark: public, like the detector, so anyone can check a file. */
const KEY = 'reenact watermark v1';

export interface ChipLayout {
  /** +1 or -1 per chip (row-major, CHIPS x CHIPS). */
  sign: Int8Array;
  /** The coded payload bit a chip carries, or -1 for a sync chip. */
  bit: Int16Array;
}

let layout: ChipLayout | undefined;

/** Deterministic pseudo-random bytes from the key (SHA-256 in counter mode). */
function keyStream(length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let block = 0, offset = 0; offset < length; block++) {
    const digest = createHash('sha256').update(`${KEY}/${block}`).digest();
    out.set(digest.subarray(0, Math.min(32, length - offset)), offset);
    offset += 32;
  }
  return out;
}

export function chipLayout(): ChipLayout {
  if (layout) return layout;
  const count = CHIPS * CHIPS;
  const stream = keyStream(count * 5);
  const sign = new Int8Array(count);
  for (let i = 0; i < count; i++) sign[i] = stream[i]! & 1 ? 1 : -1;
  // Fisher-Yates with 32-bit draws: the first PAYLOAD_CHIPS chips of the order carry coded bits, in turn.
  const order = Array.from({ length: count }, (_, i) => i);
  const view = new DataView(stream.buffer, count);
  for (let i = count - 1; i > 0; i--) {
    const j = view.getUint32((count - 1 - i) * 4) % (i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const bit = new Int16Array(count).fill(-1);
  for (let i = 0; i < PAYLOAD_CHIPS; i++) bit[order[i]!] = i % CODED_BITS;
  layout = { sign, bit };
  return layout;
}

/** The chip values for the coded payload: sign * (+1 for sync chips, +1/-1 for coded bits 0/1). */
export function chipValues(codedBits: ArrayLike<number>): Float32Array {
  const { sign, bit } = chipLayout();
  const values = new Float32Array(CHIPS * CHIPS);
  for (let k = 0; k < values.length; k++) {
    const b = bit[k]!;
    values[k] = sign[k]! * (b < 0 || codedBits[b] === 0 ? 1 : -1);
  }
  return values;
}

/** The tile period in pixels of a frame of this size. */
export function nominalPeriod(width: number, height: number): number {
  return Math.min(width, height) / TILES_ACROSS;
}

/**
 * Interpolation along one axis: for each of `length` pixels, the lower chip index and the weight
 * of that chip (the next chip, cyclically, has 1 - weight), for a tile period of `period` pixels.
 */
export function axisWeights(length: number, period: number): { chip: Int32Array; weight: Float32Array } {
  const chip = new Int32Array(length);
  const weight = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    let u = (((i + 0.5) / period) * CHIPS) % CHIPS;
    if (u < 0) u += CHIPS;
    const k = Math.floor(u);
    chip[i] = k % CHIPS;
    const c = Math.cos((Math.PI / 2) * (u - k));
    weight[i] = c * c;
  }
  return { chip, weight };
}

/** The pattern (about +/-1) over a width x height grid with the given period, from chip values. */
export function renderPattern(values: Float32Array, width: number, height: number, period: number): Float32Array {
  const xs = axisWeights(width, period);
  const ys = axisWeights(height, period);
  const out = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    const r0 = ys.chip[y]! * CHIPS;
    const r1 = ((ys.chip[y]! + 1) % CHIPS) * CHIPS;
    const wy = ys.weight[y]!;
    for (let x = 0; x < width; x++) {
      const c0 = xs.chip[x]!;
      const c1 = (c0 + 1) % CHIPS;
      const wx = xs.weight[x]!;
      const top = values[r0 + c0]! * wx + values[r0 + c1]! * (1 - wx);
      const bottom = values[r1 + c0]! * wx + values[r1 + c1]! * (1 - wx);
      out[y * width + x] = top * wy + bottom * (1 - wy);
    }
  }
  return out;
}
