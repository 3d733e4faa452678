import type { RgbImage } from '../types.js';
import { fitAffine } from '../align/affine.js';
import { forEachInside, polygonBounds, rowCrossings, sampleBilinear } from './polygon.js';
import { FACE_OVAL, INNER_LIPS, OUTER_LIPS } from './regions.js';

/** Per-channel mean of some pixels. */
export interface ColourStats {
  mean: [number, number, number];
}

/**
 * Mean colour of the face (inside the face outline, every other pixel each way): the mouth
 * interior is carried from the driver to the source by the ratio of these, which matches
 * lighting and white balance. Lips would be the closer match in theory, but the inner lip
 * landmarks of an open mouth sit inside the dark opening, which biases a lip mean.
 */
export function faceColourStats(image: RgbImage, points: ArrayLike<number>): ColourStats {
  const outline = polygon(points, FACE_OVAL);
  let r = 0,
    g = 0,
    b = 0;
  let n = 0;
  const [x0, y0, x1, y1] = polygonBounds(outline, image);
  const crossings = new Float64Array(outline.length / 2);
  const { width, data } = image;
  for (let y = y0; y <= y1; y += 2) {
    const count = rowCrossings(outline, y + 0.5, crossings);
    if (count === 0) continue;
    let k = 0;
    for (let x = x0; x <= x1; x += 2) {
      const px = x + 0.5;
      while (k < count && crossings[k]! <= px) k++;
      if (((count - k) & 1) === 0) continue;
      const o = (y * width + x) * 3;
      r += data[o]!;
      g += data[o + 1]!;
      b += data[o + 2]!;
      n++;
    }
  }
  if (n === 0) return { mean: [128, 128, 128] };
  return { mean: [r / n, g / n, b / n] };
}

/** Area in px^2 of the opening between the inner lips. */
export function mouthOpeningArea(points: ArrayLike<number>): number {
  const poly = polygon(points, INNER_LIPS);
  let area = 0;
  for (let i = 0, j = poly.length - 2; i < poly.length; j = i, i += 2)
    area += poly[j]! * poly[i + 1]! - poly[i]! * poly[j + 1]!;
  return Math.abs(area) / 2;
}

export interface MouthFill {
  /** Warped source into which the mouth interior is painted. */
  out: RgbImage;
  /** Target landmarks (interleaved x, y) on `out`. */
  target: ArrayLike<number>;
  /** The driving frame and its landmarks (interleaved x, y), from which the interior is taken. */
  driverFrame: RgbImage;
  driver: ArrayLike<number>;
  /** Face colours of the source and of the driving frame: the interior is mapped from one to the other. */
  sourceColours: ColourStats;
  driverColours: ColourStats;
  /** 0..1: blend weight of the driver's interior (0 keeps the warped source). */
  strength: number;
}

/**
 * Paints the driving frame's mouth interior (teeth, tongue, dark) into the target inner-lip
 * polygon: each pixel samples the driving frame through an affine map fitted on the lip
 * contours, is colour-matched from the driver's face to the source's, and is blended in with
 * a soft edge along the inner lips.
 */
export function fillMouth(fill: MouthFill): void {
  const { out, target, driverFrame, driver, sourceColours, driverColours, strength } = fill;
  if (strength <= 0) return;
  const inner = polygon(target, INNER_LIPS);
  // The inner contours must correspond; the outer ones, lightly weighted, keep the fit
  // well-posed when the opening is a thin slit.
  const map = fitAffine(target, driver, [
    ...INNER_LIPS.map((i) => [i, 1] as const),
    ...OUTER_LIPS.map((i) => [i, 0.05] as const),
  ]);
  if (!map) return;
  const mouthWidth = Math.hypot(inner[20]! - inner[0]!, inner[21]! - inner[1]!);
  const feather = Math.max(1, 0.06 * mouthWidth);
  // A per-channel gain rather than a mean/std shift: the interior is much darker than the
  // face, and an offset would lift the dark of an open mouth towards skin colour. The faces'
  // brightness is matched whole, their tint half: the face means differ by skin as well as by
  // light, and taken whole, warm-lit tan skin against pale skin in cool light turned the
  // driver's pink mouth violet (portrait-studio.png driven by driving-head-turns.mp4).
  const brightness = (mean: readonly number[]) => Math.max(1, (mean[0]! + mean[1]! + mean[2]!) / 3);
  const light = brightness(sourceColours.mean) / brightness(driverColours.mean);
  const gain = [0, 1, 2].map((c) => {
    const tint = sourceColours.mean[c]! / Math.max(1, driverColours.mean[c]!) / light;
    return Math.min(1.6, Math.max(0.6, light * Math.sqrt(tint)));
  });
  const data = out.data;
  const sample = new Float64Array(3);
  forEachInside(inner, out, (px, py, o) => {
    const edge = Math.min(1, distanceToEdges(inner, px, py) / feather);
    const alpha = strength * edge * edge * (3 - 2 * edge);
    sampleBilinear(driverFrame, map.a * px + map.b * py + map.c, map.d * px + map.e * py + map.f, sample);
    for (let c = 0; c < 3; c++) {
      const matched = sample[c]! * gain[c]!;
      const blended = data[o + c]! + alpha * (matched - data[o + c]!);
      data[o + c] = blended < 0 ? 0 : blended > 255 ? 255 : blended + 0.5;
    }
  });
}

function polygon(points: ArrayLike<number>, indices: readonly number[]): Float64Array {
  const poly = new Float64Array(indices.length * 2);
  indices.forEach((index, k) => {
    poly[2 * k] = points[2 * index]!;
    poly[2 * k + 1] = points[2 * index + 1]!;
  });
  return poly;
}

function distanceToEdges(poly: Float64Array, x: number, y: number): number {
  let best = Infinity; // squared
  for (let i = 0, j = poly.length - 2; i < poly.length; j = i, i += 2) {
    const ax = poly[j]!,
      ay = poly[j + 1]!;
    const ex = poly[i]! - ax,
      ey = poly[i + 1]! - ay;
    const len2 = ex * ex + ey * ey;
    const t = len2 > 0 ? Math.min(1, Math.max(0, ((x - ax) * ex + (y - ay) * ey) / len2)) : 0;
    const dx = x - ax - t * ex;
    const dy = y - ay - t * ey;
    best = Math.min(best, dx * dx + dy * dy);
  }
  return Math.sqrt(best);
}
