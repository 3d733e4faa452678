import type { FloatTensor, OnnxGraph } from './onnx-graph.js';

/**
 * 3×3 "same" convolutions by Winograd F(4×4, 3×3) in plain ONNX ops: 36 multiplies per 16 outputs
 * instead of 144. Input transform Bᵀ·d·B as two grouped 1-D convs (stride 4, so they also cut the
 * overlapping 6×6 tiles), the 36 products as one batched MatMul, the output transform Aᵀ·m·A as a
 * grouped 1×1 conv, and DepthToSpace to put the 4×4 tiles back. Float32 error ~1e-5 relative.
 */

const BT = [
  [4, 0, -5, 0, 1, 0],
  [0, -4, -4, 1, 1, 0],
  [0, 4, -4, -1, 1, 0],
  [0, -2, -1, 2, 1, 0],
  [0, 2, -1, -2, 1, 0],
  [0, 4, 0, -5, 0, 1],
];
const G = [
  [1 / 4, 0, 0],
  [-1 / 6, -1 / 6, -1 / 6],
  [-1 / 6, 1 / 6, -1 / 6],
  [1 / 24, 1 / 12, 1 / 6],
  [1 / 24, -1 / 12, 1 / 6],
  [0, 0, 1],
];
const AT = [
  [1, 1, 1, 1, 1, 0],
  [0, 1, -1, 2, -2, 0],
  [0, 1, 1, 4, 4, 0],
  [0, 1, -1, 8, -8, 1],
];

/** Where F(4×4, 3×3) beats ORT's direct conv on a 2-core AVX2 machine (measured): wide layers on maps of 16×16 and more. */
export function winogradPays(inChannels: number, outChannels: number, height: number, width: number): boolean {
  return Math.min(inChannels, outChannels) >= 256 && height % 4 === 0 && width % 4 === 0 && height * width >= 256;
}

/** Whether a 3×3 conv of this shape uses Winograd under the graph's policy. */
export function useWinograd(g: OnnxGraph, inChannels: number, outChannels: number, size: { height: number; width: number }): boolean {
  const policy = g.options.winograd ?? 'auto';
  if (policy === 'always') return size.height % 4 === 0 && size.width % 4 === 0;
  return policy === 'auto' && winogradPays(inChannels, outChannels, size.height, size.width);
}

/** Conv 3×3, pad 1, stride 1 with bias, by Winograd when it pays, else ORT's Conv. */
export function conv3x3(g: OnnxGraph, x: string, weight: FloatTensor, bias: FloatTensor, height: number, width: number): string {
  const [outChannels, inChannels] = weight.dims as [number, number];
  if (!useWinograd(g, inChannels, outChannels, { height, width })) return g.conv(x, weight, bias, { pads: 1 });
  return winogradConv3x3(g, x, weight, bias, height, width);
}

/** The Winograd F(4×4, 3×3) conv (height and width multiples of 4). */
export function winogradConv3x3(g: OnnxGraph, x: string, weight: FloatTensor, bias: FloatTensor, height: number, width: number): string {
  const [co, ci] = weight.dims as [number, number];
  const tilesY = height / 4;
  const tilesX = width / 4;
  // U[f = (i, j), o, c] = (G · w[o, c] · Gᵀ)[i, j], in float64 then rounded once.
  const u = new Float32Array(36 * co * ci);
  for (let o = 0; o < co; o++) {
    for (let c = 0; c < ci; c++) {
      const base = (o * ci + c) * 9;
      for (let i = 0; i < 6; i++) {
        for (let j = 0; j < 6; j++) {
          let acc = 0;
          for (let r = 0; r < 3; r++) for (let s = 0; s < 3; s++) acc += G[i]![r]! * weight.data[base + r * 3 + s]! * G[j]![s]!;
          u[((i * 6 + j) * co + o) * ci + c] = acc;
        }
      }
    }
  }
  // Rows: every channel → 6 (Bᵀ rows), 6-tall window, stride 4; pads 1 above and 3 below give tilesY windows.
  const rowWeights = new Float32Array(ci * 36);
  for (let c = 0; c < ci; c++) for (let i = 0; i < 6; i++) for (let a = 0; a < 6; a++) rowWeights[(c * 6 + i) * 6 + a] = BT[i]![a]!;
  const rows = g.op('Conv', [x, g.constant({ dims: [ci * 6, 1, 6, 1], data: rowWeights }, 'wino_bt')], {
    kernel_shape: [6, 1], pads: [1, 0, 3, 0], strides: [4, 1], group: ci,
  });
  const colWeights = new Float32Array(ci * 6 * 36);
  for (let c = 0; c < ci * 6; c++) for (let j = 0; j < 6; j++) for (let b = 0; b < 6; b++) colWeights[(c * 6 + j) * 6 + b] = BT[j]![b]!;
  const transformed = g.op('Conv', [rows, g.constant({ dims: [ci * 36, 1, 1, 6], data: colWeights }, 'wino_b')], {
    kernel_shape: [1, 6], pads: [0, 1, 0, 3], strides: [1, 4], group: ci * 6,
  }); // [1, ci·36, tilesY, tilesX], channels (c, f)
  const tiles = tilesY * tilesX;
  const v = g.transpose(g.reshape(transformed, [ci, 36, tiles]), [1, 0, 2]); // [36, ci, T]
  const m = g.matMul(g.constant({ dims: [36, co, ci], data: u }, 'wino_u'), v); // [36, co, T]
  const byChannel = g.reshape(g.transpose(m, [1, 0, 2]), [1, co * 36, tilesY, tilesX]);
  const outWeights = new Float32Array(co * 16 * 36);
  for (let o = 0; o < co; o++) {
    for (let p = 0; p < 16; p++) {
      const [i, j] = [Math.floor(p / 4), p % 4];
      for (let f = 0; f < 36; f++) outWeights[(o * 16 + p) * 36 + f] = AT[i]![Math.floor(f / 6)]! * AT[j]![f % 6]!;
    }
  }
  const outTiles = g.conv(byChannel, { dims: [co * 16, 36, 1, 1], data: outWeights }, bias.data.length ? expandBias(bias) : undefined, { group: co });
  return g.op('DepthToSpace', [outTiles], { blocksize: 4, mode: 'CRD' });
}

/** The bias of each output channel repeated for its 16 tile positions (added inside the output transform). */
function expandBias(bias: FloatTensor): FloatTensor {
  const out = new Float32Array(bias.data.length * 16);
  for (let o = 0; o < bias.data.length; o++) out.fill(bias.data[o]!, o * 16, o * 16 + 16);
  return { dims: [out.length], data: out };
}
