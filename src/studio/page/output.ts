import { drawJpeg, liveSocketUrl, unpackFrame } from './live-frames.js';

/**
 * The live output page (/live/output): only the animated photo of the newest live session (or
 * ?view=<session>), on a plain background, for OBS's browser source. It reconnects by itself, so
 * the source keeps working across sessions and studio restarts.
 */
const canvas = document.getElementById('output') as HTMLCanvasElement;
const waiting = document.getElementById('waiting')!;
const view = new URLSearchParams(location.search).get('view') ?? 'latest';
let frames = 0;
let drawing = false;
(window as unknown as { reenactOutput: { frames(): number } }).reenactOutput = { frames: () => frames };

function connect(): void {
  const socket = new WebSocket(liveSocketUrl(`?view=${encodeURIComponent(view)}`));
  socket.binaryType = 'arraybuffer';
  socket.addEventListener('message', (event) => {
    if (typeof event.data === 'string') {
      const message = JSON.parse(event.data) as { type: string; message?: string };
      if (message.type === 'error') waiting.textContent = message.message ?? 'The live session ended.';
      return;
    }
    // A frame that comes while the one before is still being drawn is skipped.
    if (drawing) return;
    drawing = true;
    const { jpeg } = unpackFrame<object>(event.data as ArrayBuffer);
    void drawJpeg(canvas, jpeg)
      .then(() => {
        frames++;
        waiting.hidden = true;
      })
      .finally(() => (drawing = false));
  });
  socket.addEventListener('close', () => setTimeout(connect, 2000));
}
connect();
