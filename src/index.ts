/**
 * reenact as a library: the whole pipeline in one call (`animate`), the functions and classes of
 * its stages for programs that assemble their own, their option and result types, and the errors
 * they throw. Everything else under src/ is internal and may change.
 */

// Errors and shared types.
export { ReenactError, type ErrorCode } from './errors.js';
export type { Box, Point, ProgressCallback, ProgressEvent, ProgressStage, RgbImage, VideoFrame } from './types.js';
export { removePendingOutputs } from './output.js';

// The pipeline.
export {
  animate,
  type AnimateOptions,
  type AnimateResult,
  type AnimateStage,
  type MotionModelName,
} from './pipeline/animate.js';

// Media.
export { readImage, writeImage, type ReadImageOptions } from './media/image.js';
export { probeVideo, type VideoInfo } from './media/probe.js';
export { decodeVideo, type DecodeOptions } from './media/decode.js';
export { VideoEncoder, type EncoderOptions } from './media/encode.js';

// Faces: detection, landmarks and the inspect report.
export { FaceAnalyzer, type Face, type FaceAnalyzerOptions, type FaceBox } from './face/detector.js';
export {
  inspectMedia,
  type FaceReport,
  type ImageReport,
  type InspectOptions,
  type VideoReport,
} from './pipeline/inspect.js';

// The source photo and the driving video.
export { alignSource, type AlignOptions, type SourceAlignment } from './align/source.js';
export { findFaceTracks, type FaceTrack, type TrackOptions } from './driving/tracks.js';
export {
  cropDrivingVideo,
  cropFaceClips,
  type CropClipsOptions,
  type CroppedClips,
  type CroppedVideo,
  type CropVideoOptions,
} from './driving/crop.js';

// Motion models.
export { ANIMATE_PARTS, MeshAnimator, type AnimatePart, type MeshAnimatorOptions } from './mesh/animator.js';
export { LiveAnimator, type LiveAnimatorOptions, type LiveFrame } from './pipeline/live.js';
export {
  FommModel,
  type FloatImage,
  type FommModelOptions,
  type GeneratedFrame,
  type SourceEncoding,
} from './fomm/model.js';
export { loadConfig, type FommConfig } from './fomm/config.js';
export { loadCheckpoint } from './fomm/checkpoint/load.js';
export type { FommWeights } from './fomm/checkpoint/tensors.js';
export { normalizeKeypoints, type Keypoints, type NormalizationOptions } from './fomm/keypoints.js';

// Composition.
export { FaceBlender, type FaceBlendOptions } from './compose/blend.js';

// Provenance: finding the watermark and the content credential.
export { checkWatermark, type VerifyOptions, type WatermarkCheck } from './provenance/verify.js';
export { checkCredential, type CredentialCheck } from './provenance/credential.js';

// The studio.
export { startStudio, type Studio, type StudioOptions } from './studio/server.js';
