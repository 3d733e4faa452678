import { loadAddon, type Addon } from '../native/addon.js';
import type { RgbImage } from '../types.js';
import { convolutionalEncode } from './code.js';
import { MODULATION_PERIOD, chipValues, nominalPeriod, renderPattern } from './pattern.js';
import { encodePayload, type WatermarkPayload } from './payload.js';

/** Luma amplitude (8-bit levels) of the pattern where the gain is 1. */
const STRENGTH = 3.2;
/** Gain on flat areas (sky, skin) and on busy texture, where the eye does not see it. */
const FLAT_GAIN = 0.3;
const BUSY_GAIN = 2.2;
/** Local standard deviation of luma at which the gain is halfway between the two. */
const HALF_GAIN_STD = 6;
/**
 * Moving blocks get less: the detector weights each pixel by the inverse of its variance over time,
 * so a mark on moving parts (the face) counts for little there, costs the encoder bits (its motion
 * compensation drags the fixed pattern along) and takes a share of the frame's PSNR budget that
 * still parts (the background) then get. A block's motion is the change of its luma's mean and
 * spread since the previous frame (levels), held with a decay per frame so the gain does not
 * flicker; at MOTION_HALF the gain is halfway to MOVING_FLOOR of its still value. Not lower: a
 * single frame, read without the time to weight pixels, and a crop that leaves mostly the face
 * need the mark on moving parts too (at 0.25 the benchmark's cropped 256x256 output scored 8.8
 * instead of 10.1, and 2 of 23 single frames were missed).
 */
const MOTION_HALF = 1.5;
const MOVING_FLOOR = 0.5;
const MOTION_DECAY = 0.8;
/** Side in pixels of the blocks over which texture is measured. */
const BLOCK = 8;

/**
 * Fixed point, so the per-pixel work is integer: the pattern in 1/PATTERN_ONE levels, gains in
 * 1/GAIN_ONE, and along a row the interpolated gain in sixteenths of that (SHIFT undoes all three).
 */
const PATTERN_ONE = 256;
const GAIN_ONE = 256;
const SHIFT = 8 + 8 + 4;
const ROUND = 1 << (SHIFT - 1);
/** Clamping by table: CLAMP[value + CLAMP_OFFSET] for a value from -CLAMP_OFFSET to 255 + CLAMP_OFFSET. */
const CLAMP_OFFSET = 256;
const CLAMP = Uint8Array.from({ length: 256 + 2 * CLAMP_OFFSET }, (_, i) =>
  Math.max(0, Math.min(255, i - CLAMP_OFFSET)),
);

/** Mean squared change per pixel allowed in a frame: 42.3 dB PSNR, so every frame stays above 42 dB. */
const MAX_MSE = (255 * 255) / 10 ** 4.23;

/**
 * The pattern's sign and strength at a time: a slow cosine clipped to a trapezoid (whole strength
 * most of the time, a smooth turn over a sixth of a second), so that a still background, the same
 * in every frame, cancels out in the detector, which correlates with the cosine.
 */
export function modulation(seconds: number): number {
  return Math.max(-1, Math.min(1, 2 * Math.cos((2 * Math.PI * seconds) / MODULATION_PERIOD)));
}

/**
 * Adds the reenact watermark to frames of one size, in place: a keyed luma pattern (the same in
 * every frame, so a detector accumulates it over time) carrying the payload, scaled by local
 * texture so it hides in detail and nearly vanishes on flat areas, and weaker where the picture
 * moves. The pattern is rendered once;
 * each frame then costs one pass to measure texture and one to add the pattern.
 */
export class WatermarkEmbedder {
  /** The pattern at gain 1 in fixed point (PATTERN_ONE = 1 level). */
  private readonly pattern: Int16Array;
  /** Mean square of the pattern at gain 1. */
  private readonly patternPower: number;
  /** Per block: its gain, and its luma's sum, sum of squares and sample count (blockSums). */
  private readonly gains: Float32Array;
  private readonly sums: Float64Array;
  /** Per block: its luma's mean and spread in the previous frame, and its motion (see MOTION_HALF). */
  private readonly previousMean: Float32Array;
  private readonly previousSpread: Float32Array;
  private readonly motion: Float32Array;
  private frames = 0;

  constructor(
    readonly width: number,
    readonly height: number,
    readonly payload: WatermarkPayload,
  ) {
    const chips = chipValues(convolutionalEncode(encodePayload(payload)));
    const pattern = renderPattern(chips, width, height, nominalPeriod(width, height));
    this.pattern = new Int16Array(pattern.length);
    let power = 0;
    for (let i = 0; i < pattern.length; i++) {
      const value = Math.round(pattern[i]! * STRENGTH * PATTERN_ONE);
      this.pattern[i] = value;
      power += (value / PATTERN_ONE) ** 2;
    }
    this.patternPower = power / pattern.length;
    const blocks = Math.ceil(width / BLOCK) * Math.ceil(height / BLOCK);
    this.gains = new Float32Array(blocks);
    this.sums = new Float64Array(3 * blocks);
    this.previousMean = new Float32Array(this.gains.length);
    this.previousSpread = new Float32Array(this.gains.length);
    this.motion = new Float32Array(this.gains.length);
  }

  /** Marks a frame shown at `seconds` from the start of the video. */
  mark(frame: RgbImage, seconds: number): void {
    const { width, height, data } = frame;
    if (width !== this.width || height !== this.height)
      throw new Error(`WatermarkEmbedder for ${this.width}x${this.height} got a ${width}x${height} frame`);
    // Busy frames get a weaker pattern overall, so none falls below 42 dB.
    const meanSquareGain = this.measureTexture(data);
    const strength = modulation(seconds) * Math.min(1, Math.sqrt(MAX_MSE / (meanSquareGain * this.patternPower)));
    const scale = strength * GAIN_ONE;
    if (nativeEmbed.module) nativeEmbed.module.addPattern(data, width, height, this.pattern, this.gains, scale);
    else addPatternInJs(data, width, height, this.pattern, this.gains, scale);
  }

  /** Per block: the gain from the standard deviation of its luma (see blockSums) and its motion. Returns the mean squared gain. */
  private measureTexture(data: Uint8Array): number {
    const { width, height, gains, sums, previousMean, previousSpread, motion } = this;
    if (nativeEmbed.module) nativeEmbed.module.blockSums(data, width, height, sums);
    else blockSumsInJs(data, width, height, sums);
    const first = this.frames++ === 0;
    let squares = 0;
    for (let b = 0; b < gains.length; b++) {
      const sum = sums[3 * b]!;
      const sumSquares = sums[3 * b + 1]!;
      const n = sums[3 * b + 2]!;
      const mean = sum / n / 256;
      const std = Math.sqrt(Math.max(0, sumSquares / n - (sum / n) ** 2)) / 256;
      const change = first ? 0 : Math.abs(mean - previousMean[b]!) + Math.abs(std - previousSpread[b]!);
      const moving = Math.max(change, MOTION_DECAY * motion[b]!);
      motion[b] = moving;
      previousMean[b] = mean;
      previousSpread[b] = std;
      const still = 1 / (1 + (moving / MOTION_HALF) ** 2);
      const gain =
        (FLAT_GAIN + ((BUSY_GAIN - FLAT_GAIN) * std) / (std + HALF_GAIN_STD)) *
        (MOVING_FLOOR + (1 - MOVING_FLOOR) * still);
      gains[b] = gain;
      squares += gain * gain;
    }
    return squares / gains.length;
  }
}

interface NativeEmbed {
  blockSums(frame: Uint8Array, width: number, height: number, sums: Float64Array): void;
  addPattern(
    frame: Uint8Array,
    width: number,
    height: number,
    pattern: Int16Array,
    gains: Float32Array,
    scale: number,
  ): void;
}

/**
 * The two per-pixel loops below in C++ (native/embed.cc, built by `npm install` where a compiler
 * is present): the same bytes, several times faster. Without it the JavaScript loops run.
 */
export const nativeEmbed: Addon<NativeEmbed> = loadAddon('watermark_embed', 'the native watermark embedder');

/**
 * Per BLOCK x BLOCK block (row-major), into `sums`: the sum, the sum of squares and the count of
 * the luma (x256) of a quincunx of 8 of its pixels: every other row, every fourth column, shifted
 * by two on alternate sampled rows.
 */
export function blockSumsInJs(data: Uint8Array, width: number, height: number, sums: Float64Array): void {
  const blocksX = Math.ceil(width / BLOCK);
  const blocksY = Math.ceil(height / BLOCK);
  for (let by = 0; by < blocksY; by++) {
    const y1 = Math.min(height, (by + 1) * BLOCK);
    for (let bx = 0; bx < blocksX; bx++) {
      const x0 = bx * BLOCK;
      const x1 = Math.min(width, x0 + BLOCK);
      let sum = 0;
      let sumSquares = 0;
      let n = 0;
      for (let y = by * BLOCK; y < y1; y += 2) {
        const start = x0 + (y & 2);
        let o = (y * width + start) * 3;
        for (let x = start; x < x1; x += 4, o += 12) {
          const luma = data[o]! * 77 + data[o + 1]! * 150 + data[o + 2]! * 29;
          sum += luma;
          sumSquares += luma * luma;
          n++;
        }
      }
      const b = 3 * (by * blocksX + bx);
      sums[b] = sum;
      sums[b + 1] = sumSquares;
      sums[b + 2] = n;
    }
  }
}

/**
 * Adds `pattern` (fixed point, PATTERN_ONE = 1 level) to the luma of `data` in place, times the
 * block `gains` interpolated between block centres, times `scale` (the frame's strength x GAIN_ONE).
 */
export function addPatternInJs(
  data: Uint8Array,
  width: number,
  height: number,
  pattern: Int16Array,
  gains: Float32Array,
  scale: number,
): void {
  const blocksX = Math.ceil(width / BLOCK);
  const blocksY = Math.ceil(height / BLOCK);
  const rowGains = new Int32Array(blocksX);
  const last = blocksX - 1;
  for (let y = 0; y < height; y++) {
    // Gains interpolated between block centres, first down the column, then along the row.
    const by = Math.min(Math.max((y + 0.5) / BLOCK - 0.5, 0), blocksY - 1);
    const b0 = Math.floor(by);
    const b1 = Math.min(b0 + 1, blocksY - 1);
    const fy = by - b0;
    for (let bx = 0; bx < blocksX; bx++)
      rowGains[bx] = Math.round((gains[b0 * blocksX + bx]! * (1 - fy) + gains[b1 * blocksX + bx]! * fy) * scale);
    // Along the row, in spans between block centres (the first and last span hold their block's
    // gain): the gain in sixteenths of GAIN_ONE starts a sixteenth of the way to the next centre
    // and steps an eighth per pixel, all in integers.
    let o = y * width * 3;
    let p = y * width;
    let x = 0;
    let gain = rowGains[0]! * 16;
    let step = 0;
    let end = Math.min(width, BLOCK / 2);
    for (let c = 0; ; c++) {
      for (; x < end; x++, o += 3, p++, gain = (gain + step) | 0) {
        // The same offset on R, G and B changes luma only; rounded (an arithmetic shift floors),
        // then clamped by table: faster than the clamped array's stores or branches.
        const delta = (Math.imul(pattern[p]!, gain) + ROUND) >> SHIFT;
        const d = delta + CLAMP_OFFSET;
        data[o] = CLAMP[data[o]! + d]!;
        data[o + 1] = CLAMP[data[o + 1]! + d]!;
        data[o + 2] = CLAMP[data[o + 2]! + d]!;
      }
      if (x >= width) break;
      if (c < last) {
        const difference = rowGains[c + 1]! - rowGains[c]!;
        gain = rowGains[c]! * 16 + difference;
        step = 2 * difference;
        end = Math.min(width, (c + 1) * BLOCK + BLOCK / 2);
      } else {
        gain = rowGains[last]! * 16;
        step = 0;
        end = width;
      }
    }
  }
}
