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
  /** Head roll in degrees, as `measureRoll` finds it. Default: `rollDegrees(face)`, one detector reading. */
  roll?: number;
}

export interface UprightFrame {
  /** Size of the canvas holding the whole photo rotated upright (grown, nothing cut off). */
  width: number;
  height: number;
  photoToUpright: Affine;
}

export interface SourceAlignment {
  /** Head roll in the photo, degrees (the `roll` option, or rollDegrees of the face). */
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
  const roll = options.roll ?? rollDegrees(face);
  if (!Number.isFinite(roll)) throw invalidOption('roll', 'a finite number of degrees', roll);
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

/** `measureRoll` stops once the detector reads the straightened face within this many degrees of level. */
const LEVEL_TOLERANCE = 0.2;
/** Detector readings `measureRoll` takes at most after the first one. */
const ROLL_ROUNDS = 3;
/** The straightened view `measureRoll` detects in: this many face-box sides, at most VIEW_SIZE pixels. */
const VIEW_SIDES = 2;
const VIEW_SIZE = 512;

/**
 * The head's roll, found by straightening: the face is rotated by the roll read so far and
 * detected again, until the detector reads it level. One reading is not enough because the
 * landmark models are not rotation-equivariant: they pull a tilted face's eye line towards level
 * (portrait-outdoor.jpg turned by 12 degrees reads 9.9 more, not 12; straightened, within 0.4 of 12), while near level they
 * agree with themselves, so the roll that leaves the face level is the same however the photo
 * was turned.
 */
export async function measureRoll(
  photo: RgbImage,
  face: Face,
  detect: (image: RgbImage) => Promise<Face[]>,
): Promise<number> {
  let roll = rollDegrees(face);
  const centre = { x: face.box.x + face.box.width / 2, y: face.box.y + face.box.height / 2 };
  const side = VIEW_SIDES * Math.max(face.box.width, face.box.height);
  const size = Math.max(16, Math.min(VIEW_SIZE, Math.round(side)));
  for (let round = 0; round < ROLL_ROUNDS; round++) {
    const photoToView = compose(
      translation(size / 2, size / 2),
      scaling(size / side),
      rotation(-roll),
      translation(-centre.x, -centre.y),
    );
    const { image } = warpAffine(photo, invert(photoToView), size, size);
    const [level] = await detect(image);
    if (!level) break;
    const residual = rollDegrees(level);
    roll += residual;
    if (Math.abs(residual) < LEVEL_TOLERANCE) break;
  }
  return roll;
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
