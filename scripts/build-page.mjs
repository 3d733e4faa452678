// Builds the studio pages (src/studio/page) into dist/studio/page: one bundled script per page
// (studio, live, live output), the HTML and the stylesheet. Nothing is fetched at run time; the server serves these files.
// A page's line `<!-- part.html: … -->` is replaced by that part (markup the studio and live pages share), indented to match.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'src', 'studio', 'page');
const output = join(root, 'dist', 'studio', 'page');
mkdirSync(output, { recursive: true });
await build({
  entryPoints: [
    { in: join(source, 'main.ts'), out: 'app' },
    { in: join(source, 'live.ts'), out: 'live' },
    { in: join(source, 'live-encoder.ts'), out: 'live-encoder' },
    { in: join(source, 'output.ts'), out: 'output' },
  ],
  outdir: output,
  bundle: true,
  format: 'esm',
  target: ['chrome110', 'firefox115', 'safari16'],
  minify: true,
  sourcemap: true,
  logLevel: 'warning',
});
const PART_LINE = /^( *)<!-- ([\w-]+\.html):.*-->$/gm;
for (const file of ['index.html', 'live.html', 'output.html']) {
  const page = readFileSync(join(source, file), 'utf8').replace(PART_LINE, (_line, indent, part) =>
    readFileSync(join(source, part), 'utf8')
      .trimEnd()
      .split('\n')
      .map((line) => (line ? indent + line : line))
      .join('\n'),
  );
  writeFileSync(join(output, file), page);
}
copyFileSync(join(source, 'style.css'), join(output, 'style.css'));
