import { apply, compose, transformedBounds, translation } from '../align/affine.js';
import type { SourceAlignment } from '../align/source.js';
import type { RgbImage } from '../types.js';

export interface FaceBlendOptions {
  /** Radius of the pasted disc as a fraction of the crop side. Default 0.47 (nearly the whole crop). */
  radius?: number;
  /** Fraction of the radius over which the generated face fades into the photo. Default 0.3. */
  feather?: number;
  /**
   * Match the generated face's low-frequency colour to the photo's along the feather band and
   * carry that correction smoothly across the face, so no seam or colour step shows. Default true.
   */
  colourCorrection?: boolean;
  /** Largest colour correction per channel in 8-bit levels; larger differences are content, not drift. Default 40. */
  maxCorrection?: number;
}

/** The colour correction is estimated on a GRID x GRID lattice of cells over the crop. */
const GRID = 32;

/**
 * Pastes model-size faces (e.g. 256x256 FOMM frames, in the crop space of a SourceAlignment)
 * back into the photo. Everything that depends only on the photo and the alignment (which photo
 * pixels the disc covers, where each samples the crop, its mask weight, the photo's cell colours)
 * is computed once; each frame then costs one bilinear sample per covered pixel.
 *
 * The mask is a disc in crop space (a disc in the photo too: the alignment is a similarity),
 * full weight in its inner part and a smoothstep fade over the feather band. Pixels outside the
 * disc are the photo's own, untouched.
 */
export class FaceBlender {
  private readonly cropSize: number;
  /** Photo pixel index (y * width + x) of every pixel the disc covers. */
  private readonly pixels: Int32Array;
  /** Mask weight of each covered pixel, 0..1. */
  private readonly weights: Float32Array;
  /** Crop-space sample position of each covered pixel (pixel centres at integers). */
  private readonly cropX: Float32Array;
  private readonly cropY: Float32Array;
  /** Cells in the feather band, where the photo and the generated face are compared. */
  private readonly bandCells: Int32Array;
  /** Mean photo colour of each band cell, 3 per band cell. */
  private readonly photoCellColour: Float32Array;
  private readonly correct: boolean;
  private readonly maxCorrection: number;

  constructor(
    /** The frame the face goes into: the photo, already at output size (see cropToEven). */
    private readonly background: RgbImage,
    alignment: SourceAlignment,
    options: FaceBlendOptions = {},
  ) {
    const size = alignment.crop.width;
    this.cropSize = size;
    const radius = (options.radius ?? 0.47) * size;
    const inner = radius * (1 - (options.feather ?? 0.3));
    const centre = size / 2;
    this.correct = options.colourCorrection ?? true;
    this.maxCorrection = options.maxCorrection ?? 40;

    // The disc's footprint in the photo, clipped to the frame.
    const bounds = transformedBounds(
      compose(alignment.cropToPhoto, translation(centre - radius, centre - radius)),
      2 * radius,
      2 * radius,
    );
    const left = Math.max(0, Math.floor(bounds.x0));
    const top = Math.max(0, Math.floor(bounds.y0));
    const right = Math.min(background.width, Math.ceil(bounds.x1));
    const bottom = Math.min(background.height, Math.ceil(bounds.y1));

    const pixels: number[] = [];
    const weights: number[] = [];
    const xs: number[] = [];
    const ys: number[] = [];
    const t = alignment.photoToCrop;
    for (let y = top; y < bottom; y++) {
      for (let x = left; x < right; x++) {
        const u = t.a * (x + 0.5) + t.b * (y + 0.5) + t.c;
        const v = t.d * (x + 0.5) + t.e * (y + 0.5) + t.f;
        const weight = discWeight(Math.hypot(u - centre, v - centre), inner, radius);
        if (weight <= 0) continue;
        pixels.push(y * background.width + x);
        weights.push(weight);
        xs.push(u - 0.5);
        ys.push(v - 0.5);
      }
    }
    this.pixels = Int32Array.from(pixels);
    this.weights = Float32Array.from(weights);
    this.cropX = Float32Array.from(xs);
    this.cropY = Float32Array.from(ys);

    // Band cells: centre inside the feather band and the cell lying inside the photo, so the
    // crop there shows real photo pixels (not repeated edge pixels).
    const cell = size / GRID;
    const band: number[] = [];
    for (let gy = 0; gy < GRID; gy++) {
      for (let gx = 0; gx < GRID; gx++) {
        const r = Math.hypot((gx + 0.5) * cell - centre, (gy + 0.5) * cell - centre);
        if (r < inner || r > radius) continue;
        const corner = apply(alignment.cropToPhoto, { x: (gx + 0.5) * cell, y: (gy + 0.5) * cell });
        if (corner.x < 0 || corner.y < 0 || corner.x >= background.width || corner.y >= background.height) continue;
        band.push(gy * GRID + gx);
      }
    }
    this.bandCells = Int32Array.from(band);
    this.photoCellColour = cellMeans(alignment.crop, this.bandCells);
  }

  /** A new frame: the background with the generated face (crop space, any square size) blended in. */
  blend(generated: RgbImage): RgbImage {
    const out = new Uint8Array(this.background.data);
    const scale = generated.width / this.cropSize;
    const correction = this.correct ? this.correction(generated) : undefined;
    const src = generated.data;
    const gw = generated.width;
    const maxX = generated.width - 1;
    const maxY = generated.height - 1;
    const cellScale = GRID / generated.width;
    const { pixels, weights, cropX, cropY } = this;
    const sample = new Float32Array(3);
    for (let i = 0; i < pixels.length; i++) {
      // Sample position in the generated image (its pixel centres at integers).
      const fx = Math.min(maxX, Math.max(0, (cropX[i]! + 0.5) * scale - 0.5));
      const fy = Math.min(maxY, Math.max(0, (cropY[i]! + 0.5) * scale - 0.5));
      bilinear(src, gw, 3, maxX, maxY, fx, fy, sample);
      if (correction) {
        const cx = Math.min(GRID - 1, Math.max(0, (fx + 0.5) * cellScale - 0.5));
        const cy = Math.min(GRID - 1, Math.max(0, (fy + 0.5) * cellScale - 0.5));
        bilinear(correction, GRID, 3, GRID - 1, GRID - 1, cx, cy, sample, true);
      }
      const w = weights[i]!;
      const o = pixels[i]! * 3;
      for (let ch = 0; ch < 3; ch++) {
        const value = out[o + ch]! + (sample[ch]! - out[o + ch]!) * w;
        out[o + ch] = value < 0 ? 0 : value > 255 ? 255 : value + 0.5;
      }
    }
    return { width: this.background.width, height: this.background.height, data: out };
  }

  /**
   * Per-cell colour offsets (GRID x GRID x 3): photo minus generated in the feather band, filled
   * in everywhere else by push-pull interpolation (a smooth membrane, as in seamless cloning).
   */
  private correction(generated: RgbImage): Float32Array {
    const generatedCellColour = cellMeans(generated, this.bandCells);
    const values = new Float32Array(GRID * GRID * 3);
    const known = new Float32Array(GRID * GRID);
    const limit = this.maxCorrection;
    for (let k = 0; k < this.bandCells.length; k++) {
      const c = this.bandCells[k]!;
      for (let ch = 0; ch < 3; ch++) {
        const difference = this.photoCellColour[k * 3 + ch]! - generatedCellColour[k * 3 + ch]!;
        values[c * 3 + ch] = Math.max(-limit, Math.min(limit, difference));
      }
      known[c] = 1;
    }
    return pushPull(values, known, GRID);
  }
}

/** Mask weight at distance r from the disc centre: 1 inside `inner`, smoothstep down to 0 at `outer`. */
function discWeight(r: number, inner: number, outer: number): number {
  if (r <= inner) return 1;
  if (r >= outer) return 0;
  const t = (outer - r) / (outer - inner);
  return t * t * (3 - 2 * t);
}

/** Mean colour of each listed cell of a GRID x GRID lattice over a square image. */
function cellMeans(image: RgbImage, cells: Int32Array): Float32Array {
  const means = new Float32Array(cells.length * 3);
  const cell = image.width / GRID;
  for (let k = 0; k < cells.length; k++) {
    const gx = cells[k]! % GRID;
    const gy = Math.floor(cells[k]! / GRID);
    const x0 = Math.floor(gx * cell);
    const x1 = Math.max(x0 + 1, Math.floor((gx + 1) * cell));
    const y0 = Math.floor(gy * cell);
    const y1 = Math.max(y0 + 1, Math.floor((gy + 1) * cell));
    let r = 0;
    let g = 0;
    let b = 0;
    for (let y = y0; y < y1; y++) {
      let p = (y * image.width + x0) * 3;
      for (let x = x0; x < x1; x++, p += 3) {
        r += image.data[p]!;
        g += image.data[p + 1]!;
        b += image.data[p + 2]!;
      }
    }
    const n = (x1 - x0) * (y1 - y0);
    means[k * 3] = r / n;
    means[k * 3 + 1] = g / n;
    means[k * 3 + 2] = b / n;
  }
  return means;
}

/**
 * Fills the unknown cells of a size x size x 3 field from the known ones (weight 1): averages are
 * pulled down a pyramid of halved grids, then pushed back up where a cell had no data. The result
 * is smooth and equals the data at known cells.
 */
function pushPull(values: Float32Array, weights: Float32Array, size: number): Float32Array {
  if (size <= 1) {
    const out = new Float32Array(3);
    if (weights[0]! > 0) for (let ch = 0; ch < 3; ch++) out[ch] = values[ch]! / weights[0]!;
    return out;
  }
  const half = size >> 1;
  const coarseValues = new Float32Array(half * half * 3);
  const coarseWeights = new Float32Array(half * half);
  for (let y = 0; y < half; y++) {
    for (let x = 0; x < half; x++) {
      const c = y * half + x;
      let w = 0;
      for (let dy = 0; dy < 2; dy++) {
        for (let dx = 0; dx < 2; dx++) {
          const f = (2 * y + dy) * size + 2 * x + dx;
          const fw = weights[f]!;
          w += fw;
          for (let ch = 0; ch < 3; ch++)
            coarseValues[c * 3 + ch] = coarseValues[c * 3 + ch]! + values[f * 3 + ch]! * fw;
        }
      }
      if (w > 0) for (let ch = 0; ch < 3; ch++) coarseValues[c * 3 + ch] = coarseValues[c * 3 + ch]! / w;
      coarseWeights[c] = Math.min(1, w);
    }
  }
  const coarse = pushPull(coarseValues, coarseWeights, half);
  const out = new Float32Array(size * size * 3);
  const fill = new Float32Array(3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const f = y * size + x;
      const w = Math.min(1, weights[f]!);
      // Bilinear upsampling of the coarse level (cell centres at (x + 0.5) / 2 - 0.5).
      fill.fill(0);
      const cx = Math.min(half - 1, Math.max(0, (x + 0.5) / 2 - 0.5));
      const cy = Math.min(half - 1, Math.max(0, (y + 0.5) / 2 - 0.5));
      bilinear(coarse, half, 3, half - 1, half - 1, cx, cy, fill, true);
      for (let ch = 0; ch < 3; ch++) out[f * 3 + ch] = values[f * 3 + ch]! * w + fill[ch]! * (1 - w);
    }
  }
  return out;
}

/**
 * Bilinear sample of an interleaved image into `out`, or added to it with `add` (positions
 * already clamped to the image).
 */
function bilinear(
  data: ArrayLike<number>,
  width: number,
  channels: number,
  maxX: number,
  maxY: number,
  fx: number,
  fy: number,
  out: Float32Array,
  add = false,
): void {
  const x0 = Math.floor(fx);
  const y0 = Math.floor(fy);
  const x1 = x0 < maxX ? x0 + 1 : maxX;
  const y1 = y0 < maxY ? y0 + 1 : maxY;
  const wx = fx - x0;
  const wy = fy - y0;
  const p00 = (y0 * width + x0) * channels;
  const p10 = (y0 * width + x1) * channels;
  const p01 = (y1 * width + x0) * channels;
  const p11 = (y1 * width + x1) * channels;
  for (let ch = 0; ch < channels; ch++) {
    const top = data[p00 + ch]! + (data[p10 + ch]! - data[p00 + ch]!) * wx;
    const bottom = data[p01 + ch]! + (data[p11 + ch]! - data[p01 + ch]!) * wx;
    const value = top + (bottom - top) * wy;
    out[ch] = add ? out[ch]! + value : value;
  }
}
