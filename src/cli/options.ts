import { InvalidArgumentError } from 'commander';
import { ReenactError } from '../errors.js';

/** A commander option parser for a whole number in [min, max]. */
export function integerIn(min: number, max: number): (value: string) => number {
  return (value) => {
    const number = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || number < min || number > max) {
      throw new InvalidArgumentError(`Expected a whole number from ${min} to ${max}.`);
    }
    return number;
  };
}

/** A commander option parser for a number in [min, max]. */
export function numberIn(min: number, max: number): (value: string) => number {
  return (value) => {
    const number = Number(value);
    if (value.trim() === '' || !Number.isFinite(number) || number < min || number > max) {
      throw new InvalidArgumentError(`Expected a number from ${min} to ${max}.`);
    }
    return number;
  };
}

/** A comma-separated list, each item trimmed (the library checks the items). */
export function commaList<T extends string>(): (value: string) => T[] {
  return (value) => value.split(',').map((item) => item.trim()) as T[];
}

/** An even whole number in [min, max] (video sides in yuv420p must be even). */
export function evenIn(min: number, max: number): (value: string) => number {
  const parse = integerIn(min, max);
  return (value) => {
    const number = parse(value);
    if (number % 2 !== 0)
      throw new InvalidArgumentError(`Expected an even number (video sides must be even), e.g. ${number + 1}.`);
    return number;
  };
}

/**
 * A positive whole number option whose refusal names the flag and an example (a ReenactError,
 * as the FOMM tools report it).
 */
export function positiveInteger(name: string): (value: string) => number {
  return (value: string) => {
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < 1) {
      throw new ReenactError(
        'BAD_ARGUMENT',
        `${name} must be a whole number of at least 1, not "${value}".`,
        `Pass for example ${name} 2.`,
      );
    }
    return parsed;
  };
}

/**
 * The flags that set library options, by the names library errors give them in backticks; a
 * phrase with its value (`startFrame: best`) maps to a flag of its own.
 */
const FLAGS: Record<string, string> = {
  'startFrame: best': '--best-frame',
  startFrame: '--start-frame',
  face: '--face',
  model: '--model',
  config: '--config',
  checkpoint: '--checkpoint',
  threads: '--threads',
  expressionScale: '--expression-scale',
  animate: '--animate',
  size: '--size',
  cropScale: '--scale',
  minFrames: '--min-frames',
  framesDir: '--frames',
  concurrency: '--concurrency',
  attempts: '--attempts',
};

/** A library error as the CLI prints it: option names turned into the flags that set them. */
export function describeForCli(error: ReenactError): string {
  return error.describe().replace(/`([^`]+)`/g, (quoted, name: string) => FLAGS[name] ?? quoted);
}

/** Machine-readable output: one JSON document on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(
    `${JSON.stringify(value, (_key, v: unknown) => (typeof v === 'number' ? roundForJson(v) : v), 2)}\n`,
  );
}

/** Sub-pixel precision without float noise (0.1 + 0.2 style tails). */
function roundForJson(value: number): number {
  return Number.isInteger(value) ? value : Math.round(value * 1000) / 1000;
}
