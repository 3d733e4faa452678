import sharp from 'sharp';
import type { Box, RgbImage } from '../types.js';

/** The words of the visible mark. */
export const LABEL_TEXT = 'AI-generated';

/** What every output's metadata says, whether or not the visible mark is drawn. */
export const SYNTHETIC_NOTICE =
  'AI-generated with reenact (synthetic video): a photo animated with the motion of a driving video. The person shown did not perform these movements.';

/** Container tags (MP4 comment and description) that mark an output as synthetic. */
export function syntheticMetadata(details: { model: string }): Record<string, string> {
  return {
    comment: `${SYNTHETIC_NOTICE} Model: ${details.model}.`,
    description: SYNTHETIC_NOTICE,
    encoded_by: 'reenact',
  };
}

/**
 * Single-stroke glyphs for the label's letters, in units where the cap height is 10 and the
 * baseline is y = 0. Drawn as paths rather than SVG text so the mark looks the same on every
 * machine: libvips renders text through fontconfig, and a slim container may have no fonts.
 */
const GLYPHS: Record<string, { advance: number; path: string }> = {
  A: { advance: 8.8, path: 'M0.3,0 L3.8,-10 L7.3,0 M1.6,-3.6 H6' },
  I: { advance: 3, path: 'M1.2,-10 V0' },
  '-': { advance: 4.6, path: 'M0.6,-4 H3.6' },
  g: {
    advance: 6.8,
    path: 'M0.2,-3.5 A2.5,3.4 0 1 0 5.2,-3.5 A2.5,3.4 0 1 0 0.2,-3.5 M5.2,-7 V0.8 A2.5,2.2 0 0 1 0.6,1.9',
  },
  e: { advance: 6.6, path: 'M0.2,-3.5 H5.2 A2.5,3.5 0 1 0 4.5,-1' },
  n: { advance: 6.8, path: 'M0.4,-7 V0 M0.4,-4.3 A2.4,2.6 0 0 1 5.2,-4.3 V0' },
  r: { advance: 4.6, path: 'M0.4,-7 V0 M0.4,-4 A3.2,3.2 0 0 1 3.8,-6.9' },
  a: { advance: 6.8, path: 'M0.2,-3.5 A2.5,3.4 0 1 0 5.2,-3.5 A2.5,3.4 0 1 0 0.2,-3.5 M5.2,-7 V0' },
  t: { advance: 4.6, path: 'M1.6,-9.4 V-1.6 A1.6,1.6 0 0 0 4,-0.2 M0,-7 H3.8' },
  d: { advance: 6.8, path: 'M0.2,-3.5 A2.5,3.4 0 1 0 5.2,-3.5 A2.5,3.4 0 1 0 0.2,-3.5 M5.2,-10 V0' },
};

/** A premultiplied RGBA patch and where it goes in the frame. */
export interface Label {
  /** Where the patch lies in the frame (bottom-right corner, inside the frame). */
  box: Box;
  /** Premultiplied colour per pixel, 0-255 per channel, width*height*3. */
  colour: Uint16Array;
  /** 255 minus alpha per pixel: how much of the frame shows through. */
  transparency: Uint16Array;
}

export interface LabelOptions {
  /** Height of the mark as a fraction of the frame height. Default 0.035. */
  relativeHeight?: number;
  /** Smallest height in pixels, so the words stay legible in small frames. Default 16. */
  minHeight?: number;
}

/** The SVG of the mark: a semi-transparent dark rounded box with light text. */
function labelSvg(height: number): { svg: string; width: number } {
  const unitsHigh = 18; // 4 padding + 10 cap + 3 descender + 1 padding
  const scale = height / unitsHigh;
  let x = 0;
  const strokes: string[] = [];
  for (const char of LABEL_TEXT) {
    const glyph = GLYPHS[char]!;
    strokes.push(`<path transform="translate(${x.toFixed(2)},0)" d="${glyph.path}"/>`);
    x += glyph.advance;
  }
  const padX = 4;
  const unitsWide = x + 2 * padX - 1;
  const width = Math.ceil(unitsWide * scale);
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${unitsWide.toFixed(2)} ${unitsHigh}">` +
    `<rect width="${unitsWide.toFixed(2)}" height="${unitsHigh}" rx="4" ry="4" fill="#000" fill-opacity="0.55"/>` +
    `<g transform="translate(${padX},14)" fill="none" stroke="#fff" stroke-opacity="0.92" stroke-width="1.45" stroke-linecap="round" stroke-linejoin="round">${strokes.join('')}</g>` +
    `</svg>`;
  return { svg, width };
}

/**
 * Renders the visible "AI-generated" mark once for a frame size, placed at the bottom-right with
 * a margin of half its height. Returns undefined for frames too small to hold it legibly.
 */
export async function createLabel(
  frameWidth: number,
  frameHeight: number,
  options: LabelOptions = {},
): Promise<Label | undefined> {
  const height = Math.max(options.minHeight ?? 16, Math.round(frameHeight * (options.relativeHeight ?? 0.035)));
  const { svg, width } = labelSvg(height);
  const margin = Math.round(height / 2);
  if (width + 2 * margin > frameWidth || height + 2 * margin > frameHeight) return undefined;
  const { data, info } = await sharp(Buffer.from(svg)).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  const pixels = info.width * info.height;
  const colour = new Uint16Array(pixels * 3);
  const transparency = new Uint16Array(pixels);
  for (let i = 0; i < pixels; i++) {
    const alpha = data[i * 4 + 3]!;
    transparency[i] = 255 - alpha;
    for (let ch = 0; ch < 3; ch++) colour[i * 3 + ch] = data[i * 4 + ch]! * alpha;
  }
  return {
    box: {
      x: frameWidth - margin - info.width,
      y: frameHeight - margin - info.height,
      width: info.width,
      height: info.height,
    },
    colour,
    transparency,
  };
}

/** Blends the mark into the frame in place: only the pixels under the patch are touched. */
export function drawLabel(frame: RgbImage, label: Label): void {
  const { box, colour, transparency } = label;
  const data = frame.data;
  for (let y = 0; y < box.height; y++) {
    let o = ((box.y + y) * frame.width + box.x) * 3;
    let p = y * box.width;
    for (let x = 0; x < box.width; x++, p++, o += 3) {
      const through = transparency[p]!;
      if (through === 255) continue;
      const c = p * 3;
      // (frame * (255 - alpha) + colour * alpha) / 255, rounded.
      data[o] = (data[o]! * through + colour[c]! + 127) / 255;
      data[o + 1] = (data[o + 1]! * through + colour[c + 1]! + 127) / 255;
      data[o + 2] = (data[o + 2]! * through + colour[c + 2]! + 127) / 255;
    }
  }
}
