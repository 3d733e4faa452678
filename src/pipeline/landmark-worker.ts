/**
 * A worker thread with its own face analyzer: detects the largest face of each frame it is sent.
 * Messages in: { id, width, height, data, follow }
 * (follow: the frame comes straight after the previous message's, see detectLargest); out: { ready } once loaded, then { id, face } or { id, error }.
 */
import { parentPort } from 'node:worker_threads';
import { FaceAnalyzer, type Face } from '../face/detector.js';
import { detectLargest } from './landmark-pool.js';

interface Request {
  id: number;
  width: number;
  height: number;
  data: Uint8Array;
  follow: boolean;
}

const port = parentPort!;
const analyzer = await FaceAnalyzer.create();
/** The detection of the previous frame received. */
let previous: Promise<Face | null> | undefined;
port.on('message', (request: Request) => {
  const detection = detectLargest(analyzer, { width: request.width, height: request.height, data: request.data }, request.follow ? previous : undefined);
  previous = detection;
  detection.then(
    (face) => port.postMessage({ id: request.id, face }, face ? [face.landmarks.buffer as ArrayBuffer] : []),
    (error: unknown) => port.postMessage({ id: request.id, error: (error as Error).stack ?? String(error) }),
  );
});
port.postMessage({ ready: true });
