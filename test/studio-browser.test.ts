import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import sharp from 'sharp';
import { shared } from './shared.js';
import {
  buildPage,
  CHROMIUM,
  chromiumArgs,
  browserSuiteSkip,
  makeFakeDevices,
  playVideo,
  startStudioProcess,
  waitFor,
  type StudioProcess,
} from './studio-run.js';

/**
 * The studio in real Chromium: the webcam and microphone are Chromium's fake devices fed from
 * driving-talking.mp4 (converted here to y4m and wav); the page records 4 s, uploads the photo,
 * runs the job and plays the result. Screenshots of every step, at desktop and phone width, go
 * to $REENACT_SCREENSHOTS when it is set.
 */
const skip = browserSuiteSkip('studio browser tests');
const screenshots = process.env.REENACT_SCREENSHOTS;

async function snap(page: Page, name: string): Promise<void> {
  if (!screenshots) return;
  await mkdir(screenshots, { recursive: true });
  await page.screenshot({ path: join(screenshots, `${name}-desktop.png`) });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: join(screenshots, `${name}-phone.png`), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 800 });
}

async function jobStates(page: Page): Promise<Record<string, string>> {
  return page.$$eval('#history li', (items) =>
    Object.fromEntries(items.map((item) => [(item as HTMLElement).dataset.job!, (item as HTMLElement).dataset.state!])),
  );
}

/** Files a job may leave behind half-written: temporary uploads, partial results. */
async function leftovers(dataDir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dataDir, { recursive: true }))
    if (/\.partial|\.tmp$|\.upload$/.test(entry)) found.push(entry);
  for (const entry of await readdir(join(dataDir, 'tmp')).catch(() => [])) found.push(`tmp/${entry}`);
  return found;
}

describe('studio in Chromium', { skip }, () => {
  let folder: string;
  let dataDir: string;
  let studio: StudioProcess;
  let context: BrowserContext;
  let page: Page;
  let finishedJob: string;

  before(async () => {
    folder = await mkdtemp(join(tmpdir(), 'reenact-studio-browser-'));
    dataDir = join(folder, 'data');
    const { camera, microphone } = await makeFakeDevices(folder);
    // The page as `npm run build` makes it, so a run of this file alone tests the current source.
    await buildPage();
    studio = await startStudioProcess(dataDir);
    context = await chromium.launchPersistentContext(join(folder, 'profile'), {
      executablePath: CHROMIUM!,
      args: chromiumArgs(camera, microphone),
      viewport: { width: 1280, height: 800 },
      acceptDownloads: true,
    });
    page = context.pages()[0] ?? (await context.newPage());
  });

  after(async () => {
    await context?.close();
    await studio?.stop('SIGKILL');
    await rm(folder, { recursive: true, force: true });
  });

  test('record 4 s with the webcam, animate the photo, watch the progress, play and download the result', async () => {
    await page.goto(studio.url);
    await page.waitForSelector('text=Animate only faces you have the right to use');
    await snap(page, '01-start');

    await page.setInputFiles('#photo-input', shared('fixtures', 'portrait-outdoor.jpg'));
    await page.waitForSelector('.face-box.chosen');
    await page.waitForFunction(() => (document.getElementById('photo-crop') as HTMLImageElement).naturalWidth === 256);
    assert.equal(await page.locator('.face-box').count(), 1);
    assert.match((await page.textContent('#face-caption')) ?? '', /1 face found/);
    await snap(page, '02-photo');

    await page.click('#record-start');
    await page.waitForSelector('#countdown:has-text("3")');
    await snap(page, '03-countdown');
    await page.waitForSelector('#record-stop', { state: 'visible', timeout: 10_000 });
    // Stopped by a timer in the page, so the 4 s do not depend on how fast this process answers.
    await page.evaluate(() => setTimeout(() => document.getElementById('record-stop')!.click(), 4000));
    await page.waitForTimeout(2000);
    assert.match((await page.textContent('#rec-timer')) ?? '', /REC 0:0[12]/);
    await snap(page, '04-recording');
    await page.waitForSelector('#clip-preview', { state: 'visible', timeout: 60_000 });
    await page.waitForFunction(() => (document.getElementById('clip-track') as HTMLImageElement).naturalWidth === 256);
    const caption = (await page.textContent('#clip-caption')) ?? '';
    // About 4 s: the stop comes from a timer in the page, which a loaded machine delays a little.
    const recorded = Number(/recording\.webm: (\d+\.\d) s/.exec(caption)?.[1]);
    assert.ok(recorded >= 3.7 && recorded <= 5, caption);
    assert.match(caption, /with sound \(recording repaired\)/);
    await snap(page, '05-clip');

    assert.equal(await page.isEnabled('#run'), true);
    await page.click('#run');
    const seen: number[] = [];
    await waitFor(
      'the result',
      async () => {
        const value = await page.$eval('#progress', (bar) => (bar as HTMLProgressElement).value);
        if (!seen.includes(value) && (await page.isVisible('#progress-box'))) seen.push(value);
        if (seen.length === 3) await snap(page, '06-progress');
        return (await page.isVisible('#result')) ? true : undefined;
      },
      240_000,
    );
    const moving = seen.filter((value) => value > 0.05 && value < 1);
    assert.ok(
      moving.length >= 2 && moving.every((value, i) => i === 0 || value > moving[i - 1]!),
      `the bar should advance through several values: ${seen.join(', ')}`,
    );

    const played = await playVideo(page, 'result-video');
    assert.ok(
      Math.abs(played.duration - recorded) < 0.2,
      `the result lasts ${played.duration} s, the recording ${recorded} s`,
    );
    assert.ok(played.currentTime > 0.5, `the result plays (at ${played.currentTime} s)`);
    assert.equal(played.width, 586);
    assert.ok(
      played.audioSeconds > 3.5 && played.rms > 0.005,
      `the result has the microphone's sound: ${JSON.stringify(played)}`,
    );
    await snap(page, '07-result');

    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
    finishedJob = /\/api\/jobs\/([0-9a-f]{16})\//.exec(download.url())![1]!;
    const downloaded = join(folder, 'downloaded.mp4');
    await download.saveAs(downloaded);
    assert.ok(
      (await readFile(downloaded)).equals(await readFile(join(dataDir, 'jobs', finishedJob, 'result.mp4'))),
      'the download is the stored result',
    );

    await page.waitForFunction(
      (id) =>
        (document.querySelector(`#history li[data-job="${id}"] img.thumb`) as HTMLImageElement | null)?.naturalWidth ===
        320,
      finishedJob,
    );
    assert.deepEqual(await jobStates(page), { [finishedJob]: 'done' });
    await page.evaluate(() => document.getElementById('history-card')!.scrollIntoView());
    await snap(page, '08-history');
  });

  test("photos: two faces both boxed, a click chooses the other; a webcam snapshot; a photo without a face shows the library's message", async () => {
    // Two portraits side by side, made here from the fixtures.
    const left = await sharp(shared('fixtures', 'portrait-old-photo.jpg')).resize({ height: 500 }).toBuffer();
    const right = await sharp(shared('fixtures', 'portrait-studio.png'))
      .flatten({ background: '#ffffff' })
      .resize({ height: 360 })
      .toBuffer();
    const pair = join(folder, 'two-people.jpg');
    await sharp({ create: { width: 800, height: 500, channels: 3, background: '#dddddd' } })
      .composite([
        { input: left, left: 0, top: 0 },
        { input: right, left: 420, top: 70 },
      ])
      .jpeg()
      .toFile(pair);
    await page.goto(studio.url);
    await page.setInputFiles('#photo-input', pair);
    await page.waitForSelector('.face-box.chosen');
    assert.equal(await page.locator('.face-box').count(), 2);
    assert.match((await page.textContent('#face-caption')) ?? '', /2 faces found: face 1 is animated/);
    await page.click('.face-box[data-face="1"]');
    assert.match((await page.textContent('#face-caption')) ?? '', /face 2 is animated/);
    assert.match((await page.getAttribute('#photo-crop', 'src')) ?? '', /crop\?face=1$/);
    await page.waitForFunction(() => (document.getElementById('photo-crop') as HTMLImageElement).naturalWidth === 256);
    await snap(page, '09-two-faces');

    // A snapshot from the (fake) webcam, which shows the driving clip's face.
    await page.click('#photo-camera');
    await page.waitForFunction(
      () => (document.getElementById('photo-camera-video') as HTMLVideoElement).videoWidth > 0,
    );
    await page.click('#photo-snap');
    await page.waitForSelector('#photo-image[alt="The chosen photo, camera.png"]');
    await page.waitForSelector('.face-box.chosen');
    assert.match((await page.textContent('#face-caption')) ?? '', /1 face found/);

    await page.setInputFiles('#photo-input', shared('fixtures', 'cartoon-no-face.jpg'));
    await page.waitForSelector('#photo-problem', { state: 'visible' });
    const text = (await page.textContent('#photo-problem')) ?? '';
    assert.match(text, /No face found in cartoon-no-face\.jpg/);
    assert.match(text, /clearly visible, frontal, well lit/);
    assert.equal(await page.locator('.face-box').count(), 0);
    assert.equal(await page.isDisabled('#run'), true);
    await snap(page, '10-no-face');

    await page.selectOption('#opt-model', 'fomm');
    assert.match((await page.textContent('#fomm-hint')) ?? '', /needs a config \(\.yaml\) and a checkpoint/);
    await page.locator('#options-card').scrollIntoViewIfNeeded();
    await snap(page, '10b-fomm-options');
  });

  test('a job running when the studio stops (Ctrl-C, or killed) is shown interrupted after a restart; finished jobs stay listed', async () => {
    assert.ok(finishedJob, 'needs the finished job of the first test');
    const post = async (path: string, body: Blob | string, headers: Record<string, string>) => {
      const response = await fetch(new URL(path, studio.url), { method: 'POST', body, headers });
      const text = await response.text();
      assert.ok(response.ok, `${path}: ${response.status} ${text}`);
      return JSON.parse(text) as { id: string };
    };
    const file = async (name: string) => new Blob([await readFile(shared('fixtures', name))]);
    const photo = await post('/api/uploads/photo', await file('portrait-outdoor.jpg'), {
      'x-file-name': 'portrait-outdoor.jpg',
    });
    const clip = await post('/api/uploads/clip', await file('driving-talking.mp4'), {
      'x-file-name': 'driving-talking.mp4',
    });
    const job = await post('/api/jobs', JSON.stringify({ photo: photo.id, clip: clip.id }), {
      'content-type': 'application/json',
    });
    const framesDone = async () => {
      const state = (await (await fetch(new URL(`/api/jobs/${job.id}`, studio.url))).json()) as {
        progress?: { stage: string; done: number };
      };
      return state.progress?.stage === 'animate' && state.progress.done >= 20 ? true : undefined;
    };
    await waitFor('the second job to be under way', framesDone, 120_000);

    // Ctrl-C: the studio stops, the running job is marked interrupted, nothing half-written stays.
    const code = await studio.stop('SIGINT');
    assert.ok(code === 0 || code === 130, `exit ${String(code)}:\n${studio.output()}`);
    assert.deepEqual(await leftovers(dataDir), []);
    studio = await startStudioProcess(dataDir);
    await page.goto(studio.url);
    await page.waitForSelector(`#history li[data-job="${job.id}"][data-state="interrupted"]`);
    assert.deepEqual(await jobStates(page), { [job.id]: 'interrupted', [finishedJob]: 'done' });
    await page.evaluate(() => document.getElementById('history-card')!.scrollIntoView());
    await snap(page, '11-interrupted');

    // Run it again from the page, then kill the studio outright mid-job: the restart finds it interrupted too.
    await page.click(`#history li[data-job="${job.id}"] button:has-text("Run again")`);
    await page.waitForSelector(`#history li[data-job="${job.id}"][data-state="running"]`);
    await waitFor('the rerun to be under way', framesDone, 120_000);
    await studio.stop('SIGKILL');
    studio = await startStudioProcess(dataDir);
    await page.goto(studio.url);
    await page.waitForSelector(`#history li[data-job="${job.id}"][data-state="interrupted"]`);
    assert.deepEqual(await jobStates(page), { [job.id]: 'interrupted', [finishedJob]: 'done' });
    assert.deepEqual(await leftovers(dataDir), []);
  });
});
