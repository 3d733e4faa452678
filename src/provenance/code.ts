/**
 * The error-correcting code of the watermark's payload: a rate-1/3 convolutional code of
 * constraint length 7 (generators 133, 171, 165 octal, free distance 15), ended by 6 zero bits so
 * the decoder knows the final state, decoded with soft-decision Viterbi. Each payload bit then
 * rests on the chips of 21 or more coded bits instead of its own few: at the same mark strength
 * it is read wrong orders of magnitude less often than a bit spread over its own chips alone.
 */
const CONSTRAINT = 7;
const MEMORY = CONSTRAINT - 1;
const STATES = 1 << MEMORY;
const GENERATORS = [0o133, 0o171, 0o165];

/** Coded bits for a message of `length` bits (the message, then MEMORY zeros to end in state 0). */
export function codedLength(length: number): number {
  return (length + MEMORY) * GENERATORS.length;
}

function parity(value: number): number {
  let v = value;
  v ^= v >> 4;
  v ^= v >> 2;
  v ^= v >> 1;
  return v & 1;
}

/** The coded bits of register `state` (the last MEMORY inputs, newest in the low bit) receiving `input`. */
function outputs(state: number, input: number): number[] {
  const register = (state << 1) | input;
  return GENERATORS.map((g) => parity(register & g));
}

/** The transitions, computed once: per state and input, the coded bits as +1 (bit 0) or -1 (bit 1). */
const SIGNS: Int8Array[][] = Array.from({ length: STATES }, (_, state) =>
  [0, 1].map((input) => Int8Array.from(outputs(state, input), (bit) => (bit ? -1 : 1))),
);

export function convolutionalEncode(message: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(codedLength(message.length));
  let state = 0;
  for (let t = 0; t < message.length + MEMORY; t++) {
    const input = t < message.length ? message[t]! & 1 : 0;
    out.set(outputs(state, input), t * GENERATORS.length);
    state = ((state << 1) | input) & (STATES - 1);
  }
  return out;
}

/**
 * The message (`length` bits) whose coded bits correlate best with `soft` (one value per coded
 * bit, positive for 0, negative for 1, in proportion to how sure the read is): maximum likelihood
 * for Gaussian noise of equal spread on every coded bit.
 */
export function viterbiDecode(soft: ArrayLike<number>, length: number): Uint8Array {
  const steps = length + MEMORY;
  if (soft.length !== codedLength(length))
    throw new Error(`viterbiDecode: ${soft.length} soft values for ${length} bits`);
  let metric = new Float64Array(STATES).fill(-Infinity);
  metric[0] = 0;
  let next = new Float64Array(STATES);
  // The surviving predecessor of each state at each step (its input is the state's low bit).
  const from = new Uint8Array(steps * STATES);
  for (let t = 0; t < steps; t++) {
    next.fill(-Infinity);
    const inputs = t < length ? 2 : 1;
    const o = t * GENERATORS.length;
    for (let state = 0; state < STATES; state++) {
      const m = metric[state]!;
      if (m === -Infinity) continue;
      for (let input = 0; input < inputs; input++) {
        const signs = SIGNS[state]![input]!;
        let branch = m;
        for (let g = 0; g < signs.length; g++) branch += signs[g]! * soft[o + g]!;
        const to = ((state << 1) | input) & (STATES - 1);
        if (branch > next[to]!) {
          next[to] = branch;
          from[t * STATES + to] = state;
        }
      }
    }
    [metric, next] = [next, metric];
  }
  const message = new Uint8Array(length);
  let state = 0;
  for (let t = steps - 1; t >= 0; t--) {
    if (t < length) message[t] = state & 1;
    state = from[t * STATES + state]!;
  }
  return message;
}
