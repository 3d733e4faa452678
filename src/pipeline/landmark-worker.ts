/**
 * A worker thread with its own face analyzer: detects the largest face of each frame it is sent.
 * Messages in: { id, width, height, data, follows?, track } (follows: the id of the message just
 * before, the previous frame of the same video, whose face regions this frame reuses, moved
 * with the face where track is set; see FaceAnalyzer.detectNextFrame); out: { ready } once the models are loaded, then { id, face, reused } or { id, error }.
 * Messages sent while the models load wait in the port's queue.
 */
import { parentPort } from 'node:worker_threads';
import { FaceAnalyzer, type FrameDetection } from '../face/detector.js';
import { followsPrevious } from './landmark-pool.js';

interface Request {
  id: number;
  width: number;
  height: number;
  data: Uint8Array;
  follows?: number;
  track: boolean;
}

const port = parentPort!;
const analyzer = await FaceAnalyzer.create();
port.postMessage({ ready: true });
/** The last message's detection. */
let last: { id: number; detection: Promise<FrameDetection> } | undefined;
port.on('message', (request: Request) => {
  const image = { width: request.width, height: request.height, data: request.data };
  // Queued on the analyzer at once, in message order: a pair's second frame is one job, right
  // behind its first's.
  const detection =
    request.follows !== undefined && last?.id === request.follows
      ? analyzer.detectNextFrame(image, last.detection, followsPrevious, request.track)
      : analyzer.detectFrame(image);
  last = { id: request.id, detection };
  detection.then(
    // Not transferred: the next frame's check reads this face's landmarks.
    ({ faces: [face], reused }) => port.postMessage({ id: request.id, face: face ?? null, reused }),
    (error: unknown) => port.postMessage({ id: request.id, error: (error as Error).stack ?? String(error) }),
  );
});
