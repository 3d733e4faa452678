import { open, readdir, rename, rm, stat, mkdir } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { loadConfig } from '../fomm/config.js';
import { newId } from './jobs.js';
import { HttpError } from './errors.js';
import { checkFileName, receiveBody, refusedUpload } from './uploads.js';

const CONFIG = /\.ya?ml$/i;
const CHECKPOINT = /\.(pth\.tar|pth|tar)$/i;

/** The first bytes of a torch.save file: a zip archive, or the legacy format's protocol-2 pickle. */
function looksLikeCheckpoint(head: Buffer): boolean {
  return (
    head.subarray(0, 4).equals(Buffer.from('PK\x03\x04', 'latin1')) ||
    head.subarray(0, 4).equals(Buffer.from([0x80, 0x02, 0x8a, 0x0a]))
  );
}

/**
 * The FOMM configs (.yaml) and checkpoints (.pth.tar) the page offers: files in one folder, put
 * there by hand or uploaded through the page. An upload is checked by its content (a config is
 * parsed; a checkpoint must start like a torch.save file) before it joins the folder.
 */
export class ModelFolder {
  constructor(
    readonly folder: string,
    private readonly temporary: string,
    private readonly maxBytes: number,
  ) {}

  async list(): Promise<{ configs: string[]; checkpoints: string[] }> {
    let names: string[] = [];
    try {
      names = (await readdir(this.folder)).sort();
    } catch {
      // No models folder yet: FOMM is offered once files are put or uploaded there.
    }
    return {
      configs: names.filter((name) => CONFIG.test(name)),
      checkpoints: names.filter((name) => CHECKPOINT.test(name)),
    };
  }

  async receive(request: IncomingMessage): Promise<{ name: string; kind: 'config' | 'checkpoint' }> {
    const name = checkFileName(request.headers['x-file-name'] as string | undefined, '');
    const kind = CONFIG.test(name) ? 'config' : CHECKPOINT.test(name) ? 'checkpoint' : undefined;
    if (!kind)
      throw new HttpError(
        400,
        'BAD_FILE_NAME',
        `"${name.slice(0, 80)}" is neither a FOMM config (.yaml) nor a checkpoint (.pth.tar).`,
        'Upload e.g. vox-adv-256.yaml and vox-adv-cpk.pth.tar.',
      );
    const destination = join(this.folder, name);
    if (
      await stat(destination).then(
        () => true,
        () => false,
      )
    )
      throw new HttpError(
        409,
        'MODEL_EXISTS',
        `the studio already has a file called ${name}.`,
        'Choose it from the list, or rename the file before uploading.',
      );
    const incoming = join(this.temporary, `${newId()}.model`);
    try {
      await receiveBody(
        request,
        incoming,
        this.maxBytes,
        'Start the studio with a larger --max-model-mb, or put the file in its --models folder.',
        kind,
      );
      if (kind === 'config') {
        await loadConfig(incoming);
      } else {
        const file = await open(incoming);
        const head = Buffer.alloc(4);
        await file.read(head, 0, 4, 0).finally(() => file.close());
        if (!looksLikeCheckpoint(head))
          throw new HttpError(
            415,
            'NOT_CHECKPOINT',
            `${name} is not a PyTorch checkpoint (neither a zip archive nor the legacy pickle format).`,
            'Upload the .pth.tar file from the First Order Motion Model release.',
          );
      }
      await mkdir(this.folder, { recursive: true });
      await rename(incoming, destination);
      return { name, kind };
    } catch (error) {
      throw refusedUpload(error, request, { [incoming]: name });
    } finally {
      await rm(incoming, { force: true });
    }
  }
}
