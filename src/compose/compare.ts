import type { RgbImage } from '../types.js';

/** Where each panel of a comparison frame lies: source, driving, result, left to right. */
export interface CompareLayout {
  width: number;
  height: number;
  panels: { x: number; width: number }[];
}

/**
 * Layout of a source | driving | result frame at the result's height: the source and driving
 * frames are scaled to that height keeping their aspect ratio; the total width is padded with
 * black on the right to an even number (H.264 with 4:2:0 chroma needs even sizes).
 */
export function compareLayout(
  source: { width: number; height: number },
  driving: { width: number; height: number },
  result: { width: number; height: number },
): CompareLayout {
  const height = result.height;
  const widths = [scaledWidth(source, height), scaledWidth(driving, height), result.width];
  const panels: { x: number; width: number }[] = [];
  let x = 0;
  for (const width of widths) {
    panels.push({ x, width });
    x += width;
  }
  return { width: x + (x % 2), height, panels };
}

function scaledWidth(size: { width: number; height: number }, height: number): number {
  return Math.max(1, Math.round((size.width * height) / size.height));
}

/**
 * Builds comparison frames. The source panel is scaled once; each call scales the driving frame
 * and copies the three panels into a fresh frame.
 */
export class CompareComposer {
  readonly layout: CompareLayout;
  private readonly sourcePanel: RgbImage;

  constructor(source: RgbImage, driving: { width: number; height: number }, result: { width: number; height: number }) {
    this.layout = compareLayout(source, driving, result);
    this.sourcePanel = resizeBilinear(source, this.layout.panels[0]!.width, this.layout.height);
  }

  compose(driving: RgbImage, result: RgbImage): RgbImage {
    const { layout } = this;
    const [sourceAt, drivingAt, resultAt] = layout.panels as [
      CompareLayout['panels'][0],
      CompareLayout['panels'][0],
      CompareLayout['panels'][0],
    ];
    if (result.width !== resultAt.width || result.height !== layout.height) {
      throw new RangeError(
        `result frame is ${result.width}x${result.height}, expected ${resultAt.width}x${layout.height}`,
      );
    }
    const frame: RgbImage = {
      width: layout.width,
      height: layout.height,
      data: new Uint8Array(layout.width * layout.height * 3),
    };
    paste(frame, this.sourcePanel, sourceAt.x);
    paste(frame, resizeBilinear(driving, drivingAt.width, layout.height), drivingAt.x);
    paste(frame, result, resultAt.x);
    return frame;
  }
}

function paste(into: RgbImage, panel: RgbImage, x: number): void {
  const rowBytes = panel.width * 3;
  for (let y = 0; y < panel.height; y++) {
    into.data.set(panel.data.subarray(y * rowBytes, (y + 1) * rowBytes), (y * into.width + x) * 3);
  }
}

/**
 * Bilinear resize with pixel-centre alignment. Good for enlarging and for mild shrinking (the
 * comparison panels); it does not low-pass, so it aliases when shrinking by more than 2x.
 */
export function resizeBilinear(image: RgbImage, width: number, height: number): RgbImage {
  if (image.width === width && image.height === height) return image;
  const out = new Uint8Array(width * height * 3);
  const sx = image.width / width;
  const sy = image.height / height;
  const maxX = image.width - 1;
  const maxY = image.height - 1;
  // Column taps are the same for every row: compute them once.
  const x0s = new Int32Array(width);
  const x1s = new Int32Array(width);
  const wxs = new Float32Array(width);
  for (let x = 0; x < width; x++) {
    const fx = Math.min(maxX, Math.max(0, (x + 0.5) * sx - 0.5));
    const x0 = Math.floor(fx);
    x0s[x] = x0 * 3;
    x1s[x] = Math.min(maxX, x0 + 1) * 3;
    wxs[x] = fx - x0;
  }
  const src = image.data;
  for (let y = 0; y < height; y++) {
    const fy = Math.min(maxY, Math.max(0, (y + 0.5) * sy - 0.5));
    const y0 = Math.floor(fy);
    const wy = fy - y0;
    const r0 = y0 * image.width * 3;
    const r1 = Math.min(maxY, y0 + 1) * image.width * 3;
    let o = y * width * 3;
    for (let x = 0; x < width; x++) {
      const wx = wxs[x]!;
      const a = r0 + x0s[x]!;
      const b = r0 + x1s[x]!;
      const c = r1 + x0s[x]!;
      const d = r1 + x1s[x]!;
      for (let ch = 0; ch < 3; ch++, o++) {
        const top = src[a + ch]! + (src[b + ch]! - src[a + ch]!) * wx;
        const bottom = src[c + ch]! + (src[d + ch]! - src[c + ch]!) * wx;
        out[o] = top + (bottom - top) * wy + 0.5;
      }
    }
  }
  return { width, height, data: out };
}
