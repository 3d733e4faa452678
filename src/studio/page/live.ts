import { api, ApiError, byId, formatTime, showProblem, type Job } from './api.js';
import { openCamera } from './camera.js';
import { drawJpeg, liveSocketUrl, packFrame, unpackFrame } from './live-frames.js';
import { PhotoPicker, type PhotoChoice } from './photo.js';

/**
 * The Live page: choose a photo, start the camera, and the photo follows the camera's face in
 * real time beside it. Camera frames go to the studio as JPEG over a WebSocket (at most
 * IN_FLIGHT at once, so a slow server lowers the frame rate instead of piling frames up), the
 * animated frames come back the same way. Re-take the reference, pause, switch the photo,
 * record with the microphone's sound into the history.
 */

/** Frames sent and not yet answered: one being animated, one waiting for it. */
const IN_FLIGHT = 2;
/**
 * Camera frames are sent at most this many pixels on the long side (`?send=` on the page's
 * address overrides it, for the benchmark). Sending 320 px instead made no measurable difference
 * to the CPU per frame (the face detector's cost does not depend on the frame's size), so the
 * camera's full 640x480 goes, keeping the landmarks' precision.
 */
const SEND_SIDE = Number(new URLSearchParams(location.search).get('send')) || 640;
/** Seconds without a new camera picture after which the camera counts as stopped. */
const STALLED_SECONDS = 3;
/**
 * Camera frames are taken as the page draws them (requestVideoFrameCallback), but a page the
 * browser does not draw (a hidden tab, a minimised window, a tab behind another) gets no such
 * callbacks: without a drawn picture for this long, frames are read from the camera track itself
 * (MediaStreamTrackProcessor, where the browser has it), so the session, and the output page OBS
 * shows, goes on while the Live page is out of sight. Behind another tab of its window the page
 * got 1.3-1.8 animated frames a second; with the track read, 19.0 against 23.4 for the tab in
 * front (bench:live, BENCH_TABS=2 BENCH_ONE_WINDOW=1).
 */
const UNDRAWN_MS = 200;

/** Quality of the camera frames' JPEGs. */
const JPEG_QUALITY = 0.85;

/** Chromium's reader of a video track's frames (not yet in TypeScript's DOM types). */
declare const MediaStreamTrackProcessor:
  (new (init: { track: MediaStreamTrack }) => { readable: ReadableStream<VideoFrame> }) | undefined;

interface RenderedHeader {
  seq: number;
  time: number;
  face: boolean;
  calibrating: boolean;
}

const startButton = byId<HTMLButtonElement>('live-start');
const stopButton = byId<HTMLButtonElement>('live-stop');
const referenceButton = byId<HTMLButtonElement>('live-reference');
const pauseButton = byId<HTMLButtonElement>('live-pause');
const recordButton = byId<HTMLButtonElement>('live-record');
const status = byId('live-status');
const problem = byId('live-problem');
const video = byId<HTMLVideoElement>('live-camera');
const output = byId<HTMLCanvasElement>('live-output');

let session: Session | undefined;

const photo = new PhotoPicker((choice) => {
  startButton.disabled = !choice;
  if (!session) status.textContent = choice ? 'Ready: start the camera.' : 'Choose a photo first.';
  // Switching the photo keeps the camera and the session running.
  if (choice && session) session.sendPhoto(choice);
});

/** Frame times and latencies for the readout (and, through window.reenactLive, the benchmark and tests). */
class Stats {
  private shown: number[] = [];
  private latencies: number[] = [];
  private drained: number[] = [];
  frames = 0;
  dropped = 0;
  /** Camera frames sent from the track's reader, the page not being drawn (see UNDRAWN_MS). */
  fromTrack = 0;

  add(latency: number): void {
    const now = performance.now();
    this.frames++;
    this.shown.push(now);
    while (this.shown.length && this.shown[0]! < now - 2000) this.shown.shift();
    this.latencies.push(latency);
    if (this.latencies.length > 120) this.latencies.shift();
    this.drained.push(latency);
    if (this.drained.length > 10_000) this.drained.shift();
  }

  get fps(): number {
    const now = performance.now();
    return this.shown.filter((t) => t > now - 2000).length / 2;
  }

  percentile(p: number): number | undefined {
    if (!this.latencies.length) return undefined;
    const sorted = [...this.latencies].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
  }

  /** Latencies since the last drain. */
  drain(): number[] {
    const out = this.drained;
    this.drained = [];
    return out;
  }
}

/** JPEGs of camera frames made on a worker thread (live-encoder.ts), for a page out of sight. */
class FrameEncoder {
  private readonly worker = new Worker('/live-encoder.js', { type: 'module' });
  private next = 0;
  private readonly waiting = new Map<number, (blob: Blob | null) => void>();
  /** Set once the worker failed (its script did not load, say): frames then get no JPEG, and the session no stuck frames. */
  private failed = false;

  constructor() {
    this.worker.addEventListener('message', (event: MessageEvent<{ id: number; blob?: Blob }>) => {
      this.waiting.get(event.data.id)?.(event.data.blob ?? null);
      this.waiting.delete(event.data.id);
    });
    this.worker.addEventListener('error', () => this.close());
  }

  /** The frame's JPEG at `width` x `height` (null if it could not be made); the frame is closed for the caller. */
  encode(frame: VideoFrame, width: number, height: number): Promise<Blob | null> {
    if (this.failed) {
      frame.close();
      return Promise.resolve(null);
    }
    const id = this.next++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.worker.postMessage({ id, frame, width, height, quality: JPEG_QUALITY }, [frame]);
    });
  }

  close(): void {
    this.failed = true;
    this.worker.terminate();
    for (const resolve of this.waiting.values()) resolve(null);
    this.waiting.clear();
  }
}

class Session {
  private readonly socket: WebSocket;
  private id: string | undefined;
  private ready = false;
  /** Whether a photo has been animated in this session (one that fails to load then leaves it on). */
  private animating = false;
  private paused = false;
  /** The photo being animated, and whether the reference was being taken at the last frame shown (the status says so). */
  private photoName = '';
  private calibrating = true;
  private seq = 0;
  private inFlight = 0;
  /** The JPEGs sent and not yet answered, by seq: kept to pair each camera frame with its animated frame. */
  private readonly sent = new Map<number, Blob>();
  private lastPair: { camera: Blob; output: Blob; header: RenderedHeader } | undefined;
  /** When the camera last gave a picture, and when the page last drew one (requestVideoFrameCallback). */
  private lastPicture = performance.now();
  private lastDrawn = performance.now();
  private readonly watchdog: number;
  /** Where a drawn camera picture is scaled and encoded; the track's frames go to `encoder` (see live-encoder.ts). */
  private readonly capture = document.createElement('canvas');
  private encoder: FrameEncoder | undefined;
  private recorder: { media: MediaRecorder | undefined; chunks: Blob[]; started: number; timer: number } | undefined;
  private closed = false;
  readonly stats = new Stats();

  constructor(
    private readonly camera: { stream: MediaStream; stop(): void },
    choice: PhotoChoice,
  ) {
    this.socket = new WebSocket(liveSocketUrl());
    this.socket.binaryType = 'arraybuffer';
    this.socket.addEventListener('open', () => this.sendPhoto(choice));
    this.socket.addEventListener('message', (event) => this.onMessage(event.data as ArrayBuffer | string));
    this.socket.addEventListener('close', () => {
      if (!this.closed)
        this.end({
          message: 'the connection to the studio was lost.',
          hint: 'Check that `reenact studio` is still running, then start the camera again.',
        });
    });
    const track = camera.stream.getVideoTracks()[0];
    track?.addEventListener('ended', () => this.cameraStopped());
    const readsTrack = !!track && typeof MediaStreamTrackProcessor === 'function';
    if (readsTrack) void this.readTrack(track);
    this.watchdog = window.setInterval(() => {
      // Without the track's own frames a page out of sight cannot tell a stalled camera from its own
      // missing callbacks.
      const stalled =
        !this.paused &&
        (readsTrack || !document.hidden) &&
        performance.now() - this.lastPicture > STALLED_SECONDS * 1000;
      if (track?.readyState === 'ended' || stalled) this.cameraStopped();
      this.showStats();
    }, 500);
    video.requestVideoFrameCallback((now, metadata) => this.onPicture(now, metadata));
  }

  /** Reads the camera track's frames, sending them while the page is not drawn (see UNDRAWN_MS). */
  private async readTrack(track: MediaStreamTrack): Promise<void> {
    const reader = new MediaStreamTrackProcessor!({ track }).readable.getReader();
    try {
      while (!this.closed) {
        const { value: frame, done } = await reader.read();
        if (done) return;
        const now = performance.now();
        this.lastPicture = now;
        const sent =
          now - this.lastDrawn > UNDRAWN_MS &&
          this.send(frame.displayWidth, frame.displayHeight, now, (width, height) =>
            (this.encoder ??= new FrameEncoder()).encode(frame, width, height),
          );
        // A frame sent is the encoder's to close.
        if (sent) this.stats.fromTrack++;
        else frame.close();
      }
    } catch {
      // The track ended or failed: the watchdog tells the user.
    } finally {
      reader.releaseLock();
    }
  }

  sendPhoto(choice: PhotoChoice): void {
    if (this.socket.readyState !== WebSocket.OPEN) return;
    if (this.recorder) {
      showProblem(problem, {
        message: 'the photo cannot change during a recording.',
        hint: 'Stop the recording first, then choose the photo.',
      });
      return;
    }
    this.ready = false;
    status.textContent = `Preparing ${choice.upload.name}…`;
    this.socket.send(JSON.stringify({ type: 'photo', photo: choice.upload.id, face: choice.face }));
  }

  private onMessage(data: ArrayBuffer | string): void {
    if (typeof data !== 'string') return void this.onRendered(data);
    const message = JSON.parse(data) as {
      type: string;
      id?: string;
      seq?: number;
      name?: string;
      code?: string;
      message?: string;
      hint?: string;
    };
    switch (message.type) {
      case 'session':
        this.id = message.id;
        byId<HTMLAnchorElement>('live-output-link').href = `/live/output?view=${message.id}`;
        byId('live-output-link').textContent = `/live/output?view=${message.id}`;
        return;
      case 'ready':
        this.ready = true;
        this.animating = true;
        showProblem(problem, undefined);
        this.photoName = message.name ?? '';
        this.showCalibrating(true);
        for (const button of [referenceButton, pauseButton, recordButton]) button.hidden = false;
        return;
      case 'dropped':
        this.answered(message.seq!);
        return;
      case 'error':
        showProblem(problem, {
          message: message.message ?? 'the live session failed.',
          ...(message.hint ? { hint: message.hint } : {}),
        });
        // A photo that could not be switched to leaves the one before animating.
        if (!this.ready && this.animating) this.ready = true;
        else if (!this.ready) status.textContent = 'The photo could not be animated: choose another.';
        return;
    }
  }

  /** The status line: the photo, and while the reference is taken, what to do meanwhile. */
  private showCalibrating(calibrating: boolean): void {
    this.calibrating = calibrating;
    status.textContent = calibrating
      ? `Live: ${this.photoName}. Hold a neutral face for a moment.`
      : `Live: ${this.photoName}. Press R to take the reference again.`;
  }

  private answered(seq: number): Blob | undefined {
    const sent = this.sent.get(seq);
    if (this.sent.delete(seq)) this.inFlight--;
    return sent;
  }

  private async onRendered(data: ArrayBuffer): Promise<void> {
    const { header, jpeg } = unpackFrame<RenderedHeader>(data);
    const camera = this.answered(header.seq);
    await drawJpeg(output, jpeg);
    this.stats.add(performance.now() - header.time);
    if (camera) this.lastPair = { camera, output: jpeg, header };
    if (header.calibrating !== this.calibrating) this.showCalibrating(header.calibrating);
    byId('live-output-caption').textContent = header.calibrating
      ? 'Taking the reference: hold a neutral face…'
      : header.face
        ? 'Animated photo'
        : 'No face in the camera: holding the last pose';
  }

  private onPicture(now: number, metadata: VideoFrameCallbackMetadata): void {
    if (this.closed) return;
    this.lastPicture = this.lastDrawn = performance.now();
    video.requestVideoFrameCallback((next, data) => this.onPicture(next, data));
    // When the camera says when it took the picture, latency counts from then.
    const captured =
      metadata.captureTime !== undefined && metadata.captureTime <= now && metadata.captureTime > now - 1000
        ? metadata.captureTime
        : now;
    this.send(video.videoWidth, video.videoHeight, captured, (width, height) => {
      this.capture.width = width;
      this.capture.height = height;
      this.capture.getContext('2d')!.drawImage(video, 0, 0, width, height);
      return new Promise((resolve) => this.capture.toBlob(resolve, 'image/jpeg', JPEG_QUALITY));
    });
  }

  /**
   * Sends a camera picture (`width` x `height`, taken at `captured`) to be animated, unless the
   * session waits; `encode` makes its JPEG at the size sent. True when sent.
   */
  private send(
    width: number,
    height: number,
    captured: number,
    encode: (width: number, height: number) => Promise<Blob | null>,
  ): boolean {
    if (!this.ready || this.paused || this.inFlight >= IN_FLIGHT || this.socket.readyState !== WebSocket.OPEN)
      return false;
    const scale = Math.min(1, SEND_SIDE / Math.max(width, height));
    const seq = this.seq++;
    this.inFlight++;
    void encode(Math.round(width * scale), Math.round(height * scale)).then(async (blob) => {
      if (!blob || this.closed || this.socket.readyState !== WebSocket.OPEN) {
        this.inFlight--;
        return;
      }
      this.sent.set(seq, blob);
      this.socket.send(packFrame({ seq, time: captured }, await blob.arrayBuffer()));
    });
    return true;
  }

  private showStats(): void {
    const p50 = this.stats.percentile(0.5);
    const p95 = this.stats.percentile(0.95);
    byId('live-stats').textContent = this.paused
      ? 'Paused'
      : `${this.stats.fps.toFixed(1)} fps · capture to display p50 ${p50 === undefined ? '–' : Math.round(p50)} ms, p95 ${p95 === undefined ? '–' : Math.round(p95)} ms`;
  }

  retakeReference(): void {
    if (this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify({ type: 'reference' }));
  }

  togglePause(): void {
    this.paused = !this.paused;
    pauseButton.textContent = this.paused ? 'Resume' : 'Pause';
    this.showStats();
  }

  toggleRecord(): void {
    if (this.recorder) return void this.stopRecording();
    const audio = this.camera.stream.getAudioTracks();
    const media = audio.length ? new MediaRecorder(new MediaStream(audio)) : undefined;
    const chunks: Blob[] = [];
    media?.addEventListener('dataavailable', (event) => event.data.size && chunks.push(event.data));
    media?.start();
    const started = performance.now();
    this.socket.send(JSON.stringify({ type: 'record', time: started }));
    const rec = byId('live-rec');
    rec.hidden = false;
    rec.textContent = 'REC 0:00';
    const timer = window.setInterval(
      () => (rec.textContent = `REC ${formatTime((performance.now() - started) / 1000)}`),
      250,
    );
    this.recorder = { media, chunks, started, timer };
    recordButton.textContent = 'Stop recording';
    byId('live-result').hidden = true;
  }

  private async stopRecording(): Promise<void> {
    const recorder = this.recorder!;
    this.recorder = undefined;
    this.socket.send(JSON.stringify({ type: 'record-stop', time: performance.now() }));
    window.clearInterval(recorder.timer);
    byId('live-rec').hidden = true;
    recordButton.textContent = 'Record';
    recordButton.disabled = true;
    status.textContent = 'Saving the recording…';
    try {
      if (recorder.media) {
        const stopped = new Promise((resolve) => recorder.media!.addEventListener('stop', resolve, { once: true }));
        recorder.media.stop();
        await stopped;
      }
      const audio = new Blob(recorder.chunks, { type: recorder.media?.mimeType ?? 'audio/webm' });
      const job = await api<Job>(`/api/live/${this.id}/recording`, { method: 'POST', body: audio });
      const result = `/api/jobs/${job.id}/result.mp4`;
      byId<HTMLVideoElement>('live-result-video').src = result;
      byId<HTMLAnchorElement>('live-download').href = `${result}?download=1`;
      const r = job.result!;
      byId('live-result-info').textContent =
        `${r.width}x${r.height}, ${r.duration.toFixed(1)} s, ${r.hasAudio ? 'with sound' : 'no sound'}, ${(r.bytes / 1e6).toFixed(1)} MB`;
      byId('live-result').hidden = false;
      byId('live-result').dataset.job = job.id;
      status.textContent = 'Recording saved in the history.';
    } catch (error) {
      showProblem(problem, error instanceof ApiError ? error : new ApiError('FAILED', (error as Error).message));
      status.textContent = '';
    } finally {
      recordButton.disabled = false;
    }
  }

  private cameraStopped(): void {
    this.end({
      message: 'the camera stopped sending pictures.',
      hint: 'Check that the camera is still connected and no other program took it, then start the camera again.',
    });
  }

  /** Ends the session: camera, socket, recording; `reason` is shown when it was not the user's choice. */
  end(reason?: { message: string; hint?: string }): void {
    if (this.closed) return;
    this.closed = true;
    window.clearInterval(this.watchdog);
    this.encoder?.close();
    if (this.recorder) {
      window.clearInterval(this.recorder.timer);
      if (this.recorder.media?.state === 'recording') this.recorder.media.stop();
      byId('live-rec').hidden = true;
      recordButton.textContent = 'Record';
    }
    this.camera.stop();
    this.socket.close();
    session = undefined;
    startButton.hidden = false;
    stopButton.hidden = true;
    for (const button of [referenceButton, pauseButton, recordButton]) button.hidden = true;
    status.textContent = photo.current ? 'Stopped: start the camera again to go on.' : 'Choose a photo first.';
    if (reason) showProblem(problem, reason);
  }

  /** For the benchmark and tests: the readout's figures, and the last camera frame with the animated frame made from it. */
  expose(): void {
    const stats = this.stats;
    const pair = async () => {
      const last = this.lastPair;
      if (!last) return undefined;
      const url = (blob: Blob) =>
        new Promise<string>((resolve) => {
          const reader = new FileReader();
          reader.onload = () => resolve(reader.result as string);
          reader.readAsDataURL(blob);
        });
      return {
        seq: last.header.seq,
        face: last.header.face,
        calibrating: last.header.calibrating,
        camera: await url(last.camera),
        output: await url(last.output),
      };
    };
    (window as unknown as { reenactLive: unknown }).reenactLive = {
      stats: () => ({
        frames: stats.frames,
        fromTrack: stats.fromTrack,
        fps: stats.fps,
        p50: stats.percentile(0.5),
        p95: stats.percentile(0.95),
      }),
      drain: () => stats.drain(),
      pair,
    };
  }
}

startButton.addEventListener('click', async () => {
  const choice = photo.current;
  if (!choice || session) return;
  showProblem(problem, undefined);
  startButton.disabled = true;
  status.textContent = 'Starting the camera…';
  try {
    const camera = await openCamera(video, 'if-any', { width: 640, height: 480 });
    byId('live-views').hidden = false;
    session = new Session(camera, choice);
    session.expose();
    startButton.hidden = true;
    stopButton.hidden = false;
    status.textContent = 'Connecting…';
  } catch (error) {
    status.textContent = '';
    showProblem(problem, error as ApiError);
  } finally {
    startButton.disabled = !photo.current;
  }
});
stopButton.addEventListener('click', () => session?.end());
referenceButton.addEventListener('click', () => session?.retakeReference());
pauseButton.addEventListener('click', () => session?.togglePause());
recordButton.addEventListener('click', () => session?.toggleRecord());
document.addEventListener('keydown', (event) => {
  const target = event.target as HTMLElement | null;
  if (
    (event.key === 'r' || event.key === 'R') &&
    session &&
    !event.ctrlKey &&
    !event.metaKey &&
    target?.tagName !== 'INPUT'
  )
    session.retakeReference();
});
