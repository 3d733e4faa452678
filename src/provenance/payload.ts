import { randomBytes } from 'node:crypto';
import { ReenactError } from '../errors.js';

/**
 * The 56 bits a watermark carries: a format version (4 bits), the motion model (4 bits), a random
 * content id (32 bits, also written into the file's metadata and its content credential) and a
 * CRC-16 over those 40 bits, so a misread payload is recognised instead of reported. Format 2 carries
 * these 56 bits in a convolutional code (code.ts); format 1 spread each bit over its own 13 chips.
 */
export interface WatermarkPayload {
  version: number;
  model: WatermarkModel;
  /** 8 lower-case hex digits. */
  contentId: string;
}

export type WatermarkModel = 'mesh' | 'fomm' | 'unknown';

export const PAYLOAD_BITS = 56;
export const FORMAT_VERSION = 2;
const MODEL_CODES: Record<WatermarkModel, number> = { unknown: 0, mesh: 1, fomm: 2 };

/** A fresh random content id (8 hex digits). */
export function newContentId(): string {
  return randomBytes(4).toString('hex');
}

/** CRC-16/CCITT-FALSE (polynomial 0x1021, initial 0xffff). */
export function crc16(bytes: Uint8Array): number {
  let crc = 0xffff;
  for (const byte of bytes) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

export function checkContentId(contentId: string): void {
  if (!/^[0-9a-f]{8}$/.test(contentId)) {
    throw new ReenactError(
      'BAD_ARGUMENT',
      `The content id "${contentId}" is not 8 hex digits.`,
      'Use newContentId() or leave the content id out.',
    );
  }
}

/** The payload as 56 bits (0 or 1), most significant first. */
export function encodePayload(payload: WatermarkPayload): Uint8Array {
  checkContentId(payload.contentId);
  if (!(Number.isInteger(payload.version) && payload.version >= 0 && payload.version < 16)) {
    throw new ReenactError(
      'BAD_ARGUMENT',
      `The watermark format version ${payload.version} does not fit in 4 bits.`,
      'Use a version from 0 to 15.',
    );
  }
  const data = new Uint8Array(5);
  data[0] = (payload.version << 4) | MODEL_CODES[payload.model];
  data.set(Buffer.from(payload.contentId, 'hex'), 1);
  const crc = crc16(data);
  const bytes = [...data, crc >> 8, crc & 0xff];
  const bits = new Uint8Array(PAYLOAD_BITS);
  for (let i = 0; i < PAYLOAD_BITS; i++) bits[i] = (bytes[i >> 3]! >> (7 - (i & 7))) & 1;
  return bits;
}

/**
 * Whether the first 8 bits are this format's version and a known model code: 6.4 bits of check
 * on top of the CRC (and a mark of format 1, whose layout this decoder misreads, is not reported
 * with a payload it does not carry).
 */
export function isCurrentFormat(bits: ArrayLike<number>): boolean {
  let head = 0;
  for (let i = 0; i < 8; i++) head = (head << 1) | (bits[i]! & 1);
  return head >> 4 === FORMAT_VERSION && Object.values(MODEL_CODES).includes(head & 15);
}

/** The payload of 56 bits, or undefined when the CRC does not match. */
export function decodePayload(bits: ArrayLike<number>): WatermarkPayload | undefined {
  const bytes = new Uint8Array(PAYLOAD_BITS / 8);
  for (let i = 0; i < PAYLOAD_BITS; i++) bytes[i >> 3]! |= (bits[i]! & 1) << (7 - (i & 7));
  const crc = (bytes[5]! << 8) | bytes[6]!;
  if (crc16(bytes.subarray(0, 5)) !== crc) return undefined;
  const code = bytes[0]! & 15;
  const model = (Object.keys(MODEL_CODES) as WatermarkModel[]).find((name) => MODEL_CODES[name] === code) ?? 'unknown';
  return { version: bytes[0]! >> 4, model, contentId: Buffer.from(bytes.subarray(1, 5)).toString('hex') };
}
