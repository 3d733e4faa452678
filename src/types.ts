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

/**
 * The steps long operations report: animate's ('prepare', then 'track' for fomm, 'best frame' or
 * 'start frame' when a reference frame is searched for, then 'animate'), findFaceTracks's 'track'
 * and cropDrivingVideo's 'crop'.
 */
export type ProgressStage = 'prepare' | 'track' | 'best frame' | 'start frame' | 'animate' | 'crop';

/** What a long operation reports while it runs; `Stage`: the stages that operation emits. */
export interface ProgressEvent<Stage extends ProgressStage = ProgressStage> {
  stage: Stage;
  done: number;
  /** Undefined where the total is not known in advance. */
  total?: number;
}

export type ProgressCallback<Stage extends ProgressStage = ProgressStage> = (event: ProgressEvent<Stage>) => void;
