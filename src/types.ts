/** An 8-bit RGB image, rows top to bottom, 3 bytes per pixel, no padding. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** A decoded video frame. */
export interface VideoFrame extends RgbImage {
  /** 0-based position in the stream. */
  index: number;
  /** Presentation time in seconds. */
  time: number;
}

export interface Point {
  x: number;
  y: number;
}

/** Axis-aligned box in pixels: top-left corner and size. */
export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** What a long operation reports while it runs. */
export interface ProgressEvent {
  /** A short name of the step, e.g. "decode", "track", "animate". */
  stage: string;
  done: number;
  /** Undefined where the total is not known in advance. */
  total?: number;
}

export type ProgressCallback = (event: ProgressEvent) => void;
