/**
 * JUMBF (ISO/IEC 19566-5) boxes as C2PA uses them: a box is a 32-bit big-endian length, a
 * four-letter type and a payload; a superbox ('jumb') starts with a description box ('jumd':
 * a 16-byte type UUID, toggles, a label) followed by its content boxes.
 */

/** C2PA's JUMBF type UUIDs: a four-letter code followed by the common suffix. */
export function c2paUuid(code: 'c2pa' | 'c2ma' | 'c2as' | 'c2cl' | 'c2cs' | 'cbor'): Uint8Array {
  return Uint8Array.from([
    ...Buffer.from(code, 'ascii'),
    0x00,
    0x11,
    0x00,
    0x10,
    0x80,
    0x00,
    0x00,
    0xaa,
    0x00,
    0x38,
    0x9b,
    0x71,
  ]);
}

export function box(type: string, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + payload.length);
  new DataView(out.buffer).setUint32(0, out.length);
  out.set(Buffer.from(type, 'ascii'), 4);
  out.set(payload, 8);
  return out;
}

/** A superbox: description (type UUID, requestable, labelled) then the children, already encoded. */
export function superbox(uuid: Uint8Array, label: string, children: Uint8Array[]): Uint8Array {
  const description = box('jumd', Uint8Array.from([...uuid, 0x03, ...Buffer.from(label, 'utf8'), 0]));
  return box('jumb', Buffer.concat([description, ...children]));
}

export interface ParsedBox {
  type: string;
  payload: Uint8Array;
  /** The whole box, header included. */
  bytes: Uint8Array;
}

export interface ParsedSuperbox {
  uuid: string;
  label: string;
  /** The boxes after the description. */
  children: ParsedBox[];
  /** The superbox's payload (description and children), which C2PA's hashed URIs cover. */
  payload: Uint8Array;
}

export function parseBoxes(bytes: Uint8Array): ParsedBox[] {
  const boxes: ParsedBox[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let offset = 0; offset < bytes.length;) {
    if (offset + 8 > bytes.length) throw new Error('JUMBF: truncated box header');
    const length = view.getUint32(offset);
    if (length < 8 || offset + length > bytes.length) throw new Error(`JUMBF: box length ${length} runs past the end`);
    boxes.push({
      type: Buffer.from(bytes.subarray(offset + 4, offset + 8)).toString('latin1'),
      payload: bytes.subarray(offset + 8, offset + length),
      bytes: bytes.subarray(offset, offset + length),
    });
    offset += length;
  }
  return boxes;
}

export function parseSuperbox(parsed: ParsedBox | undefined): ParsedSuperbox {
  if (!parsed) throw new Error('JUMBF: expected a superbox, found nothing');
  if (parsed.type !== 'jumb') throw new Error(`JUMBF: expected a superbox, found '${parsed.type}'`);
  const [description, ...children] = parseBoxes(parsed.payload);
  if (!description || description.type !== 'jumd' || description.payload.length < 17)
    throw new Error('JUMBF: superbox without a description');
  const uuid = Buffer.from(description.payload.subarray(0, 16)).toString('hex');
  const toggles = description.payload[16]!;
  let label = '';
  if (toggles & 0x02) {
    const end = description.payload.indexOf(0, 17);
    label = Buffer.from(description.payload.subarray(17, end < 0 ? undefined : end)).toString('utf8');
  }
  return { uuid, label, children, payload: parsed.payload };
}
