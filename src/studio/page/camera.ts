import { ApiError } from './api.js';

/** Starts the webcam (and microphone) into a muted preview, ideally at `size`; the message says what to do when refused. */
export async function openCamera(video: HTMLVideoElement, withAudio: boolean, size: { width: number; height: number } = { width: 1280, height: 720 }): Promise<{ stream: MediaStream; stop(): void }> {
  if (!navigator.mediaDevices?.getUserMedia) {
    throw new ApiError('NO_CAMERA', 'this browser gives the page no camera access.', 'Open the studio at http://localhost (or over HTTPS) in a current browser.');
  }
  let stream: MediaStream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: size.width }, height: { ideal: size.height } }, audio: withAudio });
  } catch (error) {
    const name = (error as DOMException).name;
    throw new ApiError(
      'NO_CAMERA',
      name === 'NotAllowedError' ? 'the camera was not allowed.' : `the camera could not be started (${name}).`,
      name === 'NotAllowedError' ? 'Allow camera and microphone for this page in the browser, then try again.' : 'Check that a camera is connected and no other program is using it.',
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
