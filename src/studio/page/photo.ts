import { acceptDrops, byId, showProblem, uploadShowing, type Upload } from './api.js';
import { openCamera } from './camera.js';

export interface PhotoChoice {
  upload: Upload;
  /** The face to animate, as the pipeline numbers them (0 = largest). */
  face: number;
}

/**
 * The photo step: file picker, drop zone or camera snapshot; then what the pipeline sees (the
 * face boxes, the aligned crop, which face is used). Any studio page with a photo uses it.
 */
export class PhotoPicker {
  private choice: PhotoChoice | undefined;
  readonly status = byId('photo-status');
  readonly problem = byId('photo-problem');
  readonly preview = byId('photo-preview');
  private readonly image = byId<HTMLImageElement>('photo-image');
  private readonly boxes = byId('face-boxes');
  private readonly caption = byId('face-caption');
  private readonly crop = byId<HTMLImageElement>('photo-crop');
  private camera: { stop(): void } | undefined;

  constructor(private readonly onChange: (choice: PhotoChoice | undefined) => void) {
    acceptDrops(byId('photo-drop'), byId<HTMLInputElement>('photo-input'), (file) => void this.send(file, file.name));
    byId('photo-camera').addEventListener('click', () => void this.startCamera());
    byId('photo-camera-cancel').addEventListener('click', () => this.stopCamera());
    byId('photo-snap').addEventListener('click', () => void this.snap());
  }

  get current(): PhotoChoice | undefined {
    return this.choice;
  }

  private set(choice: PhotoChoice | undefined): void {
    this.choice = choice;
    this.onChange(choice);
  }

  private async startCamera(): Promise<void> {
    showProblem(this.problem, undefined);
    try {
      const video = byId<HTMLVideoElement>('photo-camera-video');
      this.camera = await openCamera(video, false);
      byId('photo-camera-view').hidden = false;
      byId('photo-snap').focus();
    } catch (error) {
      showProblem(this.problem, error as Error);
    }
  }

  private stopCamera(): void {
    this.camera?.stop();
    this.camera = undefined;
    byId('photo-camera-view').hidden = true;
  }

  private async snap(): Promise<void> {
    const video = byId<HTMLVideoElement>('photo-camera-video');
    const canvas = document.createElement('canvas');
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext('2d')!.drawImage(video, 0, 0);
    this.stopCamera();
    // The earlier photo's preview goes at once, not after the snapshot is encoded.
    this.set(undefined);
    this.preview.hidden = true;
    const blob = await new Promise<Blob | null>((resolve) => canvas.toBlob(resolve, 'image/png'));
    if (blob) await this.send(blob, 'camera.png');
  }

  private async send(file: Blob, name: string): Promise<void> {
    this.set(undefined);
    const upload = await uploadShowing('photo', file, name, this, 'then looking for faces');
    if (upload) this.show(upload);
  }

  private show(upload: Upload): void {
    const photo = upload.photo!;
    this.image.src = `/api/uploads/${upload.id}/file`;
    this.image.alt = `The chosen photo, ${upload.name}`;
    this.preview.hidden = false;
    this.boxes.replaceChildren();
    if (photo.problem) {
      showProblem(this.problem, photo.problem);
      this.caption.textContent = `${photo.width}x${photo.height}: no face`;
      this.crop.closest('figure')!.hidden = true;
      return;
    }
    this.crop.closest('figure')!.hidden = false;
    photo.faces.forEach((face, index) => {
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'face-box';
      button.style.left = `${(100 * face.box.x) / photo.width}%`;
      button.style.top = `${(100 * face.box.y) / photo.height}%`;
      button.style.width = `${(100 * face.box.width) / photo.width}%`;
      button.style.height = `${(100 * face.box.height) / photo.height}%`;
      button.setAttribute('aria-label', `Use face ${index + 1}`);
      button.dataset.face = String(index);
      const number = document.createElement('span');
      number.textContent = String(index + 1);
      button.append(number);
      button.addEventListener('click', () => this.choose(upload, index));
      this.boxes.append(button);
    });
    this.choose(upload, 0);
  }

  private choose(upload: Upload, face: number): void {
    const count = upload.photo!.faces.length;
    for (const box of this.boxes.querySelectorAll<HTMLButtonElement>('.face-box')) {
      const chosen = Number(box.dataset.face) === face;
      box.classList.toggle('chosen', chosen);
      box.setAttribute('aria-pressed', String(chosen));
    }
    this.caption.textContent =
      count === 1 ? '1 face found' : `${count} faces found: face ${face + 1} is animated (click another to choose it)`;
    this.crop.src = `/api/uploads/${upload.id}/crop?face=${face}`;
    this.set({ upload, face });
  }
}
