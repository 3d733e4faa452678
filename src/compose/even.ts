import type { RgbImage } from '../types.js';

/**
 * H.264 with 4:2:0 chroma needs even frame sizes. Outputs take the photo's size rounded DOWN to
 * even: an odd last column or row is dropped (a 587x586 photo gives 586x586). Cropping one pixel
 * keeps every remaining pixel exactly where it was in the photo, so photo coordinates (faces,
 * alignments) stay valid and the background matches the photo pixel for pixel; padding would
 * add a column that was never in the picture.
 */
export function evenSize(size: { width: number; height: number }): { width: number; height: number } {
  return { width: size.width - (size.width % 2), height: size.height - (size.height % 2) };
}

/** The image with an odd last column and/or row dropped; the same object when already even. */
export function cropToEven(image: RgbImage): RgbImage {
  const { width, height } = evenSize(image);
  if (width === image.width && height === image.height) return image;
  if (width < 2 || height < 2) throw new RangeError(`a ${image.width}x${image.height} image is too small for video`);
  const data = new Uint8Array(width * height * 3);
  const rowBytes = width * 3;
  for (let y = 0; y < height; y++)
    data.set(image.data.subarray(y * image.width * 3, y * image.width * 3 + rowBytes), y * rowBytes);
  return { width, height, data };
}
