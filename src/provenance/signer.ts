import {
  X509Certificate,
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  type KeyObject,
} from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ReenactError } from '../errors.js';

/**
 * The local signing identity for content credentials: an ECDSA P-256 key and a self-signed
 * X.509 certificate, made on first use in the user's config folder (REENACT_CONFIG_DIR, else
 * $XDG_CONFIG_HOME/reenact, else ~/.config/reenact); the private key file is mode 0600.
 */
export interface Signer {
  key: KeyObject;
  /** DER certificate, as COSE's x5chain carries it. */
  certificate: Uint8Array;
}

export function configFolder(): string {
  return process.env.REENACT_CONFIG_DIR ?? join(process.env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'reenact');
}

// DER encoding, just what one certificate needs.
function der(tag: number, ...contents: Uint8Array[]): Uint8Array {
  const body = Buffer.concat(contents);
  const length =
    body.length < 0x80
      ? [body.length]
      : body.length < 0x100
        ? [0x81, body.length]
        : [0x82, body.length >> 8, body.length & 0xff];
  return Buffer.concat([Uint8Array.from([tag, ...length]), body]);
}
const sequence = (...items: Uint8Array[]) => der(0x30, ...items);
const oid = (bytes: number[]) => der(0x06, Uint8Array.from(bytes));
const ECDSA_SHA256 = sequence(oid([0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]));
const time = (date: Date) =>
  der(0x18, Buffer.from(`${date.toISOString().slice(0, 19).replace(/[-:T]/g, '')}Z`, 'ascii'));
const commonName = (name: string) =>
  sequence(der(0x31, sequence(oid([0x55, 0x04, 0x03]), der(0x0c, Buffer.from(name, 'utf8')))));

/** The authority key identifier extension's OID (2.5.29.35), its DER content bytes. */
const AUTHORITY_KEY_IDENTIFIER = [0x55, 0x1d, 0x23];

/**
 * A self-signed certificate for the key, 20 years, in C2PA's certificate profile (its §14.5, as
 * c2pa-rs checks it): v3, digitalSignature key usage (critical), the emailProtection extended key
 * usage, not a CA, and key identifiers: the authority's (here its own, the SHA-1 of the key, as
 * RFC 5280 suggests) is required of every signer's certificate.
 */
function selfSignedCertificate(privateKey: KeyObject, publicKey: KeyObject, name: string): Uint8Array {
  const serial = randomBytes(12);
  serial[0]! &= 0x7f;
  // Valid from a day back: a reader whose clock runs behind this machine's would otherwise find
  // the certificate not yet valid (the C2PA SDK reports that as signingCredential.expired).
  const from = new Date(Date.now() - 86400_000);
  const later = new Date(from.getTime() + 20 * 365.25 * 86400_000);
  const keyUsage = sequence(
    oid([0x55, 0x1d, 0x0f]),
    der(0x01, Uint8Array.from([0xff])),
    der(0x04, der(0x03, Uint8Array.from([0x07, 0x80]))),
  );
  const extendedKeyUsage = sequence(
    oid([0x55, 0x1d, 0x25]),
    der(0x04, sequence(oid([0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x04]))),
  ); // emailProtection, as C2PA signers use
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  // The subjectPublicKey BIT STRING's bytes: an uncompressed P-256 point (65 bytes) ends the SPKI.
  const keyId = createHash('sha1')
    .update(spki.subarray(spki.length - 65))
    .digest();
  const subjectKeyIdentifier = sequence(oid([0x55, 0x1d, 0x0e]), der(0x04, der(0x04, keyId)));
  const authorityKeyIdentifier = sequence(oid(AUTHORITY_KEY_IDENTIFIER), der(0x04, sequence(der(0x80, keyId))));
  const tbs = sequence(
    der(0xa0, der(0x02, Uint8Array.from([2]))),
    der(0x02, serial),
    ECDSA_SHA256,
    commonName(name),
    sequence(time(from), time(later)),
    commonName(name),
    spki,
    der(0xa3, sequence(keyUsage, extendedKeyUsage, subjectKeyIdentifier, authorityKeyIdentifier)),
  );
  const signature = sign('sha256', tbs, privateKey);
  return sequence(tbs, ECDSA_SHA256, der(0x03, Uint8Array.from([0]), signature));
}

const KEY_FILE = 'credential-key.pem';
const CERT_FILE = 'credential-cert.der';

const SIGNER_NAME = 'reenact local content credential signer';

/**
 * The signer, created (key mode 0600) the first time. A certificate an earlier reenact made
 * without the key identifiers C2PA readers require is made again for the same key.
 */
export async function localSigner(): Promise<Signer> {
  const folder = configFolder();
  const keyPath = join(folder, KEY_FILE);
  const certPath = join(folder, CERT_FILE);
  let existing: { key: KeyObject; certificate: Uint8Array } | undefined;
  try {
    const [pem, certificate] = await Promise.all([readFile(keyPath, 'utf8'), readFile(certPath)]);
    existing = { key: createPrivateKey(pem), certificate: new Uint8Array(certificate) };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new ReenactError(
        'BAD_ARGUMENT',
        `The content-credential key in ${folder} cannot be read (${(error as Error).message}).`,
        `Fix or delete ${keyPath} and ${certPath}; a new key is made when they are missing.`,
        { cause: error },
      );
    }
  }
  if (existing && hasAuthorityKeyIdentifier(existing.certificate)) return existing;
  try {
    const suffix = `.${randomBytes(4).toString('hex')}.partial`;
    if (existing) {
      const certificate = selfSignedCertificate(existing.key, createPublicKey(existing.key), SIGNER_NAME);
      await writeFile(certPath + suffix, certificate, { mode: 0o644 });
      await rename(certPath + suffix, certPath);
      return { key: existing.key, certificate };
    }
    await mkdir(folder, { recursive: true, mode: 0o700 });
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const certificate = selfSignedCertificate(privateKey, publicKey, SIGNER_NAME);
    await writeFile(keyPath + suffix, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    await chmod(keyPath + suffix, 0o600);
    await writeFile(certPath + suffix, certificate, { mode: 0o644 });
    await rename(certPath + suffix, certPath);
    await rename(keyPath + suffix, keyPath);
    return { key: privateKey, certificate };
  } catch (cause) {
    throw new ReenactError(
      'OUTPUT_UNWRITABLE',
      `Cannot write the content-credential key in ${folder} (${(cause as Error).message}).`,
      'Make the folder writable, or set REENACT_CONFIG_DIR to a folder you can write to.',
      { cause },
    );
  }
}

/** Whether a DER certificate carries an authority key identifier (its OID, tagged, appears in it). */
function hasAuthorityKeyIdentifier(certificate: Uint8Array): boolean {
  return Buffer.from(certificate).includes(Buffer.from(oid(AUTHORITY_KEY_IDENTIFIER)));
}

/** Checks a DER certificate parses; returns it for its public key and subject. */
export function parseCertificate(der: Uint8Array): X509Certificate {
  return new X509Certificate(Buffer.from(der));
}
