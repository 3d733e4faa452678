import { invalidOption, ReenactError } from '../errors.js';
import type { Face } from '../face/detector.js';
import { rollDegrees } from '../face/landmarks.js';
import type { RgbImage } from '../types.js';
import {
  type Affine,
  compose,
  invert,
  rotation,
  scaling,
  transformedBounds,
  translation,
  warpAffine,
} from './affine.js';

/** Side of the model-ready crop (the FOMM vox models take 256x256). */
export const DEFAULT_CROP_SIZE = 256;

/**
 * Side of the square crop as a multiple of the face's extent (the larger of the landmark
 * mesh's width and height, measured upright). The mesh runs from the hairline to the chin;
 * at 1.9 the crop holds the hair above it and the neck below, and the face fills about the
 * same share of the frame as in the FOMM VoxCeleb crops and the driving clips cut by
 * `crop-video` (checked on both fixture portraits: short spiky hair and long hair both fit).
 */
export const DEFAULT_CROP_SCALE = 1.9;

/** The crop centre sits this fraction of the crop side above the mesh centre, to fit the hair. */
const HAIR_SHIFT = 0.08;

/** Landmarks of the face oval proper (the mesh's first 468 points, irises excluded). */
const MESH_POINTS = 468;

export interface AlignOptions {
  /** Side of the output crop in pixels. Default 256. */
  size?: number;
  /** Crop side as a multiple of the face extent. Default DEFAULT_CROP_SCALE. */
  cropScale?: number;
}

export interface UprightFrame {
  /** Size of the canvas holding the whole photo rotated upright (grown, nothing cut off). */
  width: number;
  height: number;
  photoToUpright: Affine;
}

export interface SourceAlignment {
  /** Head roll in the photo, degrees (rollDegrees of the face). */
  roll: number;
  /** The face the crop was made around, in photo coordinates. */
  face: Face;
  /** size x size, face upright, sampled once from the photo. */
  crop: RgbImage;
  cropToPhoto: Affine;
  photoToCrop: Affine;
  upright: UprightFrame;
}

/**
 * The transform rotating a width x height photo by -roll degrees about its centre onto a canvas
 * grown to the rotated bounding box, so that no pixel is cut off.
 */
export function uprightFrame(width: number, height: number, roll: number): UprightFrame {
  const rotate = compose(rotation(-roll), translation(-width / 2, -height / 2));
  const bounds = transformedBounds(rotate, width, height);
  // Round away float noise so an unrotated photo keeps its exact size.
  const grownWidth = Math.ceil(bounds.x1 - bounds.x0 - 1e-6);
  const grownHeight = Math.ceil(bounds.y1 - bounds.y0 - 1e-6);
  return {
    width: grownWidth,
    height: grownHeight,
    photoToUpright: compose(translation(grownWidth / 2, grownHeight / 2), rotate),
  };
}

/**
 * The whole photo rotated by -roll so the eye line is horizontal. The corners the rotation
 * uncovers repeat the nearest edge pixels rather than showing black.
 */
export function rotateUpright(photo: RgbImage, roll: number): { image: RgbImage; photoToUpright: Affine } {
  const frame = uprightFrame(photo.width, photo.height, roll);
  const { image } = warpAffine(photo, invert(frame.photoToUpright), frame.width, frame.height);
  return { image, photoToUpright: frame.photoToUpright };
}

/**
 * Cuts the model-ready crop: the face upright (roll removed), centred, with hair and chin, at
 * size x size. Photo -> upright -> crop is composed into one affine, so the crop is sampled once
 * from the original pixels; where the square runs past the photo, edge pixels are repeated.
 */
export function alignSource(photo: RgbImage, face: Face, options: AlignOptions = {}): SourceAlignment {
  const size = options.size ?? DEFAULT_CROP_SIZE;
  const cropScale = options.cropScale ?? DEFAULT_CROP_SCALE;
  if (!Number.isInteger(size) || size < 16 || size > 4096) {
    throw invalidOption('size', 'a whole number of pixels from 16 to 4096', size, 'The models take 256.');
  }
  if (!(cropScale >= 0.5 && cropScale <= 10)) {
    throw invalidOption('cropScale', 'a number from 0.5 to 10', cropScale, `The default is ${DEFAULT_CROP_SCALE}.`);
  }
  const roll = rollDegrees(face);
  const upright = uprightFrame(photo.width, photo.height, roll);

  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -Infinity;
  let y1 = -Infinity;
  const t = upright.photoToUpright;
  for (let i = 0; i < MESH_POINTS; i++) {
    const x = face.landmarks[i * 3]!;
    const y = face.landmarks[i * 3 + 1]!;
    const ux = t.a * x + t.b * y + t.c;
    const uy = t.d * x + t.e * y + t.f;
    if (ux < x0) x0 = ux;
    if (ux > x1) x1 = ux;
    if (uy < y0) y0 = uy;
    if (uy > y1) y1 = uy;
  }
  const side = cropScale * Math.max(x1 - x0, y1 - y0);
  const centreX = (x0 + x1) / 2;
  const centreY = (y0 + y1) / 2 - HAIR_SHIFT * side;
  const uprightToCrop = compose(scaling(size / side), translation(side / 2 - centreX, side / 2 - centreY));
  const photoToCrop = compose(uprightToCrop, upright.photoToUpright);
  const cropToPhoto = invert(photoToCrop);
  const { image: crop } = warpAffine(photo, cropToPhoto, size, size);
  return { roll, face, crop, cropToPhoto, photoToCrop, upright };
}

/**
 * The face to animate: the largest (detect returns largest first) unless `index` picks another.
 * `source` names the photo in messages.
 */
export function chooseFace(faces: Face[], index?: number, source = 'the photo'): Face {
  if (faces.length === 0) {
    throw new ReenactError(
      'NO_FACE',
      `no face found in ${source}.`,
      'Use a photo where the face is clearly visible, frontal, well lit, at least ~80 px wide.',
    );
  }
  const chosen = index === undefined ? faces[0] : Number.isInteger(index) ? faces[index] : undefined;
  if (!chosen) {
    const count = faces.length === 1 ? '1 face' : `${faces.length} faces`;
    throw new ReenactError(
      'FACE_INDEX',
      `${source} has ${count}; \`face\` must be 0..${faces.length - 1}.`,
      'Run `reenact inspect` on the photo to see the faces and their numbers.',
    );
  }
  return chosen;
}
