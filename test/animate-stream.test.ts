import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { mapAhead } from '../src/pipeline/motion.js';
import { prefetch } from '../src/pipeline/prefetch.js';

/** A source of 0..count-1 that records how far it has been read and whether it was closed. */
function counting(count: number) {
  const state = { produced: 0, closed: false };
  async function* generate(): AsyncGenerator<number> {
    try {
      for (let i = 0; i < count; i++) {
        await sleep(1);
        state.produced++;
        yield i;
      }
    } finally {
      state.closed = true;
    }
  }
  return { state, source: generate() };
}

describe('pipeline streaming helpers', () => {
  test('mapAhead yields results in source order, however they finish, with at most depth + 1 in flight', async () => {
    const { source } = counting(20);
    let inFlight = 0;
    let mostInFlight = 0;
    const seen: [number, number][] = [];
    for await (const pair of mapAhead(
      source,
      async (n) => {
        inFlight++;
        mostInFlight = Math.max(mostInFlight, inFlight);
        // Later items finish first.
        await sleep(n % 3 === 0 ? 15 : 1);
        inFlight--;
        return n * n;
      },
      3,
    )) {
      seen.push(pair);
    }
    assert.deepEqual(
      seen,
      Array.from({ length: 20 }, (_, n) => [n, n * n]),
    );
    assert.ok(mostInFlight > 1 && mostInFlight <= 4, `at most depth + 1 in flight: ${mostInFlight}`);
  });

  test('mapAhead passes a failure on at its place in the order', async () => {
    const { source } = counting(10);
    const seen: number[] = [];
    await assert.rejects(async () => {
      for await (const [n] of mapAhead(
        source,
        async (n) => {
          if (n === 4) throw new Error('frame 4 failed');
          return n;
        },
        2,
      )) {
        seen.push(n);
      }
    }, /frame 4 failed/);
    assert.deepEqual(seen, [0, 1, 2, 3]);
  });

  test('prefetch reads ahead a bounded amount and closes the source when the consumer stops', async () => {
    const { state, source } = counting(100);
    const read: number[] = [];
    for await (const n of prefetch(source, 2)) {
      read.push(n);
      await sleep(5);
      assert.ok(state.produced <= read.length + 2, `read ahead ${state.produced - read.length}`);
      if (n === 9) break;
    }
    assert.deepEqual(
      read,
      Array.from({ length: 10 }, (_, n) => n),
    );
    assert.equal(state.closed, true, 'the source (a decoder) is closed');
    assert.ok(state.produced < 20);
  });

  test('prefetch delivers every item and a source error after the items before it', async () => {
    async function* failing(): AsyncGenerator<number> {
      yield 1;
      yield 2;
      throw new Error('decoder died');
    }
    const read: number[] = [];
    await assert.rejects(async () => {
      for await (const n of prefetch(failing(), 3)) read.push(n);
    }, /decoder died/);
    assert.deepEqual(read, [1, 2]);
    const all: number[] = [];
    for await (const n of prefetch(counting(7).source, 2)) all.push(n);
    assert.deepEqual(all, [0, 1, 2, 3, 4, 5, 6]);
  });
});
