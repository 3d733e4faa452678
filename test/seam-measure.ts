import type { Face } from '../src/face/detector.js';
import { FACE_OVAL } from '../src/mesh/regions.js';
import type { RgbImage } from '../src/types.js';

/**
 * The sides of the face outline, from the cheeks up to the temples (Face Mesh indices): where
 * the face meets the ears, the hair beside them and the background. The jaw is left out (an
 * opening mouth rightly changes the steps there), and so is the forehead, where the outline runs
 * along the hairline and a few pixels up or down of the detected outline swap skin for hair.
 */
const SIDE_OUTLINE = [93, 234, 127, 162, 21, 251, 389, 356, 454, 323] as const;

/**
 * How much harder the colour steps across the sides of the face outline are in `image` than in the
 * photo, in 8-bit levels.
 *
 * A seam is where the warped face meets pixels that did not move with it: the cheek cut off
 * against sky, the temple against hair from elsewhere, with an edge the photo does not have. For
 * every point of the outline's sides (as Face Mesh finds it in each image), the colour step across
 * the outline is the distance between the mean colours of two small patches a tenth of the face's
 * width inside and outside the outline, along the line from the face's centre. In the photo each
 * outline point has its own step (temple against hair, cheek against ear). When the head moves as
 * one body, the neighbourhood of each outline point is a warped copy of the photo's, and the step
 * stays about the same; when the face slides inside a head that stays put, its outline lands on
 * other surroundings and the steps there jump. Returned: the mean over the outline points of how
 * much the step grew (softer is not a seam, so a shrinking step counts 0).
 */
export function outlineStepGrowth(photo: RgbImage, photoFace: Face, image: RgbImage, face: Face): number {
  const before = outlineSteps(photo, photoFace);
  const after = outlineSteps(image, face);
  let sum = 0;
  for (let k = 0; k < before.length; k++) sum += Math.max(0, after[k]! - before[k]!);
  return sum / before.length;
}

/** The colour step across the face outline at each point of the outline's sides. */
export function outlineSteps(image: RgbImage, face: Face): number[] {
  let cx = 0,
    cy = 0;
  for (const i of FACE_OVAL) {
    cx += face.landmarks[3 * i]!;
    cy += face.landmarks[3 * i + 1]!;
  }
  cx /= FACE_OVAL.length;
  cy /= FACE_OVAL.length;
  const width = Math.hypot(
    face.landmarks[3 * 454]! - face.landmarks[3 * 234]!,
    face.landmarks[3 * 454 + 1]! - face.landmarks[3 * 234 + 1]!,
  );
  const reach = 0.1 * width;
  const half = Math.max(1, Math.round(0.025 * width));
  return SIDE_OUTLINE.map((i) => {
    const x = face.landmarks[3 * i]!,
      y = face.landmarks[3 * i + 1]!;
    const length = Math.max(1e-6, Math.hypot(x - cx, y - cy));
    const nx = (x - cx) / length,
      ny = (y - cy) / length;
    const inside = patchMean(image, x - nx * reach, y - ny * reach, half);
    const outside = patchMean(image, x + nx * reach, y + ny * reach, half);
    return Math.hypot(inside[0] - outside[0], inside[1] - outside[1], inside[2] - outside[2]);
  });
}

function patchMean(image: RgbImage, x: number, y: number, half: number): [number, number, number] {
  const sum: [number, number, number] = [0, 0, 0];
  let n = 0;
  const px = Math.round(x - 0.5),
    py = Math.round(y - 0.5);
  for (let v = py - half; v <= py + half; v++) {
    for (let u = px - half; u <= px + half; u++) {
      const cu = Math.min(image.width - 1, Math.max(0, u)),
        cv = Math.min(image.height - 1, Math.max(0, v));
      const o = (cv * image.width + cu) * 3;
      sum[0] += image.data[o]!;
      sum[1] += image.data[o + 1]!;
      sum[2] += image.data[o + 2]!;
      n++;
    }
  }
  return [sum[0] / n, sum[1] / n, sum[2] / n];
}
