import {
  acceptDrops,
  api,
  type ApiError,
  byId,
  capitalise,
  formatTime,
  postJson,
  showProblem,
  watchJobs,
  type Job,
  type StudioConfig,
} from './api.js';
import { ClipPicker } from './clip.js';
import { PhotoPicker } from './photo.js';

/** The studio page: photo, driving clip, options, run with live progress, result, history. */

const jobs = new Map<string, Job>();
let shownJob: string | undefined;
let config: StudioConfig = {
  limits: { photoBytes: 30e6, photoPixels: 40e6, clipBytes: 500e6, clipSeconds: 600, modelBytes: 2e9 },
  models: { configs: [], checkpoints: [] },
  tokenRequired: false,
};

const runButton = byId<HTMLButtonElement>('run');
const cancelButton = byId<HTMLButtonElement>('cancel');

const photo = new PhotoPicker(() => updateRunButton());
const clip = new ClipPicker(
  () => config.limits.clipSeconds,
  () => updateRunButton(),
);

function updateRunButton(): void {
  const missing = [photo.current ? '' : 'a photo', clip.current ? '' : 'a driving clip'].filter(Boolean);
  runButton.disabled = missing.length > 0;
  byId('run-hint').textContent = missing.length ? `Choose ${missing.join(' and ')} first.` : 'Ready.';
}

function readOptions(): Record<string, unknown> {
  const model = byId<HTMLSelectElement>('opt-model').value;
  const start = document.querySelector<HTMLInputElement>('input[name=start]:checked')?.value;
  return {
    model,
    ...(model === 'fomm'
      ? {
          config: byId<HTMLSelectElement>('opt-config').value,
          checkpoint: byId<HTMLSelectElement>('opt-checkpoint').value,
        }
      : {}),
    face: photo.current?.face ?? 0,
    ...(start === 'best'
      ? { startFrame: 'best' }
      : start === 'frame'
        ? { startFrame: Math.max(0, Math.floor(Number(byId<HTMLInputElement>('opt-frame').value) || 0)) }
        : {}),
    compare: byId<HTMLInputElement>('opt-compare').checked,
    label: byId<HTMLInputElement>('opt-label').checked,
  };
}

function fillModels(chosen?: string): void {
  const { configs, checkpoints } = config.models;
  const fill = (select: HTMLSelectElement, names: string[]) => {
    const keep = names.includes(chosen ?? '') ? chosen : select.value;
    select.replaceChildren(...names.map((name) => new Option(name, name)));
    if (keep && names.includes(keep)) select.value = keep;
  };
  fill(byId('opt-config'), configs);
  fill(byId('opt-checkpoint'), checkpoints);
  // An empty list is no choice: only the upload is shown until there is a file.
  byId('opt-config').closest<HTMLElement>('.field')!.hidden = configs.length === 0;
  byId('opt-checkpoint').closest<HTMLElement>('.field')!.hidden = checkpoints.length === 0;
  byId('fomm-files').hidden = byId<HTMLSelectElement>('opt-model').value !== 'fomm';
  byId('fomm-hint').textContent =
    configs.length && checkpoints.length
      ? ''
      : 'FOMM needs a config (.yaml) and a checkpoint (.pth.tar) from the First Order Motion Model release: upload them here.';
}

byId('opt-model').addEventListener('change', () => fillModels());
acceptDrops(byId('fomm-files'), byId<HTMLInputElement>('model-input'), async (file) => {
  const status = byId('model-status');
  showProblem(byId('model-problem'), undefined);
  status.textContent = `Uploading ${file.name}…`;
  try {
    const added = await api<{ name: string }>('/api/models', {
      method: 'POST',
      headers: { 'x-file-name': encodeURIComponent(file.name) },
      body: file,
    });
    config = await api<StudioConfig>('/api/config');
    fillModels(added.name);
    status.textContent = `${added.name} added.`;
  } catch (error) {
    status.textContent = '';
    showProblem(byId('model-problem'), error as ApiError);
  }
});

runButton.addEventListener('click', async () => {
  const chosenPhoto = photo.current;
  const chosenClip = clip.current;
  if (!chosenPhoto || !chosenClip) return;
  showProblem(byId('run-problem'), undefined);
  runButton.disabled = true;
  try {
    const job = await postJson<Job>('/api/jobs', {
      photo: chosenPhoto.upload.id,
      clip: chosenClip.id,
      options: readOptions(),
    });
    jobs.set(job.id, job);
    shownJob = job.id;
    renderJob(job);
    renderHistory();
  } catch (error) {
    showProblem(byId('run-problem'), error as ApiError);
  } finally {
    updateRunButton();
  }
});

cancelButton.addEventListener('click', async () => {
  if (!shownJob) return;
  await postJson(`/api/jobs/${shownJob}/cancel`, {}).catch((error: ApiError) =>
    showProblem(byId('run-problem'), error),
  );
});

function describeProgress(job: Job): string {
  if (job.state === 'queued') return 'Waiting for the jobs before it…';
  const progress = job.progress;
  if (!progress) return 'Starting…';
  const frames = progress.total
    ? `${progress.done}/${progress.total} frames`
    : progress.done
      ? `${progress.done} frames`
      : '';
  const eta = progress.eta !== undefined ? `about ${formatTime(progress.eta)} left` : '';
  return [capitalise(progress.stage), frames, eta].filter(Boolean).join(' · ');
}

/** The run card shows the job last started or chosen from the history. */
function renderJob(job: Job): void {
  if (job.id !== shownJob) return;
  const active = job.state === 'queued' || job.state === 'running';
  cancelButton.hidden = !active;
  byId('progress-box').hidden = !active;
  const progress = byId<HTMLProgressElement>('progress');
  if (active) {
    const total = job.progress?.total;
    // Preparing is shown as a sliver; the bar moves with the frames animated.
    progress.value =
      total && job.progress?.stage === 'animate'
        ? job.progress.done / total
        : total
          ? 0.02 + (0.05 * job.progress!.done) / total
          : 0;
    byId('progress-text').textContent = describeProgress(job);
  }
  // The tab shows how far the job is while the user looks elsewhere.
  document.title = active
    ? `${Math.round(progress.value * 100)}% · reenact studio`
    : job.state === 'done'
      ? 'Done · reenact studio'
      : 'reenact studio';
  showProblem(
    byId('run-problem'),
    job.state === 'failed'
      ? job.error
      : job.state === 'interrupted'
        ? { message: 'this job was interrupted when the studio stopped.', hint: 'Run it again from the history.' }
        : job.state === 'cancelled'
          ? { message: 'the job was cancelled.' }
          : undefined,
  );
  const result = byId('result');
  result.hidden = job.state !== 'done';
  if (job.state === 'done' && job.result) {
    const video = byId<HTMLVideoElement>('result-video');
    const source = `/api/jobs/${job.id}/result.mp4`;
    if (!video.src.endsWith(source)) video.src = source;
    byId<HTMLAnchorElement>('download').href = `${source}?download=1`;
    const r = job.result;
    byId('result-info').textContent =
      `${r.width}x${r.height}, ${r.duration.toFixed(1)} s, ${r.hasAudio ? 'with sound' : 'no sound'}, ${(r.bytes / 1e6).toFixed(1)} MB, made in ${r.seconds.toFixed(0)} s`;
  }
}

const STATE_NAMES: Record<Job['state'], string> = {
  queued: 'queued',
  running: 'running',
  done: 'done',
  failed: 'failed',
  cancelled: 'cancelled',
  interrupted: 'interrupted',
};

function describeOptions(job: Job): string {
  const o = job.options;
  return [
    o.model,
    o.startFrame === 'best' ? 'best frame' : o.startFrame !== undefined ? `frame ${o.startFrame}` : '',
    o.compare ? 'side by side' : '',
    o.label ? '' : 'no visible mark',
    o.face ? `face ${o.face + 1}` : '',
  ]
    .filter(Boolean)
    .join(', ');
}

function historyButton(text: string, action: () => Promise<unknown> | void): HTMLButtonElement {
  const button = document.createElement('button');
  button.type = 'button';
  button.textContent = text;
  button.addEventListener('click', () => {
    Promise.resolve(action()).catch((error: ApiError) => showProblem(byId('run-problem'), error));
  });
  return button;
}

function renderHistory(): void {
  const list = byId('history');
  const sorted = [...jobs.values()].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  byId('history-empty').hidden = sorted.length > 0;
  list.replaceChildren(
    ...sorted.map((job) => {
      const item = document.createElement('li');
      item.className = `job ${job.state}`;
      item.dataset.job = job.id;
      item.dataset.state = job.state;
      // A frame of the result once there is one; the photo until then.
      const thumb = document.createElement('img');
      thumb.className = job.state === 'done' ? 'thumb' : 'thumb pending';
      thumb.src = job.state === 'done' ? `/api/jobs/${job.id}/thumb.jpg` : `/api/uploads/${job.photo}/file`;
      thumb.alt =
        job.state === 'done' ? `A frame of the result made from ${job.photoName}` : `The photo, ${job.photoName}`;
      const text = document.createElement('div');
      text.className = 'job-text';
      const title = document.createElement('p');
      title.className = 'job-title';
      title.textContent = `${job.photoName} + ${job.clipName}`;
      const meta = document.createElement('p');
      meta.className = 'hint';
      meta.textContent = `${new Date(job.createdAt).toLocaleString()} · ${describeOptions(job)}`;
      const state = document.createElement('span');
      state.className = `badge ${job.state}`;
      state.textContent =
        job.state === 'running' && job.progress?.total
          ? `running ${Math.round((100 * job.progress.done) / job.progress.total)}%`
          : STATE_NAMES[job.state];
      title.prepend(state, ' ');
      text.append(title, meta);
      if (job.error) {
        const error = document.createElement('p');
        error.className = 'hint';
        error.textContent = capitalise(job.error.message);
        text.append(error);
      }
      const actions = document.createElement('div');
      actions.className = 'row';
      if (job.state === 'done') {
        actions.append(
          historyButton('Show', () => {
            shownJob = job.id;
            renderJob(job);
            byId('run-card').scrollIntoView({ behavior: 'smooth' });
          }),
        );
      }
      if (job.state === 'failed' || job.state === 'interrupted' || job.state === 'cancelled') {
        actions.append(
          historyButton('Run again', async () => {
            shownJob = job.id;
            await postJson(`/api/jobs/${job.id}/retry`, {});
          }),
        );
      }
      if (job.state === 'queued' || job.state === 'running')
        actions.append(historyButton('Cancel', () => postJson(`/api/jobs/${job.id}/cancel`, {})));
      actions.append(
        historyButton('Delete', async () => {
          if (!confirm(`Delete this job and its result?`)) return;
          await api(`/api/jobs/${job.id}`, { method: 'DELETE' });
        }),
      );
      text.append(actions);
      item.append(thumb, text);
      return item;
    }),
  );
}

let historyDrawn = 0;
function scheduleHistory(): void {
  // Progress arrives several times a second; the list is redrawn at most twice a second.
  const now = performance.now();
  if (now - historyDrawn < 500) return;
  historyDrawn = now;
  renderHistory();
}

watchJobs({
  all(list) {
    jobs.clear();
    for (const job of list) jobs.set(job.id, job);
    renderHistory();
    if (shownJob && jobs.has(shownJob)) renderJob(jobs.get(shownJob)!);
  },
  one(job) {
    const previous = jobs.get(job.id);
    jobs.set(job.id, job);
    renderJob(job);
    if (previous?.state !== job.state) renderHistory();
    else scheduleHistory();
  },
  removed(id) {
    jobs.delete(id);
    if (shownJob === id) {
      shownJob = undefined;
      byId('result').hidden = true;
      byId('progress-box').hidden = true;
      cancelButton.hidden = true;
    }
    renderHistory();
  },
});

api<StudioConfig>('/api/config')
  .then((loaded) => {
    config = loaded;
    fillModels();
  })
  .catch((error: ApiError) => showProblem(byId('run-problem'), error));
updateRunButton();
