// `npm install` step: builds the native kernels with node-gyp: FOMM's decoder (src/fomm/native),
// the mesh model's warp (src/mesh/native), the face models' crops (src/face/native) and the
// watermark embedder's loops (src/provenance/native). They are optimisations: where no C++
// toolchain is present the build is skipped with a warning, FOMM runs on ONNX Runtime alone and the
// rest in JavaScript, so an install never fails for want of a compiler.
import { spawnSync } from 'node:child_process';

if (process.arch !== 'x64') {
  console.warn(
    `reenact: the native kernels are for x86-64 (this is ${process.arch}); FOMM runs on ONNX Runtime alone, the rest in JavaScript.`,
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
    `reenact: the native kernels were not built (${why}). FOMM and the mesh model still work, slower (FOMM on ONNX Runtime alone, the mesh warp, face crops and watermark in JavaScript); install g++, make and python3, then run npm rebuild reenact (or npm install) to build them.`,
  );
}
