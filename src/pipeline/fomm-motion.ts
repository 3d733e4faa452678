import type { Affine } from '../align/affine.js';
import { alignSource, measureRoll } from '../align/source.js';
import { FaceBlender } from '../compose/blend.js';
import { ReenactError } from '../errors.js';
import type { Face } from '../face/detector.js';
import { findFaceTracks, longestTrack } from '../driving/tracks.js';
import { RELATIVE_ADAPT, normalizeKeypoints, type Keypoints } from '../fomm/keypoints.js';
import { toRgbImage, type FommModel } from '../fomm/model.js';
import { decodeVideo, type DecodeOptions } from '../media/decode.js';
import type { RgbImage, VideoFrame } from '../types.js';
import { BestFrameSearch } from './best-frame.js';
import { meshPoints, noTrack, type MotionContext, type MotionSession } from './motion.js';

/** Face boxes are looked for on every Nth frame when finding the driver's face track (a box stands for N frames). */
const TRACK_STRIDE = 3;

/**
 * The `fomm` mode, as the reference demo runs it: the photo's face aligned and cropped to the
 * model size; the driver's face track found and every driving frame decoded through its square
 * box at the model size; keypoints relative to the start frame's, scaled by the hull areas
 * (relative + adapt_movement_scale); the generated crop blended back into the photo.
 *
 * Frames of the crop without a face (the driver looked away, a cut) hold the last keypoints, so
 * the photo holds its pose instead of following the model's guesses on an empty frame.
 */
export async function prepareFommMotion(context: MotionContext, model: FommModel): Promise<MotionSession<boolean>> {
  const { analyzer, driving, background, photo, face, signal, onProgress } = context;
  const { info } = driving;
  const size = model.frameSize.width;
  const roll = await measureRoll(photo, face, (image) => analyzer.detect(image));
  const alignment = alignSource(photo, face, { size, roll });
  const blender = new FaceBlender(background, alignment);
  const source = await model.encodeSource(alignment.crop);

  const tracks = await findFaceTracks(driving.path, analyzer, {
    stride: TRACK_STRIDE,
    minFrames: 1,
    signal,
    onProgress,
  });
  if (tracks.length === 0) throw noTrack(driving.name);
  const track = longestTrack(tracks, driving.name, 1);
  const decode: DecodeOptions = { info, signal, crop: track.box, width: size, height: model.frameSize.height };

  let initial: Keypoints | undefined;
  let startFrame: number | undefined;
  const wanted = context.startFrame;
  if (wanted === 'best') {
    // The crop frame whose landmarks are closest to the photo's crop (landmarks only; one frame copy kept).
    const search = new BestFrameSearch<RgbImage>({
      points: meshPoints(cropFace(face, alignment.photoToCrop)),
      stride: 2,
    });
    let done = 0;
    for await (const frame of decodeVideo(driving.path, decode)) {
      const [found] = await analyzer.detect(frame);
      onProgress?.({ stage: 'best frame', done: ++done, total: info.frameCount || undefined });
      if (found) search.offer(frame.index, { points: meshPoints(found), stride: 2 }, frame);
    }
    const best = search.best;
    if (!best) throw noTrack(driving.name);
    startFrame = best.index;
    initial = await model.detectKeypoints(best.item);
  } else if (wanted !== undefined && wanted > 0) {
    for await (const frame of decodeVideo(driving.path, { ...decode, startTime: wanted / info.fps })) {
      initial = await model.detectKeypoints(frame);
      startFrame = frame.index;
      break;
    }
    if (!initial) {
      throw new ReenactError(
        'BAD_ARGUMENT',
        `\`startFrame\` ${wanted} is past the end of ${driving.name}.`,
        'Choose a frame within the driving video, or `startFrame: best`.',
      );
    }
  }

  let last: Keypoints | undefined;
  let framesWithFace = 0;
  return {
    decode,
    // Face presence of the next frame is checked while the model works on this one.
    lookahead: 1,
    get startFrame() {
      return startFrame;
    },
    get framesWithFace() {
      return framesWithFace;
    },
    async analyse(frame: VideoFrame): Promise<boolean> {
      return (await analyzer.detectBoxes(frame)).length > 0;
    },
    async render(frame: VideoFrame, visible: boolean): Promise<RgbImage> {
      if (visible) {
        framesWithFace++;
        last = await model.detectKeypoints(frame);
        if (!initial) {
          initial = last;
          startFrame = frame.index;
        }
      }
      if (!last || !initial) return { ...background, data: background.data.slice() };
      const driven = normalizeKeypoints(source.keypoints, last, initial, RELATIVE_ADAPT);
      const generated = await model.generate(source, driven);
      return blender.blend(toRgbImage(generated.image));
    },
    async close() {},
  };
}

/** The face's landmarks in crop coordinates. */
function cropFace(face: Face, photoToCrop: Affine): Face {
  const landmarks = new Float32Array(face.landmarks);
  const t = photoToCrop;
  for (let i = 0; i < landmarks.length; i += 3) {
    const x = face.landmarks[i]!;
    const y = face.landmarks[i + 1]!;
    landmarks[i] = t.a * x + t.b * y + t.c;
    landmarks[i + 1] = t.d * x + t.e * y + t.f;
  }
  return { ...face, landmarks };
}
