import type { Point } from '../types.js';
import type { Face } from './detector.js';

/**
 * Named MediaPipe Face Mesh landmark indices. "Image-left" and "image-right" are as seen
 * in the picture (the subject's right eye is on the image's left).
 */
export const LANDMARKS = {
  noseTip: 1,
  upperInnerLip: 13,
  lowerInnerLip: 14,
  mouthLeftCorner: 61,
  mouthRightCorner: 291,
  chin: 152,
  foreheadTop: 10,
  imageLeftEyeOuter: 33,
  imageLeftEyeInner: 133,
  imageRightEyeInner: 362,
  imageRightEyeOuter: 263,
  /** Iris centres (Human appends the image-right iris first). */
  imageRightIris: 468,
  imageLeftIris: 473,
} as const;

/** Eye contours (upper and lower lids), used where the iris is unreliable (closed eyes). */
export const IMAGE_LEFT_EYE_CONTOUR = [
  33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246,
] as const;
export const IMAGE_RIGHT_EYE_CONTOUR = [
  263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466,
] as const;

export function landmark(face: Face, index: number): Point {
  return { x: face.landmarks[index * 3]!, y: face.landmarks[index * 3 + 1]! };
}

function mean(face: Face, indices: readonly number[]): Point {
  let x = 0;
  let y = 0;
  for (const i of indices) {
    x += face.landmarks[i * 3]!;
    y += face.landmarks[i * 3 + 1]!;
  }
  return { x: x / indices.length, y: y / indices.length };
}

/** Centres of both eyes (mean of each eye's lid contour: stable whether the eye is open or shut). */
export function eyeCentres(face: Face): { imageLeft: Point; imageRight: Point } {
  return { imageLeft: mean(face, IMAGE_LEFT_EYE_CONTOUR), imageRight: mean(face, IMAGE_RIGHT_EYE_CONTOUR) };
}

/**
 * Head roll in degrees: the angle of the line from the image-left eye to the image-right eye
 * against the horizontal, positive when that line runs downwards (clockwise in image coordinates).
 */
export function rollDegrees(face: Face): number {
  const { imageLeft, imageRight } = eyeCentres(face);
  return (Math.atan2(imageRight.y - imageLeft.y, imageRight.x - imageLeft.x) * 180) / Math.PI;
}
