// `npm install` step: builds the native FOMM kernels (src/fomm/native) with node-gyp. They are an
// optimisation: where no C++ toolchain is present the build is skipped with a warning and FOMM
// runs on ONNX Runtime alone, so an install never fails for want of a compiler.
import { spawnSync } from 'node:child_process';

if (process.arch !== 'x64') {
  console.warn(
    `reenact: native FOMM kernels are for x86-64 (this is ${process.arch}); FOMM runs on ONNX Runtime alone.`,
  );
  process.exit(0);
}
const build = spawnSync('node-gyp', ['rebuild', '--loglevel', 'warn'], {
  stdio: 'inherit',
  shell: process.platform === 'win32',
});
if (build.status !== 0) {
  const why = build.error ? build.error.message : `node-gyp exited with ${build.status}`;
  console.warn(
    `reenact: the native FOMM kernels were not built (${why}). FOMM still works, on ONNX Runtime alone and slower; install g++, make and python3, then run npm rebuild reenact (or npm install) to build them.`,
  );
}
