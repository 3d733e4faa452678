/**
 * The Live page's JPEG encoder for camera frames read from the track while the page is out of
 * sight (see UNDRAWN_MS in live.ts). In a worker: the page's own encoding (toBlob, and an
 * OffscreenCanvas's convertToBlob on the page's thread) waits for idle time that a page the
 * browser does not draw hardly gets, ~470 ms a frame behind another tab against ~20 ms in front.
 */

interface EncodeRequest {
  id: number;
  frame: VideoFrame;
  width: number;
  height: number;
  quality: number;
}

const canvas = new OffscreenCanvas(1, 1);

self.addEventListener('message', (event: MessageEvent<EncodeRequest>) => {
  const { id, frame, width, height, quality } = event.data;
  // Every request is answered, with no blob when it failed: the page waits for each.
  try {
    canvas.width = width;
    canvas.height = height;
    canvas.getContext('2d')!.drawImage(frame, 0, 0, width, height);
  } catch {
    self.postMessage({ id });
    return;
  } finally {
    frame.close();
  }
  canvas.convertToBlob({ type: 'image/jpeg', quality }).then(
    (blob) => self.postMessage({ id, blob }),
    () => self.postMessage({ id }),
  );
});
