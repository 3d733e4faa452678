import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { access, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { ReenactError, throwIfAborted } from './errors.js';

/** Temporary files not yet committed or discarded, for removePendingOutputs(). */
const pending = new Set<string>();

/**
 * Removes every temporary output not yet committed or discarded, at once. For the program that
 * owns the process (the CLI, a server) when it must exit before the work it aborted has
 * unwound; the library itself never calls it and never installs signal or exit handlers:
 * aborting its AbortSignal makes each stage remove its own temporary files.
 */
export function removePendingOutputs(): void {
  for (const path of pending) rmSync(path, { force: true, recursive: true });
  pending.clear();
}

/**
 * An output file written under a temporary name beside its final path and renamed into
 * place only when complete, so a failure or an abort never leaves a half-written file.
 */
export class PendingOutput {
  /** Where to write; keeps the final extension so tools that infer the format from it work. */
  readonly tempPath: string;

  private constructor(readonly finalPath: string) {
    const ext = extname(finalPath);
    const stem = basename(finalPath, ext);
    this.tempPath = join(dirname(finalPath), `.${stem}.${randomBytes(4).toString('hex')}.partial${ext}`);
    pending.add(this.tempPath);
  }

  /** Checks that the folder exists and is writable before any work starts. */
  static async create(finalPath: string): Promise<PendingOutput> {
    const folder = dirname(finalPath);
    try {
      const info = await stat(folder);
      if (!info.isDirectory()) throw new Error('not a folder');
      await access(folder, 2 /* W_OK */);
    } catch (cause) {
      throw new ReenactError(
        'OUTPUT_UNWRITABLE',
        `Cannot write ${finalPath}: the folder ${folder} does not exist or is not writable.`,
        'Choose an output path in a folder you can write to.',
        { cause },
      );
    }
    return new PendingOutput(finalPath);
  }

  async commit(): Promise<void> {
    await rename(this.tempPath, this.finalPath);
    pending.delete(this.tempPath);
  }

  async discard(): Promise<void> {
    await rm(this.tempPath, { force: true, recursive: true });
    pending.delete(this.tempPath);
  }
}

/**
 * Runs `write` against a temporary path and renames it to `finalPath` only if it succeeds and
 * `signal` was not aborted meanwhile (then it throws CANCELLED and leaves nothing).
 */
export async function writeAtomically<T>(
  finalPath: string,
  write: (tempPath: string) => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  throwIfAborted(signal);
  const output = await PendingOutput.create(finalPath);
  try {
    const result = await write(output.tempPath);
    throwIfAborted(signal);
    await output.commit();
    return result;
  } catch (error) {
    await output.discard();
    throw error;
  }
}
