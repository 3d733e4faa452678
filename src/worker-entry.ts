/**
 * A worker thread's entry module `name` (without extension) beside the module at `moduleUrl`: the
 * compiled .js, or, when running from TypeScript sources under tsx (tests, benchmarks), a small
 * module that loads the .ts through tsx, which worker threads do not inherit.
 */
export function workerEntry(moduleUrl: string, name: string): URL {
  if (!moduleUrl.endsWith('.ts')) return new URL(`./${name}.js`, moduleUrl);
  const entry = new URL(`./${name}.ts`, moduleUrl).href;
  const loader = `import { tsImport } from ${JSON.stringify(import.meta.resolve('tsx/esm/api'))};\nawait tsImport(${JSON.stringify(entry)}, ${JSON.stringify(moduleUrl)});`;
  return new URL(`data:text/javascript,${encodeURIComponent(loader)}`);
}
