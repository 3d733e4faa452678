import { createHash, randomUUID, sign, verify } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { writeAtomically } from '../output.js';
import {
  BMFF_EXCLUSIONS,
  bmffHashOfFile,
  bmffHashOfPlan,
  c2paBox,
  planEmbedding,
  readEmbeddedStore,
  readableExclusions,
  writePlan,
  type BmffExclusion,
} from './bmff.js';
import { Tagged, decodeCbor, encodeCbor, type CborValue } from './cbor.js';
import { box, c2paUuid, parseBoxes, parseSuperbox, superbox, type ParsedSuperbox } from './jumbf.js';
import { localSigner, parseCertificate, type Signer } from './signer.js';

/**
 * The content credential of an output: a C2PA manifest store embedded in the MP4 (bmff.ts), or
 * a sidecar `<video>.c2pa` for a file that is not BMFF. One manifest with the assertions
 * c2pa.actions.v2 (c2pa.created, IPTC digital source type trainedAlgorithmicMedia, the software
 * agent), c2pa.ingredient.v3 (the source photo by SHA-256, never its pixels), c2pa.soft-binding
 * (the watermark's content id) and the hard binding: c2pa.hash.bmff.v2 when embedded, else
 * c2pa.hash.data over every byte of the video; a c2pa.claim.v2 listing their hashes, and a
 * COSE_Sign1 (ES256) signature over the claim by the local key (signer.ts), its certificate in x5chain.
 */
export const TRAINED_ALGORITHMIC_MEDIA = 'http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia';
export const SOFT_BINDING_ALG = 'org.reenact.watermark.1';
const SOFTWARE = { name: 'reenact', version: '0.1.0' };
const BMFF_HASH = 'c2pa.hash.bmff.v2';
const MIME: Record<string, string> = {
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.png': 'image/png',
  '.webp': 'image/webp',
  '.heic': 'image/heic',
  '.mp4': 'video/mp4',
  '.mov': 'video/quicktime',
  '.m4v': 'video/mp4',
};

export function sidecarPath(video: string): string {
  return `${video}.c2pa`;
}

async function sha256File(path: string): Promise<Uint8Array> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return new Uint8Array(hash.digest());
}

const sha256 = (bytes: Uint8Array) => new Uint8Array(createHash('sha256').update(bytes).digest());

export interface CredentialInput {
  /** The finished video the credential describes. */
  video: string;
  /** The photo it was made from (hashed, never copied). */
  source: string;
  model: string;
  /** The watermark's content id; absent when the watermark was turned off. */
  contentId?: string;
}

/** The COSE Sig_structure for a detached payload. */
function toBeSigned(protectedHeader: Uint8Array, payload: Uint8Array): Uint8Array {
  return encodeCbor(['Signature1', protectedHeader, new Uint8Array(0), payload]);
}

interface ManifestIds {
  manifestLabel: string;
  instanceId: string;
}

/** The assertions that do not depend on the video's bytes. */
async function describingAssertions(input: CredentialInput): Promise<[string, CborValue][]> {
  const sourceHash = await sha256File(input.source);
  return [
    [
      'c2pa.actions.v2',
      {
        actions: [
          {
            action: 'c2pa.created',
            digitalSourceType: TRAINED_ALGORITHMIC_MEDIA,
            softwareAgent: SOFTWARE,
            description: `A photo animated with the motion of a driving video (motion model: ${input.model}).`,
          },
        ],
      },
    ],
    [
      'c2pa.ingredient.v3',
      {
        'dc:title': basename(input.source),
        'dc:format': MIME[extname(input.source).toLowerCase()] ?? 'application/octet-stream',
        relationship: 'inputTo',
        instanceID: `xmp:iid:sha256:${Buffer.from(sourceHash).toString('hex')}`,
        'org.reenact.hash': { alg: 'sha256', hash: sourceHash },
      },
    ],
    ...(input.contentId
      ? ([
          [
            'c2pa.soft-binding',
            {
              alg: SOFT_BINDING_ALG,
              blocks: [{ scope: {}, value: Uint8Array.from(Buffer.from(input.contentId, 'hex')) }],
            },
          ],
        ] as [string, CborValue][])
      : []),
  ];
}

/** The hard binding of an embedded manifest: the BMFF hash with the mandatory exclusions. */
function bmffHashAssertion(hash: Uint8Array): [string, CborValue] {
  const exclusions = BMFF_EXCLUSIONS.map((e): CborValue => ({
    xpath: e.xpath,
    ...(e.data ? { data: e.data.map((d) => ({ offset: d.offset, value: d.value })) } : {}),
  }));
  return [BMFF_HASH, { exclusions, alg: 'sha256', hash, name: 'jumbf manifest' }];
}

/** A signed manifest store with one manifest of these assertions. */
function manifestStore(signer: Signer, ids: ManifestIds, video: string, assertions: [string, CborValue][]): Uint8Array {
  const base = `self#jumbf=/c2pa/${ids.manifestLabel}`;
  const assertionBoxes = assertions.map(([label, value]) =>
    superbox(c2paUuid('cbor'), label, [box('cbor', encodeCbor(value))]),
  );
  const claim = encodeCbor({
    instanceID: ids.instanceId,
    claim_generator_info: SOFTWARE,
    signature: `${base}/c2pa.signature`,
    created_assertions: assertions.map(([label], i) => ({
      url: `${base}/c2pa.assertions/${label}`,
      hash: sha256(parseSuperbox(parseBoxes(assertionBoxes[i]!)[0]).payload),
    })),
    alg: 'sha256',
    'dc:title': basename(video),
    'dc:format': MIME[extname(video).toLowerCase()] ?? 'video/mp4',
  });
  // alg ES256 and the certificate (x5chain), both under the signature: C2PA 2 readers look for x5chain there.
  const protectedHeader = encodeCbor(
    new Map<number, CborValue>([
      [1, -7],
      [33, signer.certificate],
    ]),
  );
  // ES256 in IEEE P1363 form is always 64 bytes, so stores that differ only in a hash have one size.
  const signature = sign('sha256', toBeSigned(protectedHeader, claim), { key: signer.key, dsaEncoding: 'ieee-p1363' });
  const cose = new Tagged(18, [protectedHeader, new Map<number, CborValue>(), null, new Uint8Array(signature)]);
  return superbox(c2paUuid('c2pa'), 'c2pa', [
    superbox(c2paUuid('c2ma'), ids.manifestLabel, [
      superbox(c2paUuid('c2as'), 'c2pa.assertions', assertionBoxes),
      superbox(c2paUuid('c2cl'), 'c2pa.claim.v2', [box('cbor', claim)]),
      superbox(c2paUuid('c2cs'), 'c2pa.signature', [box('cbor', encodeCbor(cose))]),
    ]),
  ]);
}

export interface WrittenCredential {
  /** Where the manifest store is: the video itself, or `<video>.c2pa`. */
  file: string;
  embedded: boolean;
}

/**
 * Signs the credential and embeds it in the video (MP4 and other BMFF files, rewritten
 * atomically), or writes `<video>.c2pa` where it cannot be embedded (another container, a
 * fragmented MP4).
 */
export async function writeCredential(input: CredentialInput): Promise<WrittenCredential> {
  const signer = await localSigner();
  const ids = { manifestLabel: `urn:c2pa:${randomUUID()}`, instanceId: `xmp:iid:${randomUUID()}` };
  const assertions = await describingAssertions(input);
  // The box's size moves the boxes after it, and their offsets are hashed: sized first with a
  // placeholder hash of the same length, then signed over the file as it will be.
  const placeholder = c2paBox(
    manifestStore(signer, ids, input.video, [...assertions, bmffHashAssertion(new Uint8Array(32))]),
  );
  const plan = await planEmbedding(input.video, placeholder.length);
  if (plan) {
    const hash = await bmffHashOfPlan(plan);
    const c2pa = c2paBox(manifestStore(signer, ids, input.video, [...assertions, bmffHashAssertion(hash)]));
    await writeAtomically(input.video, (temp) => writePlan(plan, c2pa, temp));
    return { file: input.video, embedded: true };
  }
  const dataHash: [string, CborValue] = [
    'c2pa.hash.data',
    {
      exclusions: [],
      name: 'whole file (sidecar manifest)',
      alg: 'sha256',
      hash: await sha256File(input.video),
      pad: new Uint8Array(0),
    },
  ];
  const path = sidecarPath(input.video);
  const store = manifestStore(signer, ids, input.video, [...assertions, dataHash]);
  await writeAtomically(path, (temp) => writeFile(temp, store));
  return { file: path, embedded: false };
}

export interface CredentialCheck {
  /** Where the manifest store was found: the video itself, or its sidecar. */
  file: string;
  embedded: boolean;
  /** Signature, assertion hashes and the video's hash all check out. */
  valid: boolean;
  /** The manifest is intact but the video's bytes are not the ones signed (re-encoded, edited, swapped). */
  tampered: boolean;
  /** What failed, in words. */
  problems: string[];
  signer?: string;
  /** Self-signed, so it proves which key signed, not who holds it. */
  selfSigned?: boolean;
  digitalSourceType?: string;
  softwareAgent?: string;
  ingredient?: { title: string; sha256: string };
  contentId?: string;
}

const asRecord = (value: CborValue | undefined): Record<string, CborValue> =>
  value &&
  typeof value === 'object' &&
  !(value instanceof Uint8Array) &&
  !Array.isArray(value) &&
  !(value instanceof Map) &&
  !(value instanceof Tagged)
    ? value
    : {};

function cborContent(box: ParsedSuperbox): CborValue {
  const content = box.children.find((child) => child.type === 'cbor');
  if (!content) throw new Error(`'${box.label}' has no CBOR content`);
  return decodeCbor(content.payload);
}

/** Reads and validates the credential embedded in the video, else `<video>.c2pa`; undefined when there is neither. */
export async function checkCredential(video: string): Promise<CredentialCheck | undefined> {
  const embedded = await readEmbeddedStore(video);
  const file = embedded ? video : sidecarPath(video);
  let bytes: Uint8Array;
  if (embedded) bytes = embedded.store;
  else {
    try {
      bytes = new Uint8Array(await readFile(file));
    } catch {
      return undefined;
    }
  }
  const problems: string[] = [];
  const result: CredentialCheck = { file, embedded: embedded !== undefined, valid: false, tampered: false, problems };
  try {
    const store = parseSuperbox(parseBoxes(bytes)[0]);
    if (store.uuid !== Buffer.from(c2paUuid('c2pa')).toString('hex')) throw new Error('not a C2PA manifest store');
    const manifest = parseSuperbox(store.children.at(-1));
    const parts = new Map(manifest.children.map((child) => parseSuperbox(child)).map((part) => [part.label, part]));
    const assertionStore = parts.get('c2pa.assertions');
    const claimBox = parts.get('c2pa.claim.v2');
    const signatureBox = parts.get('c2pa.signature');
    if (!assertionStore || !claimBox || !signatureBox)
      throw new Error('the manifest lacks its assertions, claim or signature');
    const claimBytes = claimBox.children.find((child) => child.type === 'cbor')!.payload;
    const claim = asRecord(decodeCbor(claimBytes));
    // The signature over the claim, by the certificate's key.
    const cose = cborContent(signatureBox);
    if (!(cose instanceof Tagged) || cose.tag !== 18 || !Array.isArray(cose.value) || cose.value.length !== 4)
      throw new Error('the signature is not a COSE_Sign1');
    const [protectedHeader, unprotected, , signature] = cose.value as [
      Uint8Array,
      Map<number, CborValue>,
      null,
      Uint8Array,
    ];
    // x5chain in the protected header (C2PA 2), or the unprotected one (C2PA 1 manifests).
    const signed = decodeCbor(protectedHeader);
    const chain =
      (signed instanceof Map ? signed.get(33) : undefined) ??
      (unprotected instanceof Map ? unprotected.get(33) : undefined);
    const certificate = parseCertificate(Array.isArray(chain) ? (chain[0] as Uint8Array) : (chain as Uint8Array));
    result.signer = certificate.subject.replace(/^CN=/, '');
    result.selfSigned = certificate.issuer === certificate.subject && certificate.verify(certificate.publicKey);
    if (
      !verify(
        'sha256',
        toBeSigned(protectedHeader, claimBytes),
        { key: certificate.publicKey, dsaEncoding: 'ieee-p1363' },
        signature,
      )
    ) {
      problems.push('the signature does not match the claim: the manifest was altered after signing');
    }
    // Every assertion the claim lists, by hash.
    const assertions = new Map(assertionStore.children.map((child) => parseSuperbox(child)).map((a) => [a.label, a]));
    const listed = Array.isArray(claim.created_assertions) ? claim.created_assertions : [];
    for (const reference of listed.map(asRecord)) {
      const label = String(reference.url ?? '')
        .split('/')
        .at(-1)!;
      const assertion = assertions.get(label);
      if (!assertion) problems.push(`the assertion ${label} is missing`);
      else if (Buffer.compare(Buffer.from(sha256(assertion.payload)), Buffer.from(reference.hash as Uint8Array)) !== 0)
        problems.push(`the assertion ${label} was changed after signing`);
    }
    const content = (label: string) => (assertions.has(label) ? asRecord(cborContent(assertions.get(label)!)) : {});
    const action = asRecord((content('c2pa.actions.v2').actions as CborValue[] | undefined)?.[0]);
    if (typeof action.digitalSourceType === 'string') result.digitalSourceType = action.digitalSourceType;
    const agent = asRecord(action.softwareAgent);
    if (agent.name) result.softwareAgent = `${String(agent.name)} ${String(agent.version ?? '')}`.trim();
    const ingredient = content('c2pa.ingredient.v3');
    const ingredientHash = asRecord(ingredient['org.reenact.hash']).hash;
    if (ingredientHash instanceof Uint8Array)
      result.ingredient = {
        title: String(ingredient['dc:title'] ?? ''),
        sha256: Buffer.from(ingredientHash).toString('hex'),
      };
    const block = asRecord((content('c2pa.soft-binding').blocks as CborValue[] | undefined)?.[0]);
    if (block.value instanceof Uint8Array) result.contentId = Buffer.from(block.value).toString('hex');
    // The hard binding: the video's bytes now against those signed.
    const tampered = () => {
      result.tampered = true;
      problems.push(
        "the video's bytes are not the ones signed: it was edited, re-encoded or replaced after it was made",
      );
    };
    if (assertions.has(BMFF_HASH)) {
      const binding = content(BMFF_HASH);
      const exclusions = parseExclusions(binding.exclusions);
      if (!(binding.hash instanceof Uint8Array) || !exclusions || !readableExclusions(exclusions))
        problems.push(`the ${BMFF_HASH} hard binding has a form reenact cannot check`);
      else if (Buffer.compare(Buffer.from(await bmffHashOfFile(video, exclusions)), Buffer.from(binding.hash)) !== 0)
        tampered();
    } else {
      const dataHash = content('c2pa.hash.data').hash;
      if (!(dataHash instanceof Uint8Array))
        problems.push('the manifest has no hash of the video (c2pa.hash.data or c2pa.hash.bmff.v2)');
      else if (Buffer.compare(Buffer.from(await sha256File(video)), Buffer.from(dataHash)) !== 0) tampered();
    }
  } catch (error) {
    problems.push(`${file} is not a valid C2PA manifest store (${(error as Error).message})`);
  }
  result.valid = problems.length === 0;
  return result;
}

/** The exclusions of a BMFF hash assertion, or undefined when malformed. */
function parseExclusions(value: CborValue | undefined): BmffExclusion[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const out: BmffExclusion[] = [];
  for (const item of value.map(asRecord)) {
    if (typeof item.xpath !== 'string') return undefined;
    const exclusion: BmffExclusion = { xpath: item.xpath };
    if (item.data !== undefined && item.data !== null) {
      if (!Array.isArray(item.data)) return undefined;
      exclusion.data = [];
      for (const d of item.data.map(asRecord)) {
        if (typeof d.offset !== 'number' || !(d.value instanceof Uint8Array)) return undefined;
        exclusion.data.push({ offset: d.offset, value: d.value });
      }
    }
    // Exclusions by length, subset, version or flags are not written by reenact; refused rather than misread.
    if (['length', 'subset', 'version', 'flags'].some((key) => item[key] !== undefined && item[key] !== null))
      return undefined;
    out.push(exclusion);
  }
  return out;
}
