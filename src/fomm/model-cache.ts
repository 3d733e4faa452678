import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { writeAtomically } from '../output.js';

/** The default folder for cached converted models. */
export function defaultCacheDir(): string {
  if (process.env.REENACT_CACHE_DIR) return process.env.REENACT_CACHE_DIR;
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'reenact');
}

/** Converted models kept: a full-size entry is ~400 MB, and every config, checkpoint or reenact update makes a new one. */
const CACHE_ENTRIES_KEPT = 4;

/** Marks `folder` as just used and removes the least recently used other entries beyond the limit. */
async function pruneCache(folder: string): Promise<void> {
  try {
    const now = new Date();
    await utimes(folder, now, now);
    const root = dirname(folder);
    const entries = await Promise.all(
      (await readdir(root)).map(async (name) => ({
        path: join(root, name),
        used: (await stat(join(root, name))).mtimeMs,
      })),
    );
    entries.sort((a, b) => b.used - a.used);
    for (const entry of entries.slice(CACHE_ENTRIES_KEPT))
      if (entry.path !== folder) await rm(entry.path, { recursive: true, force: true });
  } catch {
    // Pruning is housekeeping; a folder another process is using or removing is left alone.
  }
}

/** The model bytes from the cache folder, or built and stored there (atomically; a cache that cannot be written is skipped). */
async function cachedModel(folder: string, name: string, build: () => { toBytes(): Uint8Array }): Promise<Uint8Array> {
  const path = join(folder, name);
  if (existsSync(path)) {
    try {
      return new Uint8Array(await readFile(path));
    } catch {
      // Unreadable cache entry: rebuild below.
    }
  }
  const bytes = build().toBytes();
  try {
    await mkdir(folder, { recursive: true });
    await writeAtomically(path, (temp) => writeFile(temp, bytes));
  } catch {
    // The cache only saves build time; running without it is correct.
  }
  return bytes;
}

/**
 * The on-disk cache of one model's converted ONNX graphs: a folder under `<root>/fomm/` named by
 * a digest of everything the graphs depend on, so any change of those builds them afresh.
 */
export class ModelCache {
  private constructor(readonly folder: string) {}

  /** The entry for `identity` (JSON-serialisable) under `root` (default: defaultCacheDir()). */
  static open(root: string | undefined, identity: object): ModelCache {
    const key = createHash('sha256').update(JSON.stringify(identity)).digest('hex').slice(0, 32);
    return new ModelCache(join(root ?? defaultCacheDir(), 'fomm', key));
  }

  /** The model bytes named `name`, from the cache or built and stored. */
  model(name: string, build: () => { toBytes(): Uint8Array }): Promise<Uint8Array> {
    return cachedModel(this.folder, name, build);
  }

  /** Marks this entry as used and removes the least recently used others beyond the limit. */
  prune(): Promise<void> {
    return pruneCache(this.folder);
  }
}
