import { createRequire } from 'node:module';

/** A native addon that `npm install` builds where a C++ toolchain is present, or why it is absent. */
export interface Addon<T> {
  module?: T;
  reason?: string;
}

/**
 * Loads build/Release/`name`.node: reenact's small addons are optimisations of loops that also
 * exist in JavaScript, so a missing build is a reason to report, not an error. `what` names it in
 * that reason ("the native warp").
 */
export function loadAddon<T>(name: string, what: string): Addon<T> {
  try {
    return { module: createRequire(import.meta.url)(`../../build/Release/${name}.node`) as T };
  } catch (error) {
    return {
      reason: `${what} is not built (${(error as Error).message.split('\n')[0]}); run npm install with a C++ compiler (g++, make, python3)`,
    };
  }
}
