import { stat } from 'node:fs/promises';
import { ReenactError } from '../errors.js';
import { runTool } from './ffmpeg.js';
import { assertFile } from './image.js';

export interface VideoInfo {
  path: string;
  /** Display size: the coded size with any rotation metadata applied. */
  width: number;
  height: number;
  /** Frames per second; 0 when the container states none or a bogus one (see needsRepair). */
  fps: number;
  /** Number of video frames; 0 when unknown (see needsRepair). */
  frameCount: number;
  /** Seconds; 0 when the container states none (see needsRepair). */
  duration: number;
  hasAudio: boolean;
  videoCodec: string;
  audioCodec?: string;
  /** Clockwise rotation in degrees (0, 90, 180, 270) that players apply; decoding applies it too. */
  rotation: number;
  /**
   * True when the container lacks a duration, a frame count or a believable frame rate (as the
   * browser's MediaRecorder WebM does): frame-accurate use needs repairRecording() first.
   */
  needsRepair: boolean;
  /** Why needsRepair is set, for messages. */
  repairReason?: string;
  /** Container format as ffprobe names it, e.g. "mov,mp4,m4a,3gp,3g2,mj2" or "matroska,webm". */
  format?: string;
}

/** Counting packets reads (but does not decode) the whole file: cheap below this size. */
const COUNT_PACKETS_MAX_BYTES = 4 * 1024 ** 3;

/** Containers that hold a still picture, not a video. */
const IMAGE_FORMATS = /(^|,)(image2|[a-z0-9]+_pipe|webp|gif_pipe)(,|$)/;

interface ProbeStream {
  index: number;
  codec_type?: string;
  codec_name?: string;
  width?: number;
  height?: number;
  r_frame_rate?: string;
  avg_frame_rate?: string;
  nb_frames?: string;
  nb_read_packets?: string;
  duration?: string;
  disposition?: { attached_pic?: number };
  tags?: Record<string, string>;
  side_data_list?: { side_data_type?: string; rotation?: number }[];
}

interface ProbeOutput {
  streams?: ProbeStream[];
  format?: { format_name?: string; duration?: string; size?: string };
}

function parseRate(rate: string | undefined): number {
  if (!rate) return 0;
  // split always yields the numerator; a missing denominator means a plain number.
  const [num = Number.NaN, den] = rate.split('/').map(Number);
  const value = den === undefined ? num : den === 0 ? 0 : num / den;
  return Number.isFinite(value) && value > 0 ? value : 0;
}

function parseNumber(text: string | undefined): number {
  const value = Number(text);
  return text !== undefined && text !== 'N/A' && Number.isFinite(value) && value > 0 ? value : 0;
}

/** Rotation players apply, normalised to 0/90/180/270 clockwise. */
function rotationOf(stream: ProbeStream): number {
  const matrix = stream.side_data_list?.find((entry) => entry.rotation !== undefined);
  // The display matrix gives counter-clockwise degrees; the legacy "rotate" tag gives clockwise.
  const clockwise = matrix?.rotation !== undefined ? -matrix.rotation : Number(stream.tags?.rotate ?? 0);
  const normalised = (((Math.round(clockwise / 90) * 90) % 360) + 360) % 360;
  return Number.isFinite(normalised) ? normalised : 0;
}

/** A frame rate a real camera or encoder would use; MediaRecorder WebM reports its 1 ms time base (1000/1). */
function plausibleFps(fps: number): boolean {
  return fps >= 1 && fps <= 240;
}

async function ffprobe(path: string, countPackets: boolean): Promise<ProbeOutput> {
  const args = ['-v', 'error', '-print_format', 'json', '-show_format', '-show_streams'];
  if (countPackets) args.push('-count_packets');
  const result = await runTool('ffprobe', [...args, '-i', path]);
  const message = result.stderr.lines(3);
  if (result.code !== 0) {
    if (/Invalid data found|could not find codec|Unknown format|does not contain any stream/i.test(message)) {
      throw new ReenactError(
        'NOT_MEDIA',
        `${path} is not a video file ffmpeg can read (${message}).`,
        'Use a video file such as MP4, MOV, WebM or MKV.',
      );
    }
    if (/moov atom not found|partial file|End of file|truncat|corrupt/i.test(message)) {
      throw corrupt(path, message);
    }
    throw new ReenactError(
      'NOT_MEDIA',
      `${path} could not be read as a video (${message || `ffprobe exit code ${result.code}`}).`,
      'Use a video file such as MP4, MOV, WebM or MKV.',
    );
  }
  try {
    return JSON.parse(result.stdout) as ProbeOutput;
  } catch (cause) {
    throw new ReenactError(
      'FFMPEG_FAILED',
      `ffprobe printed output reenact cannot parse for ${path}.`,
      'Check that FFPROBE_PATH points at a working ffprobe.',
      { cause },
    );
  }
}

function corrupt(path: string, detail: string): ReenactError {
  return new ReenactError(
    'CORRUPT_MEDIA',
    `${path} is truncated or damaged (${detail}).`,
    'Copy or export the video again; if it came from a recorder that was interrupted, record it again.',
  );
}

interface Inspected {
  format: string;
  duration: number;
  video?: ProbeStream;
  audio?: ProbeStream;
}

/**
 * Runs ffprobe and applies the checks every media input needs: a readable, non-image file whose
 * streams hold as many packets as their headers promise (fewer means it was cut short).
 */
async function inspect(path: string): Promise<Inspected> {
  await assertFile(path);
  const size = (await stat(path)).size;
  const probed = await ffprobe(path, size <= COUNT_PACKETS_MAX_BYTES);
  const format = probed.format?.format_name ?? '';
  const streams = probed.streams ?? [];
  const video = streams.find((stream) => stream.codec_type === 'video' && !stream.disposition?.attached_pic);
  const audio = streams.find((stream) => stream.codec_type === 'audio');
  if (IMAGE_FORMATS.test(format) || (video && format === 'tty')) {
    throw new ReenactError(
      'NOT_MEDIA',
      `${path} is ${format === 'tty' ? 'text' : 'a still image'} (${format}), not a video.`,
      'Give a video file (MP4, MOV, WebM, MKV) as the driving video.',
    );
  }
  for (const stream of [video, audio]) {
    const declared = parseNumber(stream?.nb_frames);
    const read = stream?.nb_read_packets === undefined ? undefined : Number(stream.nb_read_packets);
    // An MP4 header lists every frame; reading fewer means the data after some point is missing.
    if (read !== undefined && declared > 0 && read < declared) {
      throw corrupt(path, `the header lists ${declared} ${stream!.codec_type} frames but only ${read} are present`);
    }
  }
  return {
    format,
    duration: parseNumber(probed.format?.duration),
    ...(video ? { video } : {}),
    ...(audio ? { audio } : {}),
  };
}

/** Whether a media file (video or audio-only) has an audio stream; throws as probeVideo does for unreadable files. */
export async function hasAudioStream(path: string): Promise<boolean> {
  return (await inspect(path)).audio !== undefined;
}

/**
 * Reads what a video holds without decoding it. Throws FILE_NOT_FOUND, NOT_MEDIA (not a video
 * at all, or a still image), CORRUPT_MEDIA (truncated: fewer packets than the header promises)
 * or NO_FRAMES (no video stream, or an empty one).
 */
export async function probeVideo(path: string): Promise<VideoInfo> {
  const { format, video, audio, duration: formatDuration } = await inspect(path);
  if (!video) {
    throw new ReenactError(
      'NO_FRAMES',
      `${path} has no video stream${audio ? ' (it holds audio only)' : ''}.`,
      'Use a video file with picture, such as a phone or webcam recording.',
    );
  }
  const codedWidth = video.width ?? 0;
  const codedHeight = video.height ?? 0;
  if (codedWidth <= 0 || codedHeight <= 0) throw corrupt(path, 'the video stream has no frame size');

  const declaredFrames = parseNumber(video.nb_frames);
  const readPackets = video.nb_read_packets === undefined ? undefined : Number(video.nb_read_packets);
  if (readPackets === 0 || (readPackets === undefined && video.nb_frames === '0')) {
    throw new ReenactError(
      'NO_FRAMES',
      `${path} has a video stream with no frames.`,
      'Record or export the video again; it holds no pictures.',
    );
  }
  const frameCount = readPackets ?? declaredFrames;

  // The base rate is exact for constant-rate video (30/1, not 29.9999 from averaging timestamps);
  // the average is the truer figure where they disagree (variable rate).
  const baseFps = parseRate(video.r_frame_rate);
  const averageFps = parseRate(video.avg_frame_rate);
  const statedFps =
    baseFps && (!averageFps || Math.abs(averageFps - baseFps) / baseFps < 0.01) ? baseFps : averageFps || baseFps;
  const fps = plausibleFps(statedFps) ? statedFps : 0;
  const duration = formatDuration || parseNumber(video.duration);

  const problems: string[] = [];
  if (!duration) problems.push('no duration');
  // A base rate like 1000/1 is a millisecond time base, not a frame rate: frame times vary.
  if (!fps || !plausibleFps(baseFps)) problems.push(`no believable frame rate (${video.r_frame_rate ?? 'none'})`);
  if (!frameCount) problems.push('no frame count');

  const rotation = rotationOf(video);
  const quarterTurn = rotation === 90 || rotation === 270;
  return {
    path,
    width: quarterTurn ? codedHeight : codedWidth,
    height: quarterTurn ? codedWidth : codedHeight,
    fps,
    frameCount,
    duration,
    hasAudio: audio !== undefined,
    videoCodec: video.codec_name ?? 'unknown',
    ...(audio?.codec_name ? { audioCodec: audio.codec_name } : {}),
    rotation,
    needsRepair: problems.length > 0,
    ...(problems.length ? { repairReason: `the container states ${problems.join(', ')}` } : {}),
    format,
  };
}
