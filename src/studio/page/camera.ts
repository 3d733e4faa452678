import { ApiError } from './api.js';

/** Starts the webcam (and microphone; 'if-any': where there is one) into a muted preview, ideally at `size`; the message says what to do when refused. */
export async function openCamera(
  video: HTMLVideoElement,
  withAudio: boolean | 'if-any',
  size: { width: number; height: number } = { width: 1280, height: 720 },
): Promise<{ stream: MediaStream; stop(): void }> {
  if (!navigator.mediaDevices?.getUserMedia) {
    throw new ApiError(
      'NO_CAMERA',
      'this browser gives the page no camera access.',
      'Open the studio at http://localhost (or over HTTPS) in a current browser.',
    );
  }
  let stream: MediaStream;
  try {
    const picture = { width: { ideal: size.width }, height: { ideal: size.height } };
    // 'if-any': without a microphone (or with one that fails) the camera alone.
    stream = await navigator.mediaDevices
      .getUserMedia({ video: picture, audio: !!withAudio })
      .catch((error: DOMException) => {
        if (withAudio !== 'if-any' || error.name === 'NotAllowedError') throw error;
        return navigator.mediaDevices.getUserMedia({ video: picture, audio: false });
      });
  } catch (error) {
    const name = (error as DOMException).name;
    throw new ApiError(
      'NO_CAMERA',
      name === 'NotAllowedError' ? 'the camera was not allowed.' : `the camera could not be started (${name}).`,
      name === 'NotAllowedError'
        ? 'Allow camera and microphone for this page in the browser, then try again.'
        : 'Check that a camera is connected and no other program is using it.',
    );
  }
  video.srcObject = stream;
  await video.play().catch(() => {});
  return {
    stream,
    stop() {
      for (const track of stream.getTracks()) track.stop();
      video.srcObject = null;
    },
  };
}
