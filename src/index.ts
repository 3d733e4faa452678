/**
 * reenact as a library: the whole pipeline in one call (`animate`), and the typed API of each
 * stage for programs that assemble their own (media I/O, face analysis, source alignment,
 * driving-video tracks, the mesh and FOMM motion models, composition).
 */

// Shared types, errors, atomic outputs.
export type { Box, Point, ProgressCallback, ProgressEvent, RgbImage, VideoFrame } from './types.js';
export { ReenactError, type ErrorCode } from './errors.js';
export { PendingOutput, removePendingOutputs, writeAtomically } from './output.js';

// The pipeline.
export { animate, type AnimateOptions, type AnimateResult, type MotionModelName } from './pipeline/animate.js';

// Media: images and video.
export { readImage, writeImage, DEFAULT_MAX_PIXELS, type ReadImageOptions } from './media/image.js';
export { probeVideo, type VideoInfo } from './media/probe.js';
export { decodeVideo, type DecodeOptions } from './media/decode.js';
export { VideoEncoder, copyAudio, type AudioSource, type CopyAudioOptions, type EncoderOptions } from './media/encode.js';
export { openVideo, repairRecording, measureFrameRate, type OpenedVideo } from './media/repair.js';

// Face analysis.
export { FaceAnalyzer, LANDMARK_COUNT, type Face, type FaceAnalyzerOptions, type FaceBox } from './face/detector.js';
export { LANDMARKS, eyeCentres, landmark, rollDegrees } from './face/landmarks.js';
export { LandmarkTracker, type LandmarkTrackerOptions } from './face/tracker.js';

// Source alignment.
export {
  apply as applyAffine,
  compose as composeAffine,
  invert as invertAffine,
  warpAffine,
  type Affine,
  type PixelImage,
  type WarpOptions,
  type WarpResult,
} from './align/affine.js';
export {
  alignSource,
  chooseFace,
  restoreToPhoto,
  rotateUpright,
  DEFAULT_CROP_SCALE,
  DEFAULT_CROP_SIZE,
  type AlignOptions,
  type RestoreOptions,
  type SourceAlignment,
} from './align/source.js';

// Driving video: face tracks and crops.
export { findFaceTracks, longestTrack, writeTracksJson, DEFAULT_MIN_FRAMES, type FaceTrack, type TrackOptions } from './driving/tracks.js';
export { cropDrivingVideo, type CropVideoOptions, type CroppedVideo } from './driving/crop.js';

// Motion models.
export { ANIMATE_PARTS, MeshAnimator, type AnimatePart, type MeshAnimatorOptions } from './mesh/animator.js';
export { LiveAnimator, type LiveAnimatorOptions, type LiveFrame } from './pipeline/live.js';
export { SyntheticMarks, type SyntheticMarksOptions } from './pipeline/synthetic-output.js';
export { FommModel, toRgbImage, type FloatImage, type FommModelOptions, type GeneratedFrame, type SourceEncoding } from './fomm/model.js';
export { loadConfig, parseConfig, type FommConfig } from './fomm/config.js';
export { loadCheckpoint, type FommCheckpoint } from './fomm/checkpoint.js';
export {
  normalizeKeypoints,
  ABSOLUTE,
  RELATIVE,
  RELATIVE_ADAPT,
  type Keypoints,
  type NormalizationOptions,
} from './fomm/keypoints.js';
export { findBestFrame, normalizeLandmarks, animationOrder, type AnimationOrder, type LandmarkSet } from './fomm/best-frame.js';

// Composition.
export { FaceBlender, type FaceBlendOptions } from './compose/blend.js';
export { CompareComposer, compareLayout, type CompareLayout } from './compose/compare.js';
export { cropToEven, evenSize } from './compose/even.js';
export { createLabel, drawLabel, syntheticMetadata, LABEL_TEXT, SYNTHETIC_NOTICE, type Label, type LabelOptions } from './compose/label.js';

// The studio: its server, and the job queue interface another queue (workers on Redis) can implement.
export { startStudio, type Studio, type StudioOptions } from './studio/server.js';
export type { Job, JobOptions, JobQueue, JobRunner, JobSpec, JobState } from './studio/jobs.js';

// Provenance: the invisible watermark and its detector.
export { WatermarkEmbedder } from './provenance/embed.js';
export { WatermarkDetector, FALSE_POSITIVE_LIMIT, type Detection } from './provenance/detect.js';
export { encodePayload, decodePayload, newContentId, FORMAT_VERSION, type WatermarkPayload, type WatermarkModel } from './provenance/payload.js';
export { checkWatermark, type WatermarkCheck, type VerifyOptions } from './provenance/verify.js';
export { writeCredential, checkCredential, sidecarPath, type CredentialInput, type CredentialCheck } from './provenance/credential.js';
