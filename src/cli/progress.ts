import type { ProgressCallback, ProgressEvent } from '../types.js';

/**
 * A one-line progress bar on stderr with rate and ETA. Silent when stderr is not a terminal
 * (logs and pipes stay clean) unless `force` is set.
 */
export function progressBar(options: { force?: boolean } = {}): ProgressCallback & { finish(): void } {
  const stream = process.stderr;
  const enabled = options.force || stream.isTTY === true;
  let stage = '';
  let started = 0;
  let lastDraw = 0;
  let drawn = false;

  const draw = (event: ProgressEvent, now: number) => {
    const elapsed = (now - started) / 1000;
    const rate = elapsed > 0 ? event.done / elapsed : 0;
    let line: string;
    if (event.total) {
      const fraction = Math.min(1, event.done / event.total);
      const width = 30;
      const filled = Math.round(fraction * width);
      const eta = rate > 0 ? (event.total - event.done) / rate : NaN;
      line = `${event.stage.padEnd(10)} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}% ${event.done}/${event.total} ${rate.toFixed(1)}/s ETA ${formatSeconds(eta)}`;
    } else {
      line = `${event.stage.padEnd(10)} ${event.done} ${rate.toFixed(1)}/s ${formatSeconds(elapsed)}`;
    }
    stream.write(`\r${line}\x1b[K`);
    drawn = true;
  };

  const callback = ((event: ProgressEvent) => {
    if (!enabled) return;
    const now = performance.now();
    if (event.stage !== stage) {
      if (drawn) stream.write('\n');
      stage = event.stage;
      started = now;
      lastDraw = 0;
    }
    if (now - lastDraw < 100 && event.done !== event.total) return;
    lastDraw = now;
    draw(event, now);
  }) as ProgressCallback & { finish(): void };
  callback.finish = () => {
    if (enabled && drawn) stream.write('\n');
    drawn = false;
  };
  return callback;
}

function formatSeconds(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--:--';
  const s = Math.round(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}
