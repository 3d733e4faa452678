/**
 * One Euro filter (Casiez, Roussel, Vogel 2012) over a vector of values sharing one clock:
 * a low-pass whose cutoff rises with the speed of each value, so jitter at rest is smoothed
 * strongly while fast motion passes with little lag.
 */
export interface OneEuroOptions {
  /** Cutoff in Hz at rest: lower smooths more. */
  minCutoff: number;
  /** Cutoff increase per unit of speed (value units per second). */
  beta: number;
  /** Cutoff in Hz for the speed estimate. */
  derivativeCutoff: number;
}

export class OneEuroFilter {
  private value: Float64Array | undefined;
  private speed: Float64Array;
  private lastTime = 0;

  constructor(
    length: number,
    private readonly options: OneEuroOptions,
  ) {
    this.speed = new Float64Array(length);
  }

  /** Filters `input` (sampled at `time` seconds) in place. */
  filter(input: Float64Array, time: number): void {
    if (!this.value || time <= this.lastTime) {
      // First sample, or time went backwards (a seek): restart from this sample.
      this.value = Float64Array.from(input);
      this.speed.fill(0);
      this.lastTime = time;
      return;
    }
    const dt = time - this.lastTime;
    this.lastTime = time;
    const { minCutoff, beta, derivativeCutoff } = this.options;
    const alphaSpeed = smoothingFactor(dt, derivativeCutoff);
    const value = this.value;
    const speed = this.speed;
    for (let i = 0; i < input.length; i++) {
      const rawSpeed = (input[i]! - value[i]!) / dt;
      const s = speed[i]! + alphaSpeed * (rawSpeed - speed[i]!);
      speed[i] = s;
      const alpha = smoothingFactor(dt, minCutoff + beta * Math.abs(s));
      const v = value[i]! + alpha * (input[i]! - value[i]!);
      value[i] = v;
      input[i] = v;
    }
  }

  reset(): void {
    this.value = undefined;
  }
}

function smoothingFactor(dt: number, cutoff: number): number {
  const r = 2 * Math.PI * cutoff * dt;
  return r / (r + 1);
}
