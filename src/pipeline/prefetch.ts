/**
 * Reads up to `depth` items ahead of the consumer, so a producer that waits on another process
 * (ffmpeg decoding the next frame) works while the consumer computes. Memory stays bounded:
 * never more than `depth` items are held. Stopping early, or an error in the consumer, closes
 * the source (which kills its decoder); an error in the source reaches the consumer in order.
 */
export async function* prefetch<T>(source: AsyncIterable<T>, depth = 2): AsyncGenerator<T> {
  const iterator = source[Symbol.asyncIterator]();
  const pending: Promise<IteratorResult<T>>[] = [];
  let finished = false;
  const fill = () => {
    while (!finished && pending.length < depth) {
      const next = iterator.next();
      // A rejection is observed when it reaches the front; this stops an unhandled-rejection warning meanwhile.
      next.catch(() => {});
      next.then(
        (result) => {
          if (result.done) finished = true;
        },
        () => {
          finished = true;
        },
      );
      pending.push(next);
    }
  };
  let completed = false;
  try {
    fill();
    while (pending.length > 0) {
      const result = await pending.shift()!;
      if (result.done) {
        completed = true;
        return;
      }
      fill();
      yield result.value;
    }
    completed = true;
  } finally {
    if (!completed) {
      // Let calls already queued settle before closing, so the source is not re-entered.
      await Promise.allSettled(pending);
      await iterator.return?.();
    }
  }
}
