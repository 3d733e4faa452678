import { createHash, randomUUID, sign, verify } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { writeAtomically } from '../output.js';
import { Tagged, decodeCbor, encodeCbor, type CborValue } from './cbor.js';
import { box, c2paUuid, parseBoxes, parseSuperbox, superbox, type ParsedSuperbox } from './jumbf.js';
import { localSigner, parseCertificate } from './signer.js';

/**
 * The content credential of an output: a C2PA manifest store in a sidecar `<video>.c2pa`
 * (no JavaScript C2PA library embeds manifests in MP4 yet). One manifest with the assertions
 * c2pa.actions.v2 (c2pa.created, IPTC digital source type trainedAlgorithmicMedia, the software
 * agent), c2pa.ingredient.v3 (the source photo by SHA-256, never its pixels), c2pa.soft-binding
 * (the watermark's content id) and c2pa.hash.data (SHA-256 of every byte of the video), a
 * c2pa.claim.v2 listing their hashes, and a COSE_Sign1 (ES256) signature over the claim by the
 * local key (signer.ts), its certificate in x5chain.
 */
export const TRAINED_ALGORITHMIC_MEDIA = 'http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia';
export const SOFT_BINDING_ALG = 'org.reenact.watermark.1';
const SOFTWARE = { name: 'reenact', version: '0.1.0' };
const MIME: Record<string, string> = { '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.png': 'image/png', '.webp': 'image/webp', '.heic': 'image/heic', '.mp4': 'video/mp4', '.mov': 'video/quicktime', '.m4v': 'video/mp4' };

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

/** Writes `<video>.c2pa` (atomically) and returns its path. */
export async function writeCredential(input: CredentialInput): Promise<string> {
  const signer = await localSigner();
  const manifestLabel = `urn:c2pa:${randomUUID()}`;
  const base = `self#jumbf=/c2pa/${manifestLabel}`;
  const sourceHash = await sha256File(input.source);
  const assertions: [string, CborValue][] = [
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
      ? ([['c2pa.soft-binding', { alg: SOFT_BINDING_ALG, blocks: [{ scope: {}, value: Uint8Array.from(Buffer.from(input.contentId, 'hex')) }] }]] as [string, CborValue][])
      : []),
    ['c2pa.hash.data', { exclusions: [], name: 'whole file (sidecar manifest)', alg: 'sha256', hash: await sha256File(input.video), pad: new Uint8Array(0) }],
  ];
  const assertionBoxes = assertions.map(([label, value]) => superbox(c2paUuid('cbor'), label, [box('cbor', encodeCbor(value))]));
  const claim = encodeCbor({
    instanceID: `xmp:iid:${randomUUID()}`,
    claim_generator_info: SOFTWARE,
    signature: `${base}/c2pa.signature`,
    created_assertions: assertions.map(([label], i) => ({ url: `${base}/c2pa.assertions/${label}`, hash: sha256(parseSuperbox(parseBoxes(assertionBoxes[i]!)[0]!).payload) })),
    alg: 'sha256',
    'dc:title': basename(input.video),
    'dc:format': MIME[extname(input.video).toLowerCase()] ?? 'video/mp4',
  });
  const protectedHeader = encodeCbor(new Map([[1, -7]])); // alg: ES256
  const signature = sign('sha256', toBeSigned(protectedHeader, claim), { key: signer.key, dsaEncoding: 'ieee-p1363' });
  const cose = new Tagged(18, [protectedHeader, new Map<number, CborValue>([[33, signer.certificate]]), null, new Uint8Array(signature)]);
  const store = superbox(c2paUuid('c2pa'), 'c2pa', [
    superbox(c2paUuid('c2ma'), manifestLabel, [
      superbox(c2paUuid('c2as'), 'c2pa.assertions', assertionBoxes),
      superbox(c2paUuid('c2cl'), 'c2pa.claim.v2', [box('cbor', claim)]),
      superbox(c2paUuid('c2cs'), 'c2pa.signature', [box('cbor', encodeCbor(cose))]),
    ]),
  ]);
  const path = sidecarPath(input.video);
  await writeAtomically(path, (temp) => writeFile(temp, store));
  return path;
}

export interface CredentialCheck {
  file: string;
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
  value && typeof value === 'object' && !(value instanceof Uint8Array) && !Array.isArray(value) && !(value instanceof Map) && !(value instanceof Tagged) ? value : {};

function cborContent(box: ParsedSuperbox): CborValue {
  const content = box.children.find((child) => child.type === 'cbor');
  if (!content) throw new Error(`'${box.label}' has no CBOR content`);
  return decodeCbor(content.payload);
}

/** Reads and validates `<video>.c2pa`; undefined when there is none. */
export async function checkCredential(video: string): Promise<CredentialCheck | undefined> {
  const file = sidecarPath(video);
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(file));
  } catch {
    return undefined;
  }
  const problems: string[] = [];
  const result: CredentialCheck = { file, valid: false, tampered: false, problems };
  try {
    const store = parseSuperbox(parseBoxes(bytes)[0]!);
    if (store.uuid !== Buffer.from(c2paUuid('c2pa')).toString('hex')) throw new Error('not a C2PA manifest store');
    const manifest = parseSuperbox(store.children.at(-1)!);
    const parts = new Map(manifest.children.map((child) => parseSuperbox(child)).map((part) => [part.label, part]));
    const assertionStore = parts.get('c2pa.assertions');
    const claimBox = parts.get('c2pa.claim.v2');
    const signatureBox = parts.get('c2pa.signature');
    if (!assertionStore || !claimBox || !signatureBox) throw new Error('the manifest lacks its assertions, claim or signature');
    const claimBytes = claimBox.children.find((child) => child.type === 'cbor')!.payload;
    const claim = asRecord(decodeCbor(claimBytes));
    // The signature over the claim, by the certificate's key.
    const cose = cborContent(signatureBox);
    if (!(cose instanceof Tagged) || cose.tag !== 18 || !Array.isArray(cose.value) || cose.value.length !== 4) throw new Error('the signature is not a COSE_Sign1');
    const [protectedHeader, unprotected, , signature] = cose.value as [Uint8Array, Map<number, CborValue>, null, Uint8Array];
    const chain = unprotected instanceof Map ? unprotected.get(33) : undefined;
    const certificate = parseCertificate(Array.isArray(chain) ? (chain[0] as Uint8Array) : (chain as Uint8Array));
    result.signer = certificate.subject.replace(/^CN=/, '');
    result.selfSigned = certificate.issuer === certificate.subject && certificate.verify(certificate.publicKey);
    if (!verify('sha256', toBeSigned(protectedHeader, claimBytes), { key: certificate.publicKey, dsaEncoding: 'ieee-p1363' }, signature)) {
      problems.push('the signature does not match the claim: the manifest was altered after signing');
    }
    // Every assertion the claim lists, by hash.
    const assertions = new Map(assertionStore.children.map((child) => parseSuperbox(child)).map((a) => [a.label, a]));
    const listed = Array.isArray(claim.created_assertions) ? claim.created_assertions : [];
    for (const reference of listed.map(asRecord)) {
      const label = String(reference.url ?? '').split('/').at(-1)!;
      const assertion = assertions.get(label);
      if (!assertion) problems.push(`the assertion ${label} is missing`);
      else if (Buffer.compare(Buffer.from(sha256(assertion.payload)), Buffer.from(reference.hash as Uint8Array)) !== 0) problems.push(`the assertion ${label} was changed after signing`);
    }
    const content = (label: string) => (assertions.has(label) ? asRecord(cborContent(assertions.get(label)!)) : {});
    const action = asRecord((content('c2pa.actions.v2').actions as CborValue[] | undefined)?.[0]);
    if (typeof action.digitalSourceType === 'string') result.digitalSourceType = action.digitalSourceType;
    const agent = asRecord(action.softwareAgent);
    if (agent.name) result.softwareAgent = `${String(agent.name)} ${String(agent.version ?? '')}`.trim();
    const ingredient = content('c2pa.ingredient.v3');
    const ingredientHash = asRecord(ingredient['org.reenact.hash']).hash;
    if (ingredientHash instanceof Uint8Array) result.ingredient = { title: String(ingredient['dc:title'] ?? ''), sha256: Buffer.from(ingredientHash).toString('hex') };
    const block = asRecord((content('c2pa.soft-binding').blocks as CborValue[] | undefined)?.[0]);
    if (block.value instanceof Uint8Array) result.contentId = Buffer.from(block.value).toString('hex');
    // The hard binding: the video's bytes now against those signed.
    const dataHash = content('c2pa.hash.data').hash;
    if (!(dataHash instanceof Uint8Array)) problems.push('the manifest has no hash of the video (c2pa.hash.data)');
    else if (Buffer.compare(Buffer.from(await sha256File(video)), Buffer.from(dataHash)) !== 0) {
      result.tampered = true;
      problems.push("the video's bytes are not the ones signed: it was edited, re-encoded or replaced after it was made");
    }
  } catch (error) {
    problems.push(`${file} is not a valid C2PA manifest store (${(error as Error).message})`);
  }
  result.valid = problems.length === 0;
  return result;
}
