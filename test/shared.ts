import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The ../shared folder beside the checkout (fixtures and FOMM conformance data), read in place. */
export const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const sharedDir = process.env.REENACT_SHARED ?? resolve(projectRoot, '..', 'shared');
export const hasShared = existsSync(join(sharedDir, 'fixtures'));

/** Path of a file under ../shared. */
export function shared(...parts: string[]): string {
  return join(sharedDir, ...parts);
}

/** For `test(name, { skip: skipWithoutShared }, ...)`: a printed reason when ../shared is absent. */
export const skipWithoutShared: string | false = hasShared
  ? false
  : `../shared not found at ${sharedDir}; fixture tests skipped`;

/** A deterministic pseudo-random sequence (so a failure can be reproduced). */
export function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}
