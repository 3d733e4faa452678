import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { projectRoot } from './shared.js';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI from source, as a user would run `reenact ...`. */
export function reenact(...args: string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(projectRoot, 'src', 'cli', 'run.ts'), ...args], {
      cwd: projectRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A failed run: non-zero exit, the message on stderr, and no output (or temporary) file left. */
export async function assertRefused(result: CliResult, pattern: RegExp, output: string): Promise<void> {
  assert.notEqual(result.code, 0, `expected failure; stdout: ${result.stdout}`);
  assert.match(result.stderr, pattern);
  assert.doesNotMatch(result.stderr, /unexpected error/);
  assert.ok(!existsSync(output), `${output} was written`);
  const folder = dirname(output);
  if (!existsSync(folder)) return;
  assert.deepEqual(
    (await readdir(folder)).filter((name) => name.includes('.partial')),
    [],
  );
}
