import { runFfmpeg } from '../media/ffmpeg.js';
import { writeAtomically } from '../output.js';

/** The history's picture of a result: a 320-pixel-wide JPEG of a frame from its first second. */
export async function writeThumbnail(
  video: string,
  thumbnail: string,
  duration: number,
  signal?: AbortSignal,
): Promise<void> {
  const at = Math.min(1, duration / 2);
  await writeAtomically(thumbnail, (temporary) =>
    runFfmpeg(
      [
        '-y',
        '-v',
        'error',
        '-ss',
        String(at),
        '-i',
        video,
        '-frames:v',
        '1',
        '-vf',
        'scale=320:-2',
        '-f',
        'image2',
        '-c:v',
        'mjpeg',
        temporary,
      ],
      'making the thumbnail',
      signal ? { signal } : {},
    ),
  );
}
