/**
 * A worker thread with its own face analyzer: detects the largest face of each frame it is sent.
 * Messages in: { id, width, height, data }; out: { ready } once loaded, then { id, face } or { id, error }.
 */
import { parentPort } from 'node:worker_threads';
import { FaceAnalyzer } from '../face/detector.js';

interface Request {
  id: number;
  width: number;
  height: number;
  data: Uint8Array;
}

const port = parentPort!;
const analyzer = await FaceAnalyzer.create();
port.on('message', async (request: Request) => {
  try {
    const [face] = await analyzer.detect({ width: request.width, height: request.height, data: request.data });
    port.postMessage({ id: request.id, face: face ?? null }, face ? [face.landmarks.buffer as ArrayBuffer] : []);
  } catch (error) {
    port.postMessage({ id: request.id, error: (error as Error).stack ?? String(error) });
  }
});
port.postMessage({ ready: true });
