import { acceptDrops, type ApiError, byId, formatTime, showProblem, uploadShowing, type Upload } from './api.js';
import { openCamera } from './camera.js';

const COUNTDOWN_SECONDS = 3;

/**
 * The driving-clip step: upload a video, or record one with the webcam and microphone
 * (countdown, timer, stop, retake). The server repairs recordings and finds the face track;
 * the page shows the crop that will drive the photo.
 */
export class ClipPicker {
  private upload: Upload | undefined;
  readonly status = byId('clip-status');
  readonly problem = byId('clip-problem');
  readonly preview = byId('clip-preview');
  private camera: { stream: MediaStream; stop(): void } | undefined;
  private recorder: MediaRecorder | undefined;
  private timer: number | undefined;
  private cancelled = false;

  constructor(
    private readonly maxSeconds: () => number,
    private readonly onChange: (upload: Upload | undefined) => void,
  ) {
    acceptDrops(byId('clip-drop'), byId<HTMLInputElement>('clip-input'), (file) => void this.send(file, file.name));
    byId('record-start').addEventListener('click', () => void this.record());
    byId('record-retake').addEventListener('click', () => void this.record());
    byId('record-stop').addEventListener('click', () => this.recorder?.stop());
    byId('record-cancel').addEventListener('click', () => this.cancel());
  }

  get current(): Upload | undefined {
    return this.upload;
  }

  private set(upload: Upload | undefined): void {
    this.upload = upload;
    this.onChange(upload);
  }

  private async send(file: Blob, name: string): Promise<void> {
    this.set(undefined);
    const upload = await uploadShowing('clip', file, name, this, 'then finding the face track');
    if (upload) this.show(upload);
  }

  private show(upload: Upload): void {
    const clip = upload.clip!;
    const video = byId<HTMLVideoElement>('clip-video');
    video.src = `/api/uploads/${upload.id}/file`;
    byId('clip-caption').textContent =
      `${upload.name}: ${clip.duration.toFixed(1)} s, ${clip.width}x${clip.height}, ${Math.round(clip.fps * 100) / 100} fps, ${clip.hasAudio ? 'with sound' : 'no sound'}${clip.repaired ? ' (recording repaired)' : ''}`;
    const track = byId<HTMLImageElement>('clip-track');
    track.closest('figure')!.hidden = !clip.track;
    if (clip.track) track.src = `/api/uploads/${upload.id}/track.jpg`;
    this.preview.hidden = false;
    showProblem(this.problem, clip.problem);
    this.set(clip.problem ? undefined : upload);
  }

  private async record(): Promise<void> {
    this.set(undefined);
    this.preview.hidden = true;
    byId('record-retake').hidden = true;
    showProblem(this.problem, undefined);
    const video = byId<HTMLVideoElement>('recorder-video');
    try {
      this.camera = await openCamera(video, true);
    } catch (error) {
      showProblem(this.problem, error as ApiError);
      return;
    }
    this.cancelled = false;
    this.setPickersEnabled(false);
    byId('recorder').hidden = false;
    byId('record-cancel').focus();
    const countdown = byId('countdown');
    for (let n = COUNTDOWN_SECONDS; n > 0; n--) {
      countdown.textContent = String(n);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      if (this.cancelled) return;
    }
    countdown.textContent = '';
    const type = ['video/webm;codecs=vp8,opus', 'video/webm', 'video/mp4'].find((candidate) =>
      MediaRecorder.isTypeSupported(candidate),
    );
    const recorder = new MediaRecorder(this.camera.stream, type ? { mimeType: type } : {});
    this.recorder = recorder;
    const chunks: Blob[] = [];
    recorder.addEventListener('dataavailable', (event) => chunks.push(event.data));
    const stopped = new Promise<void>((resolve) => recorder.addEventListener('stop', () => resolve()));
    const started = performance.now();
    const timer = byId('rec-timer');
    timer.hidden = false;
    const stop = byId<HTMLButtonElement>('record-stop');
    stop.hidden = false;
    stop.focus();
    const tick = () => {
      const seconds = (performance.now() - started) / 1000;
      timer.textContent = `REC ${formatTime(Math.floor(seconds))}`;
      if (seconds >= this.maxSeconds()) recorder.stop();
    };
    tick();
    this.timer = window.setInterval(tick, 250);
    recorder.start(1000);
    await stopped;
    this.finishRecording();
    if (this.cancelled) return;
    byId('record-retake').hidden = false;
    await this.send(
      new Blob(chunks, { type: recorder.mimeType }),
      recorder.mimeType.includes('mp4') ? 'recording.mp4' : 'recording.webm',
    );
  }

  /** While the camera records, the other ways to choose a clip wait. */
  private setPickersEnabled(enabled: boolean): void {
    for (const id of ['record-start', 'record-retake', 'clip-input'])
      byId<HTMLButtonElement | HTMLInputElement>(id).disabled = !enabled;
  }

  private finishRecording(): void {
    this.setPickersEnabled(true);
    window.clearInterval(this.timer);
    this.camera?.stop();
    this.camera = undefined;
    this.recorder = undefined;
    byId('record-stop').hidden = true;
    byId('rec-timer').hidden = true;
    byId('recorder').hidden = true;
    byId('countdown').textContent = '';
  }

  private cancel(): void {
    this.cancelled = true;
    if (this.recorder?.state === 'recording') this.recorder.stop();
    else this.finishRecording();
  }
}
