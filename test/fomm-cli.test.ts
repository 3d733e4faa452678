import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { projectRoot, shared, skipWithoutShared } from './shared.js';

const run = promisify(execFile);
const golden = shared('fomm', 'golden-tiny');

/** Runs the CLI in a child process; resolves with its exit code and output. */
async function reenact(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const script = `import { main } from './src/cli/main.ts'; process.exitCode = await main(['node', 'reenact', ...JSON.parse(process.env.REENACT_ARGS)]);`;
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: projectRoot,
      env: { ...process.env, ...env, REENACT_ARGS: JSON.stringify(args) },
      maxBuffer: 1 << 24,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

describe('reenact fomm / bench commands', { skip: skipWithoutShared }, () => {
  const folders: string[] = [];
  after(async () => {
    for (const folder of folders) await rm(folder, { recursive: true, force: true });
  });
  const temp = async () => {
    const dir = await mkdtemp(join(tmpdir(), 'reenact-fomm-cli-'));
    folders.push(dir);
    return dir;
  };

  test('fomm conformance writes every golden file and passes --golden', async () => {
    const work = await temp();
    const out = join(work, 'out');
    const result = await reenact(
      [
        'fomm',
        'conformance',
        '--config',
        join(golden, 'config.yaml'),
        '--checkpoint',
        join(golden, 'checkpoint.zip.pth.tar'),
        '--frames',
        golden,
        '--out',
        out,
        '--golden',
        golden,
        '--threads',
        '1',
      ],
      { REENACT_CACHE_DIR: join(work, 'cache') },
    );
    assert.equal(result.code, 0, result.stderr);
    assert.equal((result.stdout.match(/^ok /gm) ?? []).length, 10);
    const expected = (await readdir(golden)).filter((n) => n.endsWith('.npy')).sort();
    assert.deepEqual((await readdir(out)).sort(), expected);
  });

  test('a config that does not fit the checkpoint fails with CHECKPOINT_MISMATCH text and no output', async () => {
    const work = await temp();
    const out = join(work, 'out');
    const result = await reenact(
      [
        'fomm',
        'conformance',
        '--config',
        shared('fomm', 'configs', 'vox-adv-256.yaml'),
        '--checkpoint',
        join(golden, 'checkpoint.legacy.pth.tar'),
        '--frames',
        golden,
        '--out',
        out,
      ],
      { REENACT_CACHE_DIR: join(work, 'cache') },
    );
    assert.equal(result.code, 1);
    assert.match(result.stderr, /kp_detector\.\S+ is float32 \[\d+(, \d+)*\]; the config expects float32 \[/);
    assert.ok(!existsSync(out), 'no output folder');
  });

  test('bench fomm prints one JSON line with the median per frame (random weights)', async () => {
    const work = await temp();
    const result = await reenact(
      ['bench', 'fomm', '--config', join(golden, 'config.yaml'), '--frames', '2', '--threads', '1'],
      { REENACT_CACHE_DIR: work },
    );
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.trim().split('\n');
    assert.equal(lines.length, 1);
    const figures = JSON.parse(lines[0]!) as Record<string, unknown>;
    assert.equal(figures.bench, 'fomm');
    assert.equal(figures.weights, 'random');
    assert.equal(figures.frames, 2);
    assert.ok(typeof figures.medianMsPerFrame === 'number' && figures.medianMsPerFrame > 0);
  });

  test('bad --threads is a clear error', async () => {
    const result = await reenact(['bench', 'fomm', '--config', join(golden, 'config.yaml'), '--threads', 'two']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /--threads must be a whole number/);
  });
});
