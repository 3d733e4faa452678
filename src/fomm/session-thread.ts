import { Worker } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { workerEntry } from '../worker-entry.js';
import { WorkerReplies } from '../worker-replies.js';

/**
 * ONNX Runtime sessions on a worker thread of their own. onnxruntime-node's run() is a
 * synchronous native call (wrapped in a promise): it computes on the calling thread, which on
 * the JavaScript thread would stop a server's event loop for the whole of each graph (tens to
 * hundreds of ms a frame). Here only the tensors' bytes are copied across (a few ms a frame).
 */

/** A tensor as it crosses threads: ort.Tensor is a class, which messages do not keep. */
export interface PlainTensor {
  type: ort.Tensor.Type;
  data: ort.Tensor.DataType;
  dims: readonly number[];
}

export type SessionRequest = { id: number } & (
  | { op: 'create'; model: Uint8Array; options: ort.InferenceSession.SessionOptions }
  | { op: 'run'; session: number; feeds: Record<string, PlainTensor>; fetches?: string[] }
  | { op: 'release'; session: number }
);

type Reply = { id: number; error?: string; session?: number; outputs?: Record<string, PlainTensor> };

/** The tensors as plain objects, and their buffers, to transfer rather than copy. */
export function toPlainTensors(tensors: Record<string, ort.OnnxValue>): {
  outputs: Record<string, PlainTensor>;
  transfer: ArrayBuffer[];
} {
  const outputs: Record<string, PlainTensor> = {};
  const transfer: ArrayBuffer[] = [];
  for (const [name, tensor] of Object.entries(tensors)) {
    outputs[name] = { type: tensor.type, data: tensor.data, dims: tensor.dims };
    const { buffer } = tensor.data as ArrayBufferView;
    if (buffer instanceof ArrayBuffer && !transfer.includes(buffer)) transfer.push(buffer);
  }
  return { outputs, transfer };
}

export function fromPlainTensors(plain: Record<string, PlainTensor>): Record<string, ort.Tensor> {
  return Object.fromEntries(
    Object.entries(plain).map(([name, t]) => [name, new ort.Tensor(t.type, t.data as Float32Array, t.dims)]),
  );
}

/** What FommModel uses of an ort.InferenceSession. */
export interface ModelSession {
  run(feeds: Record<string, ort.Tensor>, fetches?: string[]): Promise<Record<string, ort.Tensor>>;
  release(): Promise<void>;
}

/** A worker thread holding ONNX Runtime sessions; requests run one at a time, in order. */
export class SessionThread {
  private readonly replies: WorkerReplies<Reply>;

  private constructor(private readonly worker: Worker) {
    // Idle, it does not keep the process alive; a request in flight does.
    this.replies = new WorkerReplies<Reply>(worker, 'ONNX Runtime failed', 'the ONNX Runtime thread stopped', () =>
      worker.unref(),
    );
    worker.unref();
  }

  static start(): SessionThread {
    return new SessionThread(new Worker(workerEntry(import.meta.url, 'session-thread-worker')));
  }

  /** A session for the model bytes (copied to the thread), with the same options as ort.InferenceSession.create. */
  async create(model: Uint8Array, options: ort.InferenceSession.SessionOptions): Promise<ModelSession> {
    const { session } = await this.request({ op: 'create', model, options });
    return {
      run: async (feeds, fetches) => {
        // Copied, not transferred: the caller keeps its feeds (the source's are used every frame).
        const { outputs } = await this.request({
          op: 'run',
          session: session!,
          feeds: toPlainTensors(feeds).outputs,
          ...(fetches ? { fetches } : {}),
        });
        return fromPlainTensors(outputs!);
      },
      release: async () => {
        await this.request({ op: 'release', session: session! });
      },
    };
  }

  /** Ends the thread once no request is in flight (sessions not released are freed with it). */
  async stop(): Promise<void> {
    await this.replies.idle();
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }

  private request(
    request: SessionRequest extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never,
  ): Promise<Reply> {
    return this.replies.send((id) => {
      if (this.replies.size === 0) this.worker.ref();
      this.worker.postMessage({ id, ...request });
    }).reply;
  }
}
