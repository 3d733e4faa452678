import { rm } from 'node:fs/promises';
import { createLabel, drawLabel, syntheticMetadata, type Label } from '../compose/label.js';
import { writeCredential, type WrittenCredential } from '../provenance/credential.js';
import { WatermarkEmbedder } from '../provenance/embed.js';
import { FORMAT_VERSION, newContentId } from '../provenance/payload.js';
import type { RgbImage } from '../types.js';
import type { MotionModelName } from './animate.js';

export interface SyntheticMarksOptions {
  model: MotionModelName;
  /** Draw the visible "AI-generated" mark. Default true. */
  label?: boolean;
  /** Embed the invisible watermark. Default true. */
  watermark?: boolean;
  /** The watermark's content id; default: a random one. */
  contentId?: string;
}

/**
 * What marks every frame of an output as synthetic, for frames of one size: the invisible
 * watermark (first, so it depends on the picture alone, the same with or without the label),
 * then the visible mark; and the MP4 tags that say the same. animate and the studio's live
 * mode (its view and its recordings) mark their frames with it.
 */
export class SyntheticMarks {
  private constructor(
    private readonly model: MotionModelName,
    private readonly label: Label | undefined,
    private readonly embedder: WatermarkEmbedder | undefined,
    /** The content id in the watermark and the metadata; undefined without a watermark. */
    readonly contentId: string | undefined,
  ) {}

  static async create(width: number, height: number, options: SyntheticMarksOptions): Promise<SyntheticMarks> {
    const label = (options.label ?? true) ? await createLabel(width, height) : undefined;
    const contentId = (options.watermark ?? true) ? (options.contentId ?? newContentId()) : undefined;
    const embedder = contentId
      ? new WatermarkEmbedder(width, height, { version: FORMAT_VERSION, model: options.model, contentId })
      : undefined;
    return new SyntheticMarks(options.model, label, embedder, contentId);
  }

  /** Whether the visible mark is drawn (frames too small to hold it legibly get none). */
  get labelled(): boolean {
    return this.label !== undefined;
  }

  /** Marks `frame` in place; `seconds` is its time in the video (the watermark's modulation follows it). */
  apply(frame: RgbImage, seconds: number): void {
    this.embedder?.mark(frame, seconds);
    if (this.label) drawLabel(frame, this.label);
  }

  /** The MP4 tags of an output marked by these. */
  metadata(): Record<string, string> {
    return {
      ...syntheticMetadata({ model: this.model }),
      ...(this.contentId ? { reenact_content_id: this.contentId } : {}),
    };
  }

  /**
   * Writes the content credential of a finished `video` made from the photo `source`; the
   * credential hashes the file (embedded in an MP4, else a sidecar), and without it the video is
   * not kept either.
   */
  credential(video: string, source: string): Promise<WrittenCredential> {
    return writeCredential({
      video,
      source,
      model: this.model,
      ...(this.contentId ? { contentId: this.contentId } : {}),
    }).catch(async (error: unknown) => {
      await rm(video, { force: true });
      throw error;
    });
  }
}
