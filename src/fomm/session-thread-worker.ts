/**
 * The worker thread of a SessionThread (session-thread.ts): creates, runs and releases ONNX
 * Runtime sessions. Messages in: { id, op: 'create', model, options } | { id, op: 'run', session,
 * feeds, fetches } | { id, op: 'release', session }; out: { id, session } | { id, outputs } |
 * { id } | { id, error }, handled in message order.
 */
import { parentPort } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { fromPlainTensors, toPlainTensors, type PlainTensor, type SessionRequest } from './session-thread.js';

const port = parentPort!;
const sessions = new Map<number, ort.InferenceSession>();
let nextSession = 0;

async function handle(
  request: SessionRequest,
): Promise<{ session?: number; outputs?: Record<string, PlainTensor>; transfer?: ArrayBuffer[] }> {
  switch (request.op) {
    case 'create': {
      const session = nextSession++;
      sessions.set(session, await ort.InferenceSession.create(request.model, request.options));
      return { session };
    }
    case 'run': {
      const session = sessions.get(request.session)!;
      const feeds = fromPlainTensors(request.feeds);
      const outputs = await (request.fetches ? session.run(feeds, request.fetches) : session.run(feeds));
      return toPlainTensors(outputs);
    }
    case 'release':
      await sessions.get(request.session)?.release();
      sessions.delete(request.session);
      return {};
  }
}

// One request at a time, in order, as the sessions share the thread's cores.
let queue = Promise.resolve();
port.on('message', (request: SessionRequest) => {
  queue = queue.then(async () => {
    try {
      const { transfer, ...reply } = await handle(request);
      port.postMessage({ id: request.id, ...reply }, transfer ?? []);
    } catch (error) {
      port.postMessage({ id: request.id, error: (error as Error).message });
    }
  });
});
