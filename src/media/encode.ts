import type { ChildProcess } from 'node:child_process';
import type { Writable } from 'node:stream';
import { ReenactError } from '../errors.js';
import { PendingOutput, writeAtomically } from '../output.js';
import type { RgbImage } from '../types.js';
import { StderrTail, ffmpegFailed, fpsRational, runFfmpeg, spawnTool, waitForExit } from './ffmpeg.js';
import { hasAudioStream, probeVideo } from './probe.js';

export interface AudioSource {
  /** A video or audio file whose first audio track is copied into the output (re-encoded as AAC). */
  path: string;
  /** Seconds into the source where the output's audio starts. */
  startTime?: number;
  /** Seconds of audio to take at most. */
  duration?: number;
}

export interface EncoderOptions {
  width: number;
  height: number;
  fps: number;
  /** Audio for the output, usually the driving video's; a source without audio gives a silent output. */
  audioFrom?: AudioSource;
  /** Tags written into the MP4 (e.g. comment, description, or custom keys). */
  metadata?: Record<string, string>;
  /** x264 constant rate factor: lower is better and bigger. Default 18 (visually lossless). */
  crf?: number;
  /** x264 preset. Default "medium". */
  preset?: string;
  /**
   * x264's threads. Default: x264's own choice (1.5 per core, frames encoded in parallel). One
   * thread costs ~10% less CPU a frame (no frame threads to synchronise) and still encodes
   * ~50 frames a second at 586x586 "veryfast", for callers that keep the other cores busy.
   */
  threads?: number;
}

const PRESETS = new Set([
  'ultrafast',
  'superfast',
  'veryfast',
  'faster',
  'fast',
  'medium',
  'slow',
  'slower',
  'veryslow',
  'placebo',
]);

function checkOptions(options: EncoderOptions): void {
  const { width, height, fps } = options;
  for (const [name, value] of [
    ['width', width],
    ['height', height],
  ] as const) {
    if (!(Number.isInteger(value) && value > 0)) {
      throw new ReenactError(
        'BAD_ARGUMENT',
        `The video ${name} must be a positive whole number, not ${value}.`,
        `Round the ${name} to an even number of pixels.`,
      );
    }
    if (value % 2 !== 0) {
      throw new ReenactError(
        'BAD_ARGUMENT',
        `The video ${name} ${value} is odd; H.264 in yuv420p needs even dimensions.`,
        `Round the ${name} to an even number (for example ${value + 1}).`,
      );
    }
  }
  if (!(Number.isFinite(fps) && fps > 0 && fps <= 1000)) {
    throw new ReenactError(
      'BAD_ARGUMENT',
      `The frame rate must be more than 0, not ${fps}.`,
      "Use the driving video's frame rate, for example 30.",
    );
  }
  if (options.crf !== undefined && !(options.crf >= 0 && options.crf <= 51)) {
    throw new ReenactError(
      'BAD_ARGUMENT',
      `crf must be between 0 and 51, not ${options.crf}.`,
      'Use 18 for visually lossless, 23 for smaller files.',
    );
  }
  if (options.threads !== undefined && !(Number.isInteger(options.threads) && options.threads >= 1)) {
    throw new ReenactError(
      'BAD_ARGUMENT',
      `The encoder's threads must be a whole number of 1 or more, not ${options.threads}.`,
      "Leave it out for x264's own choice.",
    );
  }
  if (options.preset !== undefined && !PRESETS.has(options.preset)) {
    throw new ReenactError(
      'BAD_ARGUMENT',
      `"${options.preset}" is not an x264 preset.`,
      `Use one of: ${[...PRESETS].join(', ')}.`,
    );
  }
  const audio = options.audioFrom;
  if (audio && ((audio.startTime ?? 0) < 0 || (audio.duration !== undefined && !(audio.duration > 0)))) {
    throw new ReenactError(
      'BAD_ARGUMENT',
      `The audio range (start ${audio.startTime}, duration ${audio.duration}) is not valid.`,
      'Give a start of 0 or more seconds and a positive duration.',
    );
  }
}

/** `-metadata key=value` pairs; keys are restricted so they cannot be read as other options. */
function metadataArgs(metadata: Record<string, string> | undefined): string[] {
  const args: string[] = [];
  for (const [key, value] of Object.entries(metadata ?? {})) {
    if (!/^[A-Za-z0-9_.-]+$/.test(key)) {
      throw new ReenactError(
        'BAD_ARGUMENT',
        `The metadata key "${key}" is not allowed.`,
        'Use letters, digits, "_", "." and "-" in metadata keys.',
      );
    }
    args.push('-metadata', `${key}=${value}`);
  }
  return args;
}

/** Input arguments for an audio source with its range, or none when it holds no audio. */
async function audioInputArgs(audio: AudioSource | undefined): Promise<string[]> {
  if (!audio) return [];
  // An audio-only file is a fine source too, so this checks streams rather than probing a video.
  if (!(await hasAudioStream(audio.path))) return [];
  const args: string[] = [];
  if (audio.startTime) args.push('-ss', String(audio.startTime));
  if (audio.duration !== undefined) args.push('-t', String(audio.duration));
  return [...args, '-i', audio.path];
}

/**
 * Audio from input 1, re-encoded as AAC and padded with silence so that `-shortest` always ends
 * the file with the video: a shorter audio track never cuts the video, a longer one is cut.
 */
const AUDIO_OUTPUT_ARGS = ['-map', '1:a:0?', '-c:a', 'aac', '-b:a', '160k', '-af', 'apad', '-shortest'];

/**
 * Writes RGB frames as an H.264 (yuv420p) MP4 with the index at the front (+faststart), optional
 * audio from another file, and metadata tags. Frames stream into ffmpeg's stdin; write() waits
 * until ffmpeg has taken the frame, so a fast producer never piles frames up in memory. The file appears at
 * outputPath only when finish() succeeds; abort() or a failure leaves nothing behind.
 */
export class VideoEncoder {
  private readonly stderr: StderrTail;
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly stdin: Writable;
  private framesWritten = 0;
  private state: 'open' | 'finished' | 'aborted' = 'open';
  /** Settles the write in flight; ffmpeg's exit settles it as failed. */
  private settleWrite: ((ok: boolean) => void) | undefined;

  private constructor(
    private readonly child: ChildProcess,
    private readonly output: PendingOutput,
    readonly options: Readonly<EncoderOptions>,
  ) {
    this.stderr = new StderrTail().attach(child);
    this.exited = waitForExit(child);
    // One handler for the encoder's lifetime: a per-write race against `exited` would keep every
    // written frame reachable from that promise until ffmpeg exits.
    this.exited.then(
      () => this.settleWrite?.(false),
      () => this.settleWrite?.(false),
    );
    this.stdin = child.stdin as Writable;
    // A write after ffmpeg died fails with EPIPE; the exit status and stderr explain it instead.
    this.stdin.on('error', () => {});
  }

  static async create(outputPath: string, options: EncoderOptions): Promise<VideoEncoder> {
    checkOptions(options);
    const metadata = metadataArgs(options.metadata);
    const audioInput = await audioInputArgs(options.audioFrom);
    const output = await PendingOutput.create(outputPath);
    const args = [
      '-hide_banner',
      '-nostdin',
      '-v',
      'error',
      '-y',
      '-f',
      'rawvideo',
      '-pix_fmt',
      'rgb24',
      '-s',
      `${options.width}x${options.height}`,
      '-framerate',
      fpsRational(options.fps),
      '-i',
      'pipe:0',
      ...audioInput,
      '-map',
      '0:v:0',
      '-c:v',
      'libx264',
      '-preset',
      options.preset ?? 'medium',
      '-crf',
      String(options.crf ?? 18),
      ...(options.threads ? ['-threads', String(options.threads)] : []),
      '-pix_fmt',
      'yuv420p',
      // Full-range RGB in, limited-range BT.601 out: the tags say so, so players convert back correctly.
      '-colorspace',
      'bt470bg',
      '-color_primaries',
      'bt470bg',
      '-color_trc',
      'iec61966-2-1',
      '-color_range',
      'tv',
      ...(audioInput.length ? AUDIO_OUTPUT_ARGS : []),
      ...metadata,
      '-movflags',
      '+faststart+use_metadata_tags',
      '-f',
      'mp4',
      output.tempPath,
    ];
    let child: ChildProcess;
    try {
      child = spawnTool('ffmpeg', args, { stdio: ['pipe', 'ignore', 'pipe'] });
    } catch (error) {
      await output.discard();
      throw error;
    }
    return new VideoEncoder(child, output, options);
  }

  /** Frames written so far. */
  get frameCount(): number {
    return this.framesWritten;
  }

  async write(frame: RgbImage): Promise<void> {
    if (this.state !== 'open')
      throw new ReenactError(
        'BAD_ARGUMENT',
        `write() after ${this.state === 'finished' ? 'finish()' : 'abort()'}.`,
        'Create a new VideoEncoder for another video.',
      );
    const { width, height } = this.options;
    if (frame.width !== width || frame.height !== height || frame.data.length !== width * height * 3) {
      throw new ReenactError(
        'BAD_ARGUMENT',
        `A ${frame.width}x${frame.height} frame (${frame.data.length} bytes) was written to a ${width}x${height} video.`,
        `Resize frames to ${width}x${height} RGB (${width * height * 3} bytes) before writing.`,
      );
    }
    if (this.child.exitCode !== null || this.child.signalCode !== null) await this.failed();
    this.framesWritten++;
    // Resolve only once the pipe has taken every byte: the caller may then reuse the buffer, and a
    // producer faster than x264 waits here instead of queueing frames. A dead ffmpeg fails the write.
    const written = await new Promise<boolean>((resolve) => {
      this.settleWrite = resolve;
      this.stdin.write(frame.data, (error) => resolve(!error));
    });
    this.settleWrite = undefined;
    if (!written) await this.failed();
  }

  /** Closes the stream, waits for ffmpeg to write the file, and moves it into place. */
  async finish(): Promise<void> {
    if (this.state !== 'open')
      throw new ReenactError(
        'BAD_ARGUMENT',
        `finish() after ${this.state === 'finished' ? 'finish()' : 'abort()'}.`,
        'Call finish() once.',
      );
    if (this.framesWritten === 0) {
      await this.abort();
      throw new ReenactError(
        'NO_FRAMES',
        `No frames were written to ${this.output.finalPath}, so no video was made.`,
        'Write at least one frame before finish().',
      );
    }
    this.stdin.end();
    const { code } = await this.exited.catch(() => ({ code: -1 }));
    if (code !== 0) await this.failed();
    this.state = 'finished';
    await this.output.commit();
  }

  /** Stops ffmpeg and removes the partial file. Safe to call more than once. */
  async abort(): Promise<void> {
    if (this.state === 'finished') return;
    this.state = 'aborted';
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited.catch(() => {});
    await this.output.discard();
  }

  private async failed(): Promise<never> {
    await this.abort();
    throw ffmpegFailed(`encoding ${this.output.finalPath}`, this.stderr);
  }
}

export interface CopyAudioOptions {
  startTime?: number;
  duration?: number;
  /** Aborting kills ffmpeg; CANCELLED is thrown and no output is left. */
  signal?: AbortSignal;
}

/**
 * Puts the audio of `audioSourcePath` (from startTime, at most duration seconds) into a finished
 * video, keeping its picture and metadata untouched; the result has the video's length. Writes
 * `outputPath` atomically (it may not be `videoPath`).
 */
export async function copyAudio(
  videoPath: string,
  audioSourcePath: string,
  outputPath: string,
  options: CopyAudioOptions = {},
): Promise<void> {
  await probeVideo(videoPath);
  const audioInput = await audioInputArgs({
    path: audioSourcePath,
    startTime: options.startTime,
    duration: options.duration,
  });
  await writeAtomically(
    outputPath,
    async (tempPath) => {
      await runFfmpeg(
        [
          '-y',
          '-i',
          videoPath,
          ...audioInput,
          '-map',
          '0:v:0',
          '-c:v',
          'copy',
          '-map_metadata',
          '0',
          ...(audioInput.length ? AUDIO_OUTPUT_ARGS : []),
          '-movflags',
          '+faststart+use_metadata_tags',
          '-f',
          'mp4',
          tempPath,
        ],
        `adding audio from ${audioSourcePath} to ${videoPath}`,
        { signal: options.signal },
      );
    },
    options.signal,
  );
}
