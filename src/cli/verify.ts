import { CommanderError, type Command } from 'commander';
import { ReenactError } from '../errors.js';
import { checkCredential, type CredentialCheck } from '../provenance/credential.js';
import { FORMAT_VERSION } from '../provenance/payload.js';
import { checkWatermark, type WatermarkCheck } from '../provenance/verify.js';
import { describeForCli, printJson } from './options.js';

/** Exit codes besides 0 (found): the watermark was not found, or the file could not be read. */
const NOT_FOUND = 1;
const UNREADABLE = 2;
const UNREADABLE_CODES = new Set(['FILE_NOT_FOUND', 'NOT_MEDIA', 'CORRUPT_MEDIA', 'NO_FRAMES', 'IMAGE_TOO_LARGE']);

function describeCredential(credential: CredentialCheck | undefined, check: WatermarkCheck): string[] {
  if (!credential)
    return ['  content credential: none in the file or beside it (re-uploaded copies lose it; the watermark stays)'];
  const where = credential.embedded ? 'embedded' : credential.file;
  if (!credential.valid) {
    return [
      `  content credential ${where}: ${credential.tampered ? 'TAMPERED' : 'INVALID'}`,
      ...credential.problems.map((problem) => `    - ${problem}`),
    ];
  }
  const lines = [
    `  content credential ${where}: valid C2PA manifest, signed by "${credential.signer}"${credential.selfSigned ? ' (a self-signed local key: it shows which key signed, not who owns it)' : ''}`,
    `    created by ${credential.softwareAgent ?? 'unknown software'} as ${credential.digitalSourceType?.split('/').at(-1) ?? 'unknown'} from ${credential.ingredient ? `${credential.ingredient.title} (sha256 ${credential.ingredient.sha256.slice(0, 16)}...)` : 'no recorded source'}`,
  ];
  if (credential.contentId && check.payload) {
    lines.push(
      `    soft binding: content id ${credential.contentId} ${credential.contentId === check.payload.contentId ? 'matches the watermark' : `does NOT match the watermark (${check.payload.contentId})`}`,
    );
  }
  return lines;
}

function describe(check: WatermarkCheck & { credential?: CredentialCheck }): string {
  const lines = [
    `${check.file}: ${check.detected ? 'reenact watermark FOUND: made with reenact (AI-generated)' : 'no reenact watermark found'}`,
    `  score ${check.score.toFixed(1)} (detection needs ${check.threshold.toFixed(1)}), false-positive probability ${check.falsePositiveProbability.toPrecision(2)}`,
  ];
  if (check.detected) {
    lines.push(
      check.payload
        ? `  payload: format ${check.payload.version}, model ${check.payload.model}, content id ${check.payload.contentId}`
        : `  payload: unreadable (no error-corrected read with a matching CRC and watermark format ${FORMAT_VERSION}: damaged, or marked in an older format); the mark itself is present`,
    );
  }
  lines.push(
    check.temporal
      ? `  analysed ${check.frames} frames at ${check.width}x${check.height}`
      : `  analysed a single ${check.width}x${check.height} image: weaker than a clip, where the still picture cancels out; verify 2 s or more of the video where you can`,
  );
  if (check.detected) lines.push(`  pattern scale ${check.scale.toFixed(3)} (1 = original framing, more = cropped)`);
  if (!check.detected)
    lines.push(
      '  Not finding the mark does not prove a file is authentic: it may be from another tool, or too damaged.',
    );
  lines.push(...describeCredential(check.credential, check));
  return `${lines.join('\n')}\n`;
}

export function addVerifyCommand(program: Command): void {
  program
    .command('verify')
    .description('Check a video or image for the reenact watermark; exit 0 found, 1 not found, 2 unreadable.')
    .argument('<file>', 'the video (MP4, WebM, MOV, ...) or image (PNG, JPEG, ...) to check')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      `
The watermark is an invisible pattern in the brightness of every frame that reenact writes. It
survives re-encoding, resizing, cropping and brightness changes, and carries the model used and a
content id (also in the file's metadata). A clip of 2 s or more gives the clearest answer; a single
frame or image is a weaker test. The false-positive probability is the chance that an unmarked
file scores this high; a detection needs it below 1e-6.

Examples:
  reenact verify clip.mp4
  reenact verify frame.png --json`,
    )
    .action(async (file: string, options: { json?: boolean }) => {
      let check: WatermarkCheck & { credential?: CredentialCheck };
      try {
        check = await checkWatermark(file);
        const credential = await checkCredential(file);
        if (credential) check = { ...check, credential };
      } catch (error) {
        if (!(error instanceof ReenactError) || !UNREADABLE_CODES.has(error.code)) throw error;
        if (options.json)
          printJson({ file, readable: false, error: { code: error.code, message: error.message, hint: error.hint } });
        process.stderr.write(`reenact: cannot check ${file}: ${describeForCli(error)}\n`);
        throw new CommanderError(UNREADABLE, 'reenact.verify.unreadable', error.message);
      }
      if (options.json) printJson({ ...check, readable: true });
      else process.stdout.write(describe(check));
      if (!check.detected) throw new CommanderError(NOT_FOUND, 'reenact.verify.notFound', 'no watermark');
    });
}
