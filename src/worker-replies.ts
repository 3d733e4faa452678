import type { Worker } from 'node:worker_threads';

/** A worker thread's answer: the id of the request it answers, and the error where that failed. */
export interface WorkerReply {
  id: number;
  error?: string;
}

/**
 * The requests in flight to a worker thread, each settled by the reply that carries its id (a
 * reply with an error rejects it, the message prefixed by `failed`). The thread's error or exit
 * (`stopped` names it) rejects those in flight and every later one.
 */
export class WorkerReplies<Reply extends WorkerReply> {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (reply: Reply) => void; reject: (error: Error) => void }>();
  private failure: Error | undefined;
  /** Callers of idle(), waiting for `pending` to empty. */
  private readonly idleWaiters: (() => void)[] = [];

  /** `onIdle`: called when the last reply in flight has come. */
  constructor(worker: Worker, failed: string, stopped: string, onIdle?: () => void) {
    worker.on('message', (reply: Reply) => {
      const job = this.pending.get(reply.id);
      if (!job) return;
      this.pending.delete(reply.id);
      if (this.pending.size === 0) {
        onIdle?.();
        this.wakeIdle();
      }
      if (reply.error !== undefined) job.reject(new Error(`${failed}: ${reply.error}`));
      else job.resolve(reply);
    });
    const fail = (error: Error) => {
      this.failure = error;
      for (const job of this.pending.values()) job.reject(error);
      this.pending.clear();
      this.wakeIdle();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`${stopped} (exit code ${code})`)));
  }

  /** How many requests are in flight. */
  get size(): number {
    return this.pending.size;
  }

  /**
   * Settles once no request is in flight. A thread must not be terminated while it computes in
   * onnxruntime: its run, returning into a terminating thread, throws in native code and aborts
   * the whole process.
   */
  idle(): Promise<void> {
    if (this.pending.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private wakeIdle(): void {
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  /** A new request: `post` sends it to the thread under `id`, unless the thread has failed. */
  send(post: (id: number) => void): { id: number; reply: Promise<Reply> } {
    const id = this.nextId++;
    if (this.failure) return { id, reply: Promise.reject(this.failure) };
    const reply = new Promise<Reply>((resolve, reject) => {
      post(id);
      this.pending.set(id, { resolve, reject });
    });
    return { id, reply };
  }
}
