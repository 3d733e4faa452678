import { ReenactError } from '../errors.js';
import type { Face } from '../face/detector.js';
import { decodeVideo, type DecodeOptions } from '../media/decode.js';
import { MeshAnimator } from '../mesh/animator.js';
import type { RgbImage, VideoFrame } from '../types.js';
import { LandmarkPool, type LandmarkThreads } from './landmark-pool.js';
import { BestFrameSearch } from './best-frame.js';
import { mapAhead, meshPoints, noTrack, type MotionContext, type MotionSession } from './motion.js';

/**
 * Driving frames are decoded at most this many pixels on the long side: landmarks of a face in
 * a 720 px frame are as good as at 1080p for the warp, and a 1080p RGB pipe costs ~3x more.
 */
export const MAX_DRIVING_SIDE = 720;

/**
 * The `mesh` mode: landmarks of every driving frame (detected afresh in each) drive a warp of the
 * photo. The reference frame, whose pose and expression map onto the photo's as they are, is the
 * first frame with a face, a chosen frame, or (best) the frame whose landmarks are closest to the
 * photo's. Choosing a later or best frame needs a first pass over the landmarks; only landmarks
 * are kept from it (~6 KB a frame), never frames, and the second pass reuses them. The
 * landmarks are detected on `threads` (the caller's, which it stops) and the calling thread.
 */
export async function prepareMeshMotion(
  context: MotionContext,
  threads: LandmarkThreads,
): Promise<MotionSession<Face | null>> {
  const { analyzer, driving, background, face, signal } = context;
  const { info } = driving;
  const scale = Math.min(1, MAX_DRIVING_SIDE / Math.max(info.width, info.height));
  const decode: DecodeOptions = {
    info,
    signal,
    width: Math.max(2, Math.round(info.width * scale)),
    height: Math.max(2, Math.round(info.height * scale)),
  };
  const source = { image: background, face };
  // The pool detects every third frame in full and crops the two after it by that detection's
  // BlazeFace regions, redoing a frame in full on a fast turn (cropping every frame on the one
  // before's mesh lagged 10-13 degrees of roll on fast turns of driving-talking.mp4); each frame's
  // landmarks depend only on its group of three up to it, so groups run several at once on worker
  // threads and the result does not depend on the scheduling.
  const pool = await LandmarkPool.create(analyzer, threads);
  try {
    return await prepareWithPool(context, pool, decode, source);
  } catch (error) {
    await pool.close();
    throw error;
  }
}

async function prepareWithPool(
  context: MotionContext,
  pool: LandmarkPool,
  decode: DecodeOptions,
  source: { image: RgbImage; face: Face },
): Promise<MotionSession<Face | null>> {
  const { driving, background, face, onProgress } = context;
  const { info } = driving;
  const lookahead = pool.parallelism;

  /** Landmarks from the first pass, by frame index (null: no face). */
  const stored: (Face | null)[] = [];
  let reference: Face | undefined;
  let startFrame: number | undefined;

  const wanted = context.startFrame;
  if (wanted !== undefined && wanted !== 0) {
    const best = wanted === 'best';
    const search = best ? new BestFrameSearch<Face>({ points: meshPoints(face), stride: 2 }) : undefined;
    const total = best ? info.frameCount || undefined : wanted + 1;
    for await (const [frame, tracked] of mapAhead(
      decodeVideo(driving.path, decode),
      (frame) => pool.detect(frame),
      lookahead,
    )) {
      stored.push(tracked);
      onProgress?.({ stage: best ? 'best frame' : 'start frame', done: stored.length, total });
      if (tracked && search) search.offer(frame.index, { points: meshPoints(tracked), stride: 2 }, tracked);
      if (!best && frame.index >= wanted) break;
    }
    if (!best) {
      if (stored.length <= wanted) {
        throw new ReenactError(
          'BAD_ARGUMENT',
          `\`startFrame\` ${wanted} is past the end of ${driving.name} (${stored.length} frames).`,
          `Choose a frame from 0 to ${stored.length - 1}, or \`startFrame: best\`.`,
        );
      }
      // The chosen frame, or the nearest one with a face.
      for (let offset = 0; offset < stored.length && !reference; offset++) {
        for (const index of [wanted - offset, wanted + offset]) {
          const candidate = stored[index];
          if (candidate && !reference) {
            reference = candidate;
            startFrame = index;
          }
        }
      }
    } else {
      if (!search?.best) throw noTrack(driving.name);
      startFrame = search.best.index;
      reference = search.best.item;
    }
  }

  const options = {
    ...(context.mesh?.expressionScale !== undefined ? { expressionScale: context.mesh.expressionScale } : {}),
    ...(context.mesh?.animate ? { animate: context.mesh.animate } : {}),
  };
  let animator: MeshAnimator | undefined = reference ? new MeshAnimator(source, reference, options) : undefined;
  let framesWithFace = 0;
  return {
    decode,
    lookahead,
    get startFrame() {
      return startFrame;
    },
    get framesWithFace() {
      return framesWithFace;
    },
    analyse(frame: VideoFrame): Promise<Face | null> {
      return frame.index < stored.length ? Promise.resolve(stored[frame.index]!) : pool.detect(frame);
    },
    async render(frame: VideoFrame, tracked: Face | null): Promise<RgbImage> {
      if (tracked) {
        framesWithFace++;
        if (!animator) {
          // No reference chosen: the first frame with a face is the one that maps onto the photo.
          animator = new MeshAnimator(source, tracked, options);
          startFrame = frame.index;
        }
      }
      // Before the driver's face first appears the photo stays as it is; a lost face holds the last pose.
      if (!animator) return { ...background, data: background.data.slice() };
      return animator.render({ face: tracked, frame, time: frame.time });
    },
    async close() {
      stored.length = 0;
      await pool.close();
    },
  };
}
