/**
 * The entry of a worker thread whose module sits beside `from` (an import.meta.url) under
 * `name` (without extension): the compiled .js, or, when running from TypeScript sources under
 * tsx (tests, benchmarks), a small module that loads the .ts through tsx, which worker threads
 * do not inherit.
 */
export function workerEntry(from: string, name: string): URL {
  // Modules loaded through tsx's tsImport (inside a worker) carry a query naming its namespace.
  const own = new URL(from);
  own.search = '';
  own.hash = '';
  if (!own.pathname.endsWith('.ts')) return new URL(`./${name}.js`, own);
  const entry = new URL(`./${name}.ts`, own).href;
  const loader = `import { tsImport } from ${JSON.stringify(import.meta.resolve('tsx/esm/api'))};\nawait tsImport(${JSON.stringify(entry)}, ${JSON.stringify(own.href)});`;
  return new URL(`data:text/javascript,${encodeURIComponent(loader)}`);
}
