import { Option, type Command } from 'commander';
import { animate, type AnimateOptions, type MotionModelName } from '../pipeline/animate.js';
import { ANIMATE_PARTS, type AnimatePart } from '../mesh/animator.js';
import { commaList, integerIn, numberIn, printJson } from './options.js';
import { progressBar } from './progress.js';

interface AnimateCommandOptions {
  source: string;
  driving: string;
  output: string;
  model: MotionModelName;
  config?: string;
  checkpoint?: string;
  compare?: boolean;
  label: boolean;
  watermark: boolean;
  face?: number;
  bestFrame?: boolean;
  startFrame?: number;
  threads?: number;
  expressionScale?: number;
  animate?: AnimatePart[];
  json?: boolean;
}

export function addAnimateCommand(program: Command, signal: AbortSignal): void {
  program
    .command('animate')
    .description(
      "Animate the face in a photo with the motion of a driving video; writes an MP4 labelled as AI-generated, with the driving video's audio.",
    )
    .requiredOption('--source <photo>', 'the portrait photo to animate (JPEG, PNG, WebP, HEIC)')
    .requiredOption('--driving <video>', 'the video whose motion and audio to use')
    .requiredOption('-o, --output <file.mp4>', 'where to write the result')
    .addOption(
      new Option(
        '--model <name>',
        'motion model: mesh (built in) or fomm (First Order Motion Model; needs --config and --checkpoint)',
      )
        .choices(['mesh', 'fomm'])
        .default('mesh'),
    )
    .option('--config <file.yaml>', 'FOMM config, e.g. vox-adv-256.yaml (with --model fomm)')
    .option('--checkpoint <file.pth.tar>', 'FOMM checkpoint, e.g. vox-adv-cpk.pth.tar (with --model fomm)')
    .option('--compare', 'write source | driving | result side by side')
    .option('--no-label', 'leave out the visible "AI-generated" mark (the file\'s metadata still says it)')
    .option(
      '--no-watermark',
      'leave out the invisible watermark that `reenact verify` finds (not recommended: see the README)',
    )
    .option('--face <n>', 'which face of the photo to animate, 0 = largest (see `reenact inspect`)', integerIn(0, 1000))
    .addOption(
      new Option(
        '--best-frame',
        "start from the driving frame whose face is most like the photo's (a first pass over the landmarks)",
      ).conflicts('startFrame'),
    )
    .option(
      '--start-frame <n>',
      "the driving frame whose pose maps onto the photo's (default: the first with a face)",
      integerIn(0, 100_000_000),
    )
    .option(
      '--threads <n>',
      "CPU threads to use: ONNX Runtime's for fomm, parallel face detections for mesh (default: all cores)",
      integerIn(1, 256),
    )
    .option(
      '--expression-scale <x>',
      'mesh: how strongly expression, eyes and mouth follow the driver, 0 (none) to 2 (exaggerated)',
      numberIn(0, 2),
      1,
    )
    .option(
      '--animate <parts>',
      `mesh: which parts of the driver's motion to take, any of ${ANIMATE_PARTS.join(',')} (default all)`,
      commaList<AnimatePart>(),
    )
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      `
The driving video's pose and expression are taken relative to a reference frame (the first with a
face, --start-frame N, or --best-frame) and applied to the photo. Frames where the driver's face is
lost hold the last pose. The output has the driving video's frame rate, length and audio, and the
photo's size rounded down to even.

Animate only faces you have the right to use. Every output is marked as AI-generated.

Examples:
  reenact animate --source me.jpg --driving talk.mp4 -o me-talking.mp4
  reenact animate --source me.jpg --driving talk.mp4 -o calm.mp4 --expression-scale 0.5 --animate pose,eyes,mouth
  reenact animate --source me.jpg --driving talk.mp4 -o out.mp4 --model fomm \\
      --config vox-adv-256.yaml --checkpoint vox-adv-cpk.pth.tar --best-frame --compare`,
    )
    .action(async (options: AnimateCommandOptions) => {
      if (!options.watermark) {
        process.stderr.write(
          'reenact: WARNING: --no-watermark: this video will carry no invisible watermark. Once its metadata is stripped (any re-upload does that)\n' +
            '  nothing will show that it is AI-generated. Keep the watermark unless you have a specific reason, and label the video yourself.\n',
        );
      }
      const progress = progressBar();
      const request: AnimateOptions = {
        source: options.source,
        driving: options.driving,
        output: options.output,
        model: options.model,
        config: options.config,
        checkpoint: options.checkpoint,
        compare: options.compare ?? false,
        label: options.label,
        watermark: options.watermark,
        face: options.face,
        startFrame: options.bestFrame ? 'best' : options.startFrame,
        threads: options.threads,
        ...(options.model === 'mesh' || options.expressionScale !== 1
          ? { expressionScale: options.expressionScale }
          : {}),
        ...(options.animate ? { animate: options.animate } : {}),
        signal,
        onProgress: progress,
      };
      try {
        const result = await animate(request);
        progress.finish();
        if (options.json) {
          printJson(result);
        } else {
          process.stdout.write(
            `${result.output}: ${result.width}x${result.height}, ${result.frames} frames at ${result.fps} fps (${result.duration.toFixed(2)} s), ` +
              `${result.hasAudio ? 'with audio' : 'no audio'}, ${result.labelled ? 'marked' : 'not visibly marked'} as AI-generated, ` +
              `${result.contentId ? `watermarked (content id ${result.contentId})` : 'NOT watermarked'}, ${result.credential === result.output ? 'content credential embedded' : `content credential ${result.credential}`}; ` +
              `model ${result.model}, reference frame ${result.startFrame}` +
              `${result.framesWithoutFace ? `, ${result.framesWithoutFace} frames without a face held the last pose` : ''}; ${result.seconds.toFixed(1)} s\n`,
          );
        }
      } finally {
        progress.finish();
      }
    });
}
