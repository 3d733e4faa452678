import type { Command } from 'commander';
import {
  alignSource,
  chooseFace,
  DEFAULT_CROP_SCALE,
  DEFAULT_CROP_SIZE,
  measureRoll,
  rotateUpright,
} from '../align/source.js';
import { FaceAnalyzer } from '../face/detector.js';
import { readImage, writeImage } from '../media/image.js';
import { faceReport } from '../pipeline/inspect.js';
import { integerIn, numberIn, printJson } from './options.js';

interface AlignOptions {
  output: string;
  size: number;
  scale: number;
  face?: number;
  upright?: boolean;
  json?: boolean;
}

export function addAlignCommand(program: Command, signal: AbortSignal): void {
  program
    .command('align')
    .description(
      'Cut the model-ready crop from a portrait: the face found, its roll undone, centred with hair and chin, resized to a square.',
    )
    .argument('<photo>', 'the portrait photo')
    .requiredOption('-o, --output <file>', 'where to write the crop (PNG, or JPEG for .jpg)')
    .option('--size <px>', 'side of the square crop in pixels', integerIn(16, 4096), DEFAULT_CROP_SIZE)
    .option(
      '--scale <s>',
      'crop side as a multiple of the face size (larger shows more hair and shoulders)',
      numberIn(0.5, 10),
      DEFAULT_CROP_SCALE,
    )
    .option(
      '--face <n>',
      'which face to use when there are several (0 = largest; see `reenact inspect`)',
      integerIn(0, 1000),
    )
    .option(
      '--upright',
      'write the whole photo rotated so the eyes are level (canvas grown, nothing cut off) instead of the crop',
    )
    .option('--json', 'print what was done as JSON on stdout')
    .addHelpText(
      'after',
      '\nExamples:\n  reenact align portrait.jpg -o crop.png\n  reenact align group.jpg -o crop.png --face 1 --scale 2.2',
    )
    .action(async (photoPath: string, options: AlignOptions) => {
      const photo = await readImage(photoPath);
      const analyzer = await FaceAnalyzer.create();
      const faces = await analyzer.detect(photo);
      const face = chooseFace(faces, options.face, photoPath);
      const index = faces.indexOf(face);
      const roll = await measureRoll(photo, face, (image) => analyzer.detect(image));
      let summary: { output: string; width: number; height: number } & Record<string, unknown>;
      if (options.upright) {
        const upright = rotateUpright(photo, roll);
        await writeImage(options.output, upright.image, { signal });
        summary = {
          output: options.output,
          width: upright.image.width,
          height: upright.image.height,
          photoToUpright: upright.photoToUpright,
        };
      } else {
        const alignment = alignSource(photo, face, { size: options.size, cropScale: options.scale, roll });
        await writeImage(options.output, alignment.crop, { signal });
        summary = {
          output: options.output,
          width: options.size,
          height: options.size,
          cropToPhoto: alignment.cropToPhoto,
          photoToCrop: alignment.photoToCrop,
        };
      }
      const report = {
        photo: photoPath,
        face: { ...faceReport(face, index), roll },
        faceCount: faces.length,
        ...summary,
      };
      if (options.json) {
        printJson(report);
        return;
      }
      process.stdout.write(
        `${options.output}: ${report.width}x${report.height}, face ${index} of ${faces.length}, roll ${roll.toFixed(1)} deg ${options.upright ? 'undone' : 'undone in the crop'}\n`,
      );
    });
}
