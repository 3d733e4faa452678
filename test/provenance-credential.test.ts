import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { initSync, WasmReader } from '@contentauth/c2pa-wasm';
import { animate } from '../src/pipeline/animate.js';
import { localSigner } from '../src/provenance/signer.js';
import { makeClip, scratchFolder } from './animate-measure.js';
import { shared, skipWithoutShared } from './shared.js';

const require = createRequire(import.meta.url);

interface ReaderCode {
  code: string;
}
interface ReaderReport {
  success: string[];
  failure: string[];
  manifest: {
    assertions: { label: string; data: Record<string, unknown> }[];
    ingredients: { title: string; relationship: string }[];
  };
}

/** The C2PA SDK's own reader (c2pa-rs, built to wasm by the Content Authenticity Initiative) on a file. */
async function readWithC2paSdk(path: string): Promise<ReaderReport> {
  const reader = await WasmReader.fromBytes('video/mp4', await readFile(path));
  try {
    const store = JSON.parse(reader.json()) as {
      active_manifest: string;
      manifests: Record<string, ReaderReport['manifest']>;
      validation_results: { activeManifest: { success: ReaderCode[]; failure: ReaderCode[] } };
    };
    const results = store.validation_results.activeManifest;
    return {
      success: results.success.map((item) => item.code),
      failure: results.failure.map((item) => item.code),
      manifest: store.manifests[store.active_manifest]!,
    };
  } finally {
    reader.free();
  }
}

describe('content credential read by the C2PA SDK', { skip: skipWithoutShared }, () => {
  let folder: string;
  let marked: string;
  before(async () => {
    initSync({ module: await readFile(require.resolve('@contentauth/c2pa-wasm/c2pa.wasm')) });
    folder = await scratchFolder();
    process.env.REENACT_CONFIG_DIR = join(folder, 'config');
    const driving = await makeClip(
      ['-i', shared('fixtures', 'driving-talking.mp4')],
      ['-t', '2', '-c:v', 'libx264', '-crf', '16', '-an'],
      join(folder, 'driving.mp4'),
    );
    marked = join(folder, 'marked.mp4');
    await animate({ source: shared('fixtures', 'portrait-studio.png'), driving, output: marked });
  });
  after(async () => {
    if (folder) await rm(folder, { recursive: true, force: true });
  });

  test('valid but for the trust in a local key: claim signature, every hashed assertion, the certificate profile', async () => {
    const { success, failure, manifest } = await readWithC2paSdk(marked);
    // The local key is nobody's certified identity, so no reader trusts it; nothing else may fail
    // (a certificate without its key identifiers failed as signingCredential.invalid).
    assert.deepEqual(failure, ['signingCredential.untrusted']);
    assert.ok(success.includes('claimSignature.validated'), success.join(', '));
    // Each assertion and the ingredient, referenced from the claim by hash.
    const hashed = success.filter((code) => code === 'assertion.hashedURI.match').length;
    assert.equal(hashed, manifest.assertions.length + manifest.ingredients.length);
    const actions = manifest.assertions.find((a) => a.label === 'c2pa.actions.v2')!.data.actions as {
      action: string;
      digitalSourceType: string;
    }[];
    assert.equal(actions[0]!.action, 'c2pa.created');
    assert.equal(
      actions[0]!.digitalSourceType,
      'http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia',
    );
    assert.deepEqual(
      manifest.ingredients.map((i) => [i.title, i.relationship]),
      [['portrait-studio.png', 'inputTo']],
    );
    assert.ok(manifest.assertions.some((a) => a.label === 'c2pa.soft-binding'));
  });

  test('a copy whose video bytes changed fails its BMFF hash', async () => {
    const bytes = await readFile(marked);
    const mdat = bytes.indexOf(Buffer.from('mdat'));
    assert.ok(mdat > 0);
    bytes[mdat + 5000] = bytes[mdat + 5000]! ^ 0xff;
    const copy = join(folder, 'edited.mp4');
    await writeFile(copy, bytes);
    const { failure } = await readWithC2paSdk(copy);
    assert.ok(failure.includes('assertion.bmffHash.mismatch'), failure.join(', '));
  });

  test("a signer certificate without key identifiers (an earlier reenact's) is made again for the same key", async () => {
    process.env.REENACT_CONFIG_DIR = join(folder, 'renew');
    const first = await localSigner();
    const certificatePath = join(folder, 'renew', 'credential-cert.der');
    // The authority key identifier's OID (2.5.29.35) turned into another one: as if it were absent.
    const old = Buffer.from(first.certificate);
    const at = old.indexOf(Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x23]));
    assert.ok(at > 0);
    old[at + 4] = 0x24;
    await writeFile(certificatePath, old);
    const renewed = await localSigner();
    assert.notDeepEqual(Buffer.from(renewed.certificate), old);
    assert.ok(Buffer.from(renewed.certificate).includes(Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x23])));
    assert.deepEqual(await readFile(certificatePath), Buffer.from(renewed.certificate));
    const key = (k: typeof first.key) => createPublicKey(k).export({ type: 'spki', format: 'der' });
    assert.deepEqual(key(renewed.key), key(first.key));
  });
});
