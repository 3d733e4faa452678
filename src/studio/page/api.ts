/** The studio's HTTP API as the page uses it; shared by every page of the studio. */
import type { Job } from '../jobs.js';
import type { Upload } from '../uploads.js';

export type { Job, Upload };

export interface StudioConfig {
  limits: { photoBytes: number; photoPixels: number; clipBytes: number; clipSeconds: number; modelBytes: number };
  models: { configs: string[]; checkpoints: string[] };
  tokenRequired: boolean;
}

/** A refused request, with the server's message and hint. */
export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

async function parse<T>(response: Response): Promise<T> {
  const body = (await response.json().catch(() => undefined)) as
    { error?: { code: string; message: string; hint?: string } } | undefined;
  if (!response.ok) {
    const error = body?.error;
    throw new ApiError(
      error?.code ?? `HTTP_${response.status}`,
      error?.message ?? `the server answered ${response.status}.`,
      error?.hint,
    );
  }
  return body as T;
}

export async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  let response: Response;
  try {
    response = await fetch(path, { credentials: 'same-origin', ...init });
  } catch {
    throw new ApiError(
      'OFFLINE',
      'the studio server cannot be reached.',
      'Check that `reenact studio` is still running, then try again.',
    );
  }
  return parse<T>(response);
}

export function postJson<T>(path: string, body: unknown): Promise<T> {
  return api<T>(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

export function uploadFile(kind: 'photo' | 'clip', file: Blob, name: string): Promise<Upload> {
  return api<Upload>(`/api/uploads/${kind}`, {
    method: 'POST',
    headers: { 'x-file-name': encodeURIComponent(name) },
    body: file,
  });
}

/** Uploads with a status line while the server stores and analyses it; a refusal is shown in `problem`. */
export async function uploadShowing(
  kind: 'photo' | 'clip',
  file: Blob,
  name: string,
  elements: { status: HTMLElement; problem: HTMLElement; preview: HTMLElement },
  doing: string,
): Promise<Upload | undefined> {
  elements.preview.hidden = true;
  showProblem(elements.problem, undefined);
  elements.status.textContent = `Uploading ${name}, ${doing}…`;
  try {
    return await uploadFile(kind, file, name);
  } catch (error) {
    showProblem(elements.problem, error instanceof ApiError ? error : new ApiError('FAILED', (error as Error).message));
    return undefined;
  } finally {
    elements.status.textContent = '';
  }
}

/** Live job updates (server-sent events); reconnects by itself. */
export function watchJobs(handlers: {
  all(jobs: Job[]): void;
  one(job: Job): void;
  removed(id: string): void;
}): EventSource {
  const source = new EventSource('/api/events');
  source.addEventListener('jobs', (event) => handlers.all(JSON.parse((event as MessageEvent<string>).data) as Job[]));
  source.addEventListener('job', (event) => handlers.one(JSON.parse((event as MessageEvent<string>).data) as Job));
  source.addEventListener('removed', (event) =>
    handlers.removed((JSON.parse((event as MessageEvent<string>).data) as { id: string }).id),
  );
  return source;
}

/** A message and its hint, as the page shows a problem. */
export function showProblem(element: HTMLElement, problem: { message: string; hint?: string } | undefined): void {
  element.hidden = !problem;
  element.replaceChildren();
  if (!problem) return;
  const message = document.createElement('p');
  message.className = 'message';
  message.textContent = capitalise(problem.message);
  element.append(message);
  if (problem.hint) {
    const hint = document.createElement('p');
    hint.className = 'fix';
    hint.textContent = problem.hint;
    element.append(hint);
  }
}

export function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (!element) throw new Error(`the page has no #${id}`);
  return element as T;
}

export function formatTime(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--:--';
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/** Accepts files dropped on `zone` (and keyboard/click via the picker input). */
export function acceptDrops(zone: HTMLElement, input: HTMLInputElement, onFile: (file: File) => void): void {
  input.addEventListener('change', () => {
    const file = input.files?.[0];
    if (file) onFile(file);
    input.value = '';
  });
  zone.addEventListener('dragover', (event) => {
    event.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('over');
    const file = event.dataTransfer?.files[0];
    if (file) onFile(file);
  });
  // Labels are not keyboard-activated by default.
  for (const label of zone.querySelectorAll<HTMLLabelElement>('label.button')) {
    label.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        input.click();
      }
    });
  }
}
