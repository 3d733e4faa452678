import { basename, extname, resolve } from 'node:path';
import { chooseFace } from '../align/source.js';
import { CompareComposer } from '../compose/compare.js';
import { cropToEven } from '../compose/even.js';
import { checkThreads, invalidOption, ReenactError, throwIfAborted } from '../errors.js';
import { FaceAnalyzer } from '../face/detector.js';
import type { FommConfig } from '../fomm/config.js';
import { FommModel } from '../fomm/model.js';
import type { FommWeights } from '../fomm/checkpoint/tensors.js';
import { decodeVideo } from '../media/decode.js';
import { VideoEncoder } from '../media/encode.js';
import { readImage } from '../media/image.js';
import { probeVideo } from '../media/probe.js';
import { openVideo, type OpenedVideo } from '../media/repair.js';
import { ANIMATE_PARTS, type AnimatePart } from '../mesh/animator.js';
import { PendingOutput } from '../output.js';
import { checkContentId } from '../provenance/payload.js';
import type { ProgressCallback, RgbImage } from '../types.js';
import { prepareFommMotion } from './fomm-motion.js';
import { LandmarkThreads } from './landmark-pool.js';
import { prepareMeshMotion } from './mesh-motion.js';
import type { MotionSession } from './motion.js';
import { mapAhead, noTrack } from './motion.js';
import { prefetch } from './prefetch.js';
import { SyntheticMarks } from './synthetic-output.js';

export type MotionModelName = 'mesh' | 'fomm';

/** The stages animate reports, in order: 'track' (fomm only) and a reference-frame search ('best frame', or 'start frame' for a later frame of the mesh model) as they apply. */
export type AnimateStage = 'prepare' | 'track' | 'best frame' | 'start frame' | 'animate';

export interface AnimateOptions {
  /** The portrait photo to animate. */
  source: string;
  /** The driving video whose motion (and audio) the output takes. */
  driving: string;
  /** The MP4 to write (atomically: it appears only when complete). */
  output: string;
  /** 'mesh' (built in, default) or 'fomm' (needs config and checkpoint). */
  model?: MotionModelName;
  /** FOMM config .yaml (e.g. vox-adv-256.yaml), or one already parsed (loadConfig). */
  config?: string | FommConfig;
  /** FOMM checkpoint .pth.tar (e.g. vox-adv-cpk.pth.tar), or weights already loaded (loadCheckpoint). */
  checkpoint?: string | FommWeights;
  /** Write source | driving | result side by side. */
  compare?: boolean;
  /** Draw the visible "AI-generated" mark. Default true; the metadata says it either way. */
  label?: boolean;
  /**
   * Embed the invisible watermark that `reenact verify` finds after re-encoding, resizing and
   * cropping. Default true; turning it off leaves only marks that a re-upload strips.
   */
  watermark?: boolean;
  /** The watermark's content id (8 hex digits), also in the metadata; default: a random one. */
  contentId?: string;
  /** Which face of the photo (0 = largest). */
  face?: number;
  /** The driving frame whose pose maps onto the photo's: an index, or 'best' (closest landmarks). Default: the first frame with a face. */
  startFrame?: number | 'best';
  signal?: AbortSignal;
  /** Called as the run progresses: the stage, frames done and, where known, the total. */
  onProgress?: ProgressCallback<AnimateStage>;
  /** CPU threads to use: ONNX Runtime's for fomm, parallel landmark detections for mesh. Default: all cores. */
  threads?: number;
  /** Mesh model: how strongly expression, eyes and mouth follow the driver, 0 to 2. Default 1. */
  expressionScale?: number;
  /** Mesh model: which parts of the driver's motion to take (any of 'pose', 'expression', 'eyes', 'mouth'). Default all. */
  animate?: readonly AnimatePart[];
}

export interface AnimateResult {
  output: string;
  model: MotionModelName;
  width: number;
  height: number;
  fps: number;
  frames: number;
  /** Seconds of video written. */
  duration: number;
  hasAudio: boolean;
  labelled: boolean;
  /** The content id in the watermark and the metadata; undefined when the watermark was turned off. */
  contentId?: string;
  /** Where the signed C2PA content credential is: the output itself (embedded in the MP4), or `<output>.c2pa` beside it. */
  credential: string;
  /** The driving frame used as the reference pose. */
  startFrame: number;
  /** Driving frames without a detectable face, where the last pose was held. */
  framesWithoutFace: number;
  /** Wall-clock seconds of the whole run. */
  seconds: number;
}

const VIDEO_EXTENSIONS = new Set(['.mp4', '.m4v', '.mov']);

let sharedAnalyzer: Promise<FaceAnalyzer> | undefined;

/** One face analyzer for the process: loading its models takes a while. */
export function faceAnalyzer(): Promise<FaceAnalyzer> {
  sharedAnalyzer ??= FaceAnalyzer.create().catch((error: unknown) => {
    sharedAnalyzer = undefined;
    throw error;
  });
  return sharedAnalyzer;
}

function checkOptions(options: AnimateOptions): {
  model: MotionModelName;
  fomm?: { config: string | FommConfig; checkpoint: string | FommWeights };
} {
  const model = options.model ?? 'mesh';
  if (model !== 'mesh' && model !== 'fomm') {
    throw invalidOption(
      'model',
      "'mesh' or 'fomm'",
      model,
      'Use `model` mesh (built in) or fomm (with `config` and `checkpoint`).',
    );
  }
  if (model === 'fomm' && (!options.config || !options.checkpoint)) {
    throw new ReenactError(
      'BAD_ARGUMENT',
      `\`model\` fomm needs the published FOMM files: ${!options.config ? '`config` is missing' : '`checkpoint` is missing'}.`,
      'Give `config` vox-adv-256.yaml and `checkpoint` vox-adv-cpk.pth.tar (from the First Order Motion Model release), or use `model` mesh, which needs no download.',
    );
  }
  if (model === 'mesh' && (options.config || options.checkpoint)) {
    throw new ReenactError(
      'BAD_ARGUMENT',
      '`config` and `checkpoint` are for `model` fomm.',
      'Set `model` to fomm to use the FOMM checkpoint, or leave them out for the mesh model.',
    );
  }
  const start = options.startFrame;
  if (start !== undefined && start !== 'best' && !(Number.isInteger(start) && start >= 0)) {
    throw invalidOption(
      'startFrame',
      "a frame number of 0 or more, or 'best'",
      start,
      'Give a whole frame number, or `startFrame: best`.',
    );
  }
  checkThreads(options.threads);
  const scale = options.expressionScale;
  if (scale !== undefined && !(typeof scale === 'number' && scale >= 0 && scale <= 2)) {
    throw invalidOption(
      'expressionScale',
      'a number from 0 to 2',
      scale,
      'Use 1 to follow the driver as it is, less to tone the expression down, more to exaggerate it.',
    );
  }
  if (options.animate !== undefined) {
    const unknown = Array.isArray(options.animate)
      ? options.animate.filter((part) => !ANIMATE_PARTS.includes(part))
      : [String(options.animate)];
    if (unknown.length > 0 || options.animate.length === 0) {
      throw new ReenactError(
        'BAD_ARGUMENT',
        `\`animate\` must list parts of the motion from ${ANIMATE_PARTS.join(', ')}, not ${unknown.length ? unknown.map((part) => `"${String(part)}"`).join(', ') : 'none'}.`,
        `Give for example \`animate\` pose,eyes (in the library: ['pose', 'eyes']), or leave it out to animate all of ${ANIMATE_PARTS.join(',')}.`,
      );
    }
  }
  if (model === 'fomm' && (scale !== undefined || options.animate !== undefined)) {
    throw new ReenactError(
      'BAD_ARGUMENT',
      '`expressionScale` and `animate` are for the mesh model.',
      'Leave them out with `model` fomm, or use `model` mesh.',
    );
  }
  if (options.face !== undefined && !(Number.isInteger(options.face) && options.face >= 0)) {
    throw invalidOption(
      'face',
      'a face number of 0 or more',
      options.face,
      'Faces are numbered from 0, largest first.',
    );
  }
  if (options.contentId !== undefined) checkContentId(options.contentId);
  if (!VIDEO_EXTENSIONS.has(extname(options.output).toLowerCase())) {
    throw new ReenactError(
      'BAD_ARGUMENT',
      `the output ${options.output} should end in .mp4: reenact writes H.264 MP4.`,
      'Name the output something.mp4.',
    );
  }
  for (const input of [options.source, options.driving]) {
    if (resolve(input) === resolve(options.output)) {
      throw new ReenactError(
        'BAD_ARGUMENT',
        `the output ${options.output} is also an input.`,
        'Write the output to a new file.',
      );
    }
  }
  return model === 'fomm' ? { model, fomm: { config: options.config!, checkpoint: options.checkpoint! } } : { model };
}

/**
 * Animates the face of a photo with the motion of a driving video and writes an MP4 with the
 * driving video's frame rate, length and audio, at the photo's size (rounded down to even),
 * labelled as AI-generated (a visible mark unless label is false, and metadata always).
 *
 * Frames stream from the decoder through the motion model to the encoder; memory does not grow
 * with the clip's length (a best-frame search keeps landmarks only). Bad input throws a
 * ReenactError (NO_FACE, NO_TRACK, OUTPUT_UNWRITABLE, ...) and aborting throws CANCELLED;
 * either way no output file is left.
 */
export async function animate(options: AnimateOptions): Promise<AnimateResult> {
  const started = performance.now();
  const { signal, onProgress } = options;
  const { model: modelName, fomm } = checkOptions(options);
  throwIfAborted(signal);
  // The output folder is checked before any work (PendingOutput checks it exists and is writable).
  await (await PendingOutput.create(options.output)).discard();
  // The mesh mode's landmark threads load their models (~1 s each) while this thread reads and
  // detects the photo: the first frames no longer wait for them.
  const landmarkThreads = fomm
    ? undefined
    : LandmarkThreads.start(options.threads === undefined ? undefined : options.threads - 1);
  let model: FommModel | undefined;
  let opened: OpenedVideo | undefined;
  let session: MotionSession | undefined;
  try {
    const drivingInfo = await probeVideo(options.driving);
    const photo = await readImage(options.source);
    onProgress?.({ stage: 'prepare', done: 0 });

    const analyzer = await faceAnalyzer();
    throwIfAborted(signal);
    const face = chooseFace(await analyzer.detect(photo), options.face, options.source);
    if (fomm) {
      model = await FommModel.load({
        config: fomm.config,
        checkpoint: fomm.checkpoint,
        ...(options.threads ? { threads: options.threads } : {}),
      });
    }
    throwIfAborted(signal);
    opened = await openVideo(options.driving, { info: drivingInfo, signal });
    const { info } = opened;
    const background = cropToEven(photo);
    const context = {
      photo,
      background,
      face,
      analyzer,
      driving: { path: opened.path, info, name: basename(options.driving) },
      startFrame: options.startFrame,
      threads: options.threads,
      mesh: { expressionScale: options.expressionScale, animate: options.animate },
      signal,
      onProgress,
    };
    session = model ? await prepareFommMotion(context, model) : await prepareMeshMotion(context, landmarkThreads!);
    throwIfAborted(signal);

    const drivingSize = { width: session.decode.width ?? info.width, height: session.decode.height ?? info.height };
    const composer = options.compare ? new CompareComposer(background, drivingSize, background) : undefined;
    const width = composer?.layout.width ?? background.width;
    const height = composer?.layout.height ?? background.height;
    const marks = await SyntheticMarks.create(width, height, {
      model: modelName,
      ...(options.label !== undefined ? { label: options.label } : {}),
      ...(options.watermark !== undefined ? { watermark: options.watermark } : {}),
      ...(options.contentId ? { contentId: options.contentId } : {}),
    });
    const { contentId } = marks;
    const encoder = await VideoEncoder.create(options.output, {
      width,
      height,
      fps: info.fps,
      ...(info.hasAudio ? { audioFrom: { path: opened.path } } : {}),
      metadata: marks.metadata(),
      // Half the CPU of "medium" at the same visually lossless crf 18 (slightly larger files),
      // and one thread: on 2 cores the encoder competes with the landmark detection for time.
      preset: 'veryfast',
      threads: 1,
    });
    let frames = 0;
    try {
      const total = info.frameCount || undefined;
      onProgress?.({ stage: 'animate', done: 0, total });
      let writing: Promise<void> = Promise.resolve();
      const motion = session;
      const driven = mapAhead(
        prefetch(decodeVideo(opened.path, motion.decode), 2),
        (frame) => motion.analyse(frame),
        motion.lookahead,
      );
      for await (const [frame, analysis] of driven) {
        throwIfAborted(signal);
        const animated = await motion.render(frame, analysis);
        const out: RgbImage = composer ? composer.compose(frame, animated) : animated;
        marks.apply(out, frames / info.fps);
        // One frame in flight to ffmpeg while the next is computed.
        await writing;
        writing = encoder.write(out);
        // Observed here; the rejection itself is rethrown by the await above or below.
        writing.catch(() => {});
        frames++;
        onProgress?.({ stage: 'animate', done: frames, total });
      }
      await writing;
      throwIfAborted(signal);
      if (session.framesWithFace === 0) throw noTrack(basename(options.driving));
      await encoder.finish();
    } catch (error) {
      await encoder.abort();
      throw error;
    }
    const credential = await marks.credential(options.output, options.source);
    return {
      output: options.output,
      model: modelName,
      width,
      height,
      fps: info.fps,
      frames,
      duration: frames / info.fps,
      hasAudio: info.hasAudio,
      labelled: marks.labelled,
      ...(contentId ? { contentId } : {}),
      credential: credential.file,
      startFrame: session.startFrame ?? 0,
      framesWithoutFace: frames - session.framesWithFace,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await session?.close();
    await landmarkThreads?.stop();
    await model?.dispose();
    await opened?.cleanup();
  }
}
