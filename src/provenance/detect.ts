import { fft2d } from './fft.js';
import { viterbiDecode } from './code.js';
import {
  CHIPS,
  CODED_BITS,
  MODULATION_PERIOD,
  axisWeights,
  chipLayout,
  nominalPeriod,
  renderPattern,
} from './pattern.js';
import { PAYLOAD_BITS, decodePayload, isCurrentFormat, type WatermarkPayload } from './payload.js';

/** Bins per tile side in the folded image (4 per chip): the resolution of the shift search. */
const BINS = 128;
/** Tile periods searched, relative to the frame's nominal one: resizing keeps 1, cropping 10% off each side gives 1.25. */
const SCALE_MIN = 0.85;
const SCALE_MAX = 1.75;
const SCALE_STEP = 1.01;
const REFINE_STEPS = 5;
const REFINE_STEP = 1.002;
/**
 * Residual luma is clipped to this many levels, so edges and highlights do not dominate: in a
 * video; a still image's residual is weighted by its local variance, which already discounts
 * busy areas, and is clipped only at STILL_CLIP.
 */
const RESIDUAL_CLIP = 12;
const STILL_CLIP = 60;
/** A detection must be this unlikely in an unmarked file (after counting every shift and scale tried). */
export const FALSE_POSITIVE_LIMIT = 1e-6;

export interface Detection {
  /** Whether the watermark is present: falsePositiveProbability below FALSE_POSITIVE_LIMIT. */
  detected: boolean;
  /** Detection score: the sync correlation's peak in standard deviations of its null distribution (see tail()). */
  score: number;
  /** The score that a detection needs (falsePositiveProbability = FALSE_POSITIVE_LIMIT). */
  threshold: number;
  /** The chance that an unmarked file scores this high somewhere in the search (Bonferroni over all shifts and scales). */
  falsePositiveProbability: number;
  /** The 56 payload bits decoded at the best shift, before the CRC check (for measuring bit accuracy). */
  bits?: string;
  /** The 186 coded bits as read at the best shift, before decoding (for measuring the channel's error rate). */
  codedBits?: string;
  /** The decoded payload when detected, its CRC matches and its first byte is this format's. */
  payload?: WatermarkPayload;
  /** False for a still image (or a few frames): no temporal cancellation of the picture, a weaker test. */
  temporal: boolean;
  /** The tile period found, relative to the frame's nominal one (1 = original framing, >1 = cropped). */
  scale: number;
  /** Frames accumulated. */
  frames: number;
}

/** Upper tail of the standard normal, accurate in relative terms far into the tail (Numerical Recipes erfcc). */
export function normalTail(z: number): number {
  const x = z / Math.SQRT2;
  const ax = Math.abs(x);
  const t = 1 / (1 + 0.5 * ax);
  const erfc =
    t *
    Math.exp(
      -ax * ax -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t *
                      (-0.18628806 +
                        t *
                          (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? erfc / 2 : 1 - erfc / 2;
}

function scaleGrid(): number[] {
  const scales: number[] = [];
  for (let s = SCALE_MIN; s <= SCALE_MAX; s *= SCALE_STEP) scales.push(s);
  return scales;
}

/** Number of (shift, scale) hypotheses a detection searches. */
const HYPOTHESES = BINS * BINS * (scaleGrid().length + 2 * REFINE_STEPS);

/** Added to each pixel's residual variance before weighting (about the noise of 8-bit rounding and light compression). */
const VARIANCE_FLOOR = 1;
/** Radius of the box blur whose output is subtracted, in chips of the nominal period. */
const BLUR_CHIPS = 1;
/** Fewer frames than this are tested as a still image. */
const MIN_FRAMES = 8;

/**
 * Chance that one hypothesis scores at least `score` in an unmarked file: for a video, the score
 * is the length of two independent unit normals (Rayleigh tail exp(-r^2/2)); for an image, |z|.
 */
function tail(score: number, temporal: boolean): number {
  return temporal ? Math.exp((-score * score) / 2) : 2 * normalTail(score);
}

function thresholdFor(temporal: boolean): number {
  let lo = 0;
  let hi = 40;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (HYPOTHESES * tail(mid, temporal) > FALSE_POSITIVE_LIMIT) lo = mid;
    else hi = mid;
  }
  return hi;
}

/** The scores whose false-positive probability is FALSE_POSITIVE_LIMIT. */
export const VIDEO_THRESHOLD = thresholdFor(true);
export const IMAGE_THRESHOLD = thresholdFor(false);

/** Box blur along rows then columns with a window of 2 * radius + 1 (edges clamped). */
function boxBlur(
  src: Float32Array,
  width: number,
  height: number,
  radius: number,
  tmp: Float32Array,
  out: Float32Array,
): void {
  const norm = 1 / (2 * radius + 1);
  for (let y = 0; y < height; y++) {
    const row = y * width;
    let acc = 0;
    for (let i = -radius; i <= radius; i++) acc += src[row + Math.min(width - 1, Math.max(0, i))]!;
    for (let x = 0; x < width; x++) {
      tmp[row + x] = acc * norm;
      acc += src[row + Math.min(width - 1, x + radius + 1)]! - src[row + Math.max(0, x - radius)]!;
    }
  }
  for (let x = 0; x < width; x++) {
    let acc = 0;
    for (let i = -radius; i <= radius; i++) acc += tmp[Math.min(height - 1, Math.max(0, i)) * width + x]!;
    for (let y = 0; y < height; y++) {
      out[y * width + x] = acc * norm;
      acc += tmp[Math.min(height - 1, y + radius + 1) * width + x]! - tmp[Math.max(0, y - radius) * width + x]!;
    }
  }
}

/** One candidate period's fold and correlation maps, normalised to unit spread under the null. */
interface Candidate {
  scale: number;
  folds: Float64Array[];
  maps: Float64Array[];
}

interface Peak {
  score: number;
  shift: number;
  scale: number;
  /** The fold that carries the mark at this peak (the maps' folds weighted by their share of the score). */
  folded: Float64Array;
}

/**
 * Looks for the reenact watermark in frames of one size. Each frame's luma minus its local mean
 * is accumulated against the embedder's slow temporal cosine and sine (and their mean removed),
 * so whatever stands still, most of a portrait, cancels and the pattern adds up. A single image
 * has no time to cancel anything: its residual is used as it is, a weaker test. The result is
 * folded onto one tile for each candidate tile period and correlated with the sync chips at every
 * cyclic shift by FFT: crops move the pattern, crops and scaling change its period.
 */
export class WatermarkDetector {
  private sums: Float32Array[] = [];
  private frames = 0;
  private width = 0;
  private height = 0;
  private luma = new Float32Array(0);
  private tmp = new Float32Array(0);
  private blurred = new Float32Array(0);
  /** Sums of 1, c, s, c^2, s^2, c*s over frames (c, s: the modulation's cosine and sine). */
  private moments = new Float64Array(6);

  /** Adds one frame (RGB, 3 bytes per pixel) shown at `seconds`. */
  addRgb(data: Uint8Array, width: number, height: number, seconds: number): void {
    this.prepare(width, height);
    const luma = this.luma;
    for (let i = 0, o = 0; i < luma.length; i++, o += 3)
      luma[i] = data[o]! * 0.299 + data[o + 1]! * 0.587 + data[o + 2]! * 0.114;
    this.accumulate(seconds);
  }

  get frameCount(): number {
    return this.frames;
  }

  private prepare(width: number, height: number): void {
    if (!this.sums.length) {
      this.width = width;
      this.height = height;
      this.sums = [0, 1, 2, 3, 4].map(() => new Float32Array(width * height));
      this.luma = new Float32Array(width * height);
      this.tmp = new Float32Array(width * height);
      this.blurred = new Float32Array(width * height);
    } else if (width !== this.width || height !== this.height) {
      throw new Error(`WatermarkDetector for ${this.width}x${this.height} frames got ${width}x${height}`);
    }
  }

  private accumulate(seconds: number): void {
    const { width, height, luma, tmp, blurred } = this;
    const [plain, cosine, sine, squares, still] = this.sums as [
      Float32Array,
      Float32Array,
      Float32Array,
      Float32Array,
      Float32Array,
    ];
    boxBlur(luma, width, height, this.chipRadius(), tmp, blurred);
    const angle = (2 * Math.PI * seconds) / MODULATION_PERIOD;
    const c = Math.cos(angle);
    const s = Math.sin(angle);
    for (let i = 0; i < plain.length; i++) {
      const raw = luma[i]! - blurred[i]!;
      still[i]! += raw > STILL_CLIP ? STILL_CLIP : raw < -STILL_CLIP ? -STILL_CLIP : raw;
      const r = raw > RESIDUAL_CLIP ? RESIDUAL_CLIP : raw < -RESIDUAL_CLIP ? -RESIDUAL_CLIP : raw;
      plain[i]! += r;
      cosine[i]! += c * r;
      sine[i]! += s * r;
      squares[i]! += r * r;
    }
    const m = this.moments;
    m[0]! += 1;
    m[1]! += c;
    m[2]! += s;
    m[3]! += c * c;
    m[4]! += s * s;
    m[5]! += c * s;
    this.frames++;
  }

  /**
   * The residual images to test: the cosine and sine components with the mean (the still
   * picture) removed and made orthogonal, or for too few frames the plain residual.
   */
  private components(): { images: Float32Array[]; weights?: Float32Array } {
    const [plain, cosine, sine, squares] = this.sums as [Float32Array, Float32Array, Float32Array, Float32Array];
    const [n, sc, ss, scc, sss, scs] = this.moments as unknown as number[];
    const mc = sc! / n!;
    const ms = ss! / n!;
    // c' = c - mean(c); s' = s - mean(s) - beta c', with beta making them orthogonal.
    const cc = scc! - n! * mc * mc;
    const cs = scs! - n! * mc * ms;
    const beta = cc > 1e-9 ? cs / cc : 0;
    const varS = sss! - n! * ms * ms - beta * cs;
    if (n! < MIN_FRAMES || cc < 1e-3 * n! || varS < 1e-3 * n!)
      return { images: [this.sums[4]!], weights: this.stillWeights() };
    const a = new Float32Array(plain.length);
    const b = new Float32Array(plain.length);
    // Pixels that change a lot over time (the moving face) carry as much mark as still ones but
    // far more noise: each is weighted by the inverse of its residual's variance over time.
    const weights = new Float32Array(plain.length);
    // The variance left after fitting the mean and both modulation components: the mark itself,
    // strongest where texture hides it, does not count as noise there.
    const dof = Math.max(1, n! - 3);
    for (let i = 0; i < plain.length; i++) {
      a[i] = cosine[i]! - mc * plain[i]!;
      b[i] = sine[i]! - ms * plain[i]! - beta * a[i]!;
      const residual = squares[i]! - (plain[i]! * plain[i]!) / n! - (a[i]! * a[i]!) / cc - (b[i]! * b[i]!) / varS;
      weights[i] = 1 / (Math.max(0, residual) / dof + VARIANCE_FLOOR);
    }
    return { images: [a, b], weights };
  }

  /**
   * Weights for a still image, where the picture itself is the noise: the inverse of the
   * residual's local variance (over about a chip), so edges and busy texture, whose residual
   * is mostly picture, count for less than quiet areas.
   */
  private stillWeights(): Float32Array {
    const { width, height, tmp } = this;
    const plain = this.sums[4]!;
    const n = this.moments[0]!;
    const power = new Float32Array(plain.length);
    for (let i = 0; i < plain.length; i++) power[i] = (plain[i]! / n) ** 2;
    const local = new Float32Array(plain.length);
    boxBlur(power, width, height, this.chipRadius(), tmp, local);
    for (let i = 0; i < plain.length; i++) local[i] = 1 / (local[i]! + VARIANCE_FLOOR);
    return local;
  }

  /** About one chip of the nominal period, in pixels. */
  private chipRadius(): number {
    return Math.max(1, Math.round((BLUR_CHIPS * nominalPeriod(this.width, this.height)) / CHIPS));
  }

  result(): Detection {
    if (this.frames === 0) throw new Error('WatermarkDetector.result() before any frame');
    const { images, weights } = this.components();
    const template = syncTemplateSpectrum();
    let best: Peak | undefined;
    const consider = (scale: number) => {
      const peak = findPeak({ scale, ...this.correlate(images, weights, scale, template) });
      if (!best || peak.score > best.score) best = peak;
    };
    for (const scale of scaleGrid()) consider(scale);
    const coarse = best!.scale;
    for (let i = 1; i <= REFINE_STEPS; i++) {
      consider(coarse * REFINE_STEP ** i);
      consider(coarse / REFINE_STEP ** i);
    }
    const peak = best!;
    const temporal = images.length === 2;
    const falsePositiveProbability = Math.min(1, HYPOTHESES * tail(peak.score, temporal));
    const detected = falsePositiveProbability < FALSE_POSITIVE_LIMIT;
    const detection: Detection = {
      detected,
      score: peak.score,
      threshold: temporal ? VIDEO_THRESHOLD : IMAGE_THRESHOLD,
      falsePositiveProbability,
      scale: peak.scale,
      frames: this.frames,
      temporal,
    };
    const soft = bitValues(peak.folded, peak.shift);
    detection.codedBits = soft.map((v) => (v < 0 ? 1 : 0)).join('');
    const bits = viterbiDecode(soft, PAYLOAD_BITS);
    detection.bits = bits.join('');
    if (detected && isCurrentFormat(bits)) {
      const payload = decodePayload(bits);
      if (payload) detection.payload = payload;
    }
    return detection;
  }

  /** Folds each image onto one tile for a period and correlates it with the sync chips. */
  private correlate(
    images: Float32Array[],
    weights: Float32Array | undefined,
    scale: number,
    template: { re: Float64Array; im: Float64Array },
  ): Omit<Candidate, 'scale'> {
    const { width, height } = this;
    const period = nominalPeriod(width, height) * scale;
    const binOf = (i: number) => Math.floor((((i + 0.5) / period) % 1) * BINS) % BINS;
    const binX = Int32Array.from({ length: width }, (_, x) => binOf(x));
    const binY = Int32Array.from({ length: height }, (_, y) => binOf(y) * BINS);
    const count = new Float64Array(BINS * BINS);
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++) count[binY[y]! + binX[x]!]! += weights ? weights[y * width + x]! : 1;
    const folds: Float64Array[] = [];
    const maps: Float64Array[] = [];
    for (const image of images) {
      const total = new Float64Array(BINS * BINS);
      for (let y = 0; y < height; y++) {
        const row = binY[y]!;
        const offset = y * width;
        if (weights)
          for (let x = 0; x < width; x++) total[row + binX[x]!]! += image[offset + x]! * weights[offset + x]!;
        else for (let x = 0; x < width; x++) total[row + binX[x]!]! += image[offset + x]!;
      }
      // Weighted sums, not means, per bin: each bin then counts as much as the weight of the pixels
      // folded into it (the matched filter), so after a crop the bins that only moving or busy
      // pixels reach no longer count as much as those covered twice by still background.
      let sum = 0;
      let weight = 0;
      for (let i = 0; i < total.length; i++) {
        sum += total[i]!;
        weight += count[i]!;
      }
      const mean = sum / Math.max(1e-30, weight);
      for (let i = 0; i < total.length; i++) total[i]! -= count[i]! * mean;
      const re = Float64Array.from(total);
      const im = new Float64Array(BINS * BINS);
      fft2d(re, im, BINS);
      for (let i = 0; i < re.length; i++) {
        // F * conj(T): the sum over u of F(u + s) T(u), for every cyclic shift s at once.
        const r = re[i]! * template.re[i]! + im[i]! * template.im[i]!;
        const m = im[i]! * template.re[i]! - re[i]! * template.im[i]!;
        re[i] = r;
        im[i] = m;
      }
      fft2d(re, im, BINS, true);
      folds.push(total);
      maps.push(re);
    }
    return { folds, maps };
  }
}

/** Mean and spread of a correlation map, leaving out the 9 x 9 shifts around `centre` (the peak's side lobes). */
function nullSpread(map: Float64Array, centre: number): { mean: number; sd: number } {
  const cy = Math.floor(centre / BINS);
  const cx = centre % BINS;
  let n = 0;
  let s1 = 0;
  let s2 = 0;
  for (let y = 0; y < BINS; y++) {
    const dy = Math.min(Math.abs(y - cy), BINS - Math.abs(y - cy));
    for (let x = 0; x < BINS; x++) {
      const dx = Math.min(Math.abs(x - cx), BINS - Math.abs(x - cx));
      if (centre >= 0 && dy <= 4 && dx <= 4) continue;
      const v = map[y * BINS + x]!;
      n++;
      s1 += v;
      s2 += v * v;
    }
  }
  const mean = s1 / n;
  return { mean, sd: Math.sqrt(Math.max(1e-30, s2 / n - mean * mean)) };
}

/**
 * The best shift: for one map (a single image) the largest |z|, for the cosine and sine maps
 * (a video) the largest sqrt(zc^2 + zs^2), whatever the phase at which the clip starts.
 */
function findPeak(candidate: Candidate): Peak {
  const { maps, folds, scale } = candidate;
  const scoreAt = (spreads: { mean: number; sd: number }[], i: number) => {
    let sum = 0;
    for (let m = 0; m < maps.length; m++) sum += ((maps[m]![i]! - spreads[m]!.mean) / spreads[m]!.sd) ** 2;
    return Math.sqrt(sum);
  };
  const rough = maps.map((map) => nullSpread(map, -1));
  let shift = 0;
  let roughBest = -1;
  for (let i = 0; i < BINS * BINS; i++) {
    const score = scoreAt(rough, i);
    if (score > roughBest) {
      roughBest = score;
      shift = i;
    }
  }
  const spreads = maps.map((map) => nullSpread(map, shift));
  const folded = new Float64Array(BINS * BINS);
  for (let m = 0; m < maps.length; m++) {
    const z = (maps[m]![shift]! - spreads[m]!.mean) / spreads[m]!.sd;
    for (let i = 0; i < folded.length; i++) folded[i]! += (z / spreads[m]!.sd) * folds[m]![i]!;
  }
  return { score: scoreAt(spreads, shift), shift, scale, folded };
}

let templateSpectrum: { re: Float64Array; im: Float64Array } | undefined;

/** The FFT of the sync chips' pattern over one tile of BINS x BINS. */
function syncTemplateSpectrum(): { re: Float64Array; im: Float64Array } {
  if (templateSpectrum) return templateSpectrum;
  const { sign, bit } = chipLayout();
  const values = new Float32Array(CHIPS * CHIPS);
  for (let k = 0; k < values.length; k++) values[k] = bit[k]! < 0 ? sign[k]! : 0;
  const re = Float64Array.from(renderPattern(values, BINS, BINS, BINS));
  const im = new Float64Array(BINS * BINS);
  fft2d(re, im, BINS);
  templateSpectrum = { re, im };
  return templateSpectrum;
}

/** Soft value of each coded payload bit (positive: 0, negative: 1) from the fold at the sync's shift. */
function bitValues(folded: Float64Array, shift: number): number[] {
  const { sign, bit } = chipLayout();
  const sy = Math.floor(shift / BINS);
  const sx = shift % BINS;
  const axis = axisWeights(BINS, BINS);
  const response = new Float64Array(CHIPS * CHIPS);
  for (let y = 0; y < BINS; y++) {
    const r0 = axis.chip[y]!;
    const r1 = (r0 + 1) % CHIPS;
    const wy = axis.weight[y]!;
    const row = ((y + sy) % BINS) * BINS;
    for (let x = 0; x < BINS; x++) {
      const v = folded[row + ((x + sx) % BINS)]!;
      const c0 = axis.chip[x]!;
      const c1 = (c0 + 1) % CHIPS;
      const wx = axis.weight[x]!;
      response[r0 * CHIPS + c0]! += v * wy * wx;
      response[r0 * CHIPS + c1]! += v * wy * (1 - wx);
      response[r1 * CHIPS + c0]! += v * (1 - wy) * wx;
      response[r1 * CHIPS + c1]! += v * (1 - wy) * (1 - wx);
    }
  }
  const soft = new Array<number>(CODED_BITS).fill(0);
  for (let k = 0; k < response.length; k++) if (bit[k]! >= 0) soft[bit[k]!]! += sign[k]! * response[k]!;
  return soft;
}
