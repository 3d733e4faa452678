/**
 * Frames of the live mode's WebSocket (see src/studio/live.ts): a 4-byte little-endian length,
 * that many bytes of JSON header, then a JPEG.
 */

export function packFrame(header: object, jpeg: ArrayBuffer): ArrayBuffer {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(4 + json.length + jpeg.byteLength);
  new DataView(out.buffer).setUint32(0, json.length, true);
  out.set(json, 4);
  out.set(new Uint8Array(jpeg), 4 + json.length);
  return out.buffer;
}

export function unpackFrame<T>(data: ArrayBuffer): { header: T; jpeg: Blob } {
  const length = new DataView(data).getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(data, 4, length))) as T;
  return { header, jpeg: new Blob([new Uint8Array(data, 4 + length)], { type: 'image/jpeg' }) };
}

/** Draws a JPEG onto the canvas, sizing the canvas to it. */
export async function drawJpeg(canvas: HTMLCanvasElement, jpeg: Blob): Promise<void> {
  const bitmap = await createImageBitmap(jpeg);
  if (canvas.width !== bitmap.width || canvas.height !== bitmap.height) {
    canvas.width = bitmap.width;
    canvas.height = bitmap.height;
  }
  canvas.getContext('2d')!.drawImage(bitmap, 0, 0);
  bitmap.close();
}

export function liveSocketUrl(query = ''): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/live${query}`;
}
