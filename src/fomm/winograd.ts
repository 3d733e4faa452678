import type { FloatTensor, OnnxGraph } from './onnx-graph.js';

/**
 * 3×3 "same" convolutions by Winograd F(m×m, 3×3) in plain ONNX ops. F(4×4) takes 36 multiplies
 * per 16 outputs and F(6×6) 64 per 36, instead of 9 per output. The input transform Bᵀ·d·B runs
 * as two grouped 1-D convs (stride m, so they also cut the overlapping tiles), the products as
 * one batched MatMul, the output transform Aᵀ·M·A as a plain MatMul, and DepthToSpace puts
 * the m×m tiles back. Float32 error about 1e-5 relative (F(6×6) a little more than F(4×4)).
 */

interface WinogradMatrices {
  /** Output tile size m; input tiles are m + 2. */
  m: number;
  BT: number[][];
  G: number[][];
  AT: number[][];
}

/** Lavin & Gray's F(4×4, 3×3), points 0, ±1, ±2, ∞. */
const F4: WinogradMatrices = {
  m: 4,
  BT: [
    [4, 0, -5, 0, 1, 0],
    [0, -4, -4, 1, 1, 0],
    [0, 4, -4, -1, 1, 0],
    [0, -2, -1, 2, 1, 0],
    [0, 2, -1, -2, 1, 0],
    [0, 4, 0, -5, 0, 1],
  ],
  G: [
    [1 / 4, 0, 0],
    [-1 / 6, -1 / 6, -1 / 6],
    [-1 / 6, 1 / 6, -1 / 6],
    [1 / 24, 1 / 12, 1 / 6],
    [1 / 24, -1 / 12, 1 / 6],
    [0, 0, 1],
  ],
  AT: [
    [1, 1, 1, 1, 1, 0],
    [0, 1, -1, 2, -2, 0],
    [0, 1, 1, 4, 4, 0],
    [0, 1, -1, 8, -8, 1],
  ],
};

/** F(6×6, 3×3), points 0, ±1, ±2, ±1/2, ∞ (as in wincnn). */
const F6: WinogradMatrices = {
  m: 6,
  BT: [
    [1, 0, -21 / 4, 0, 21 / 4, 0, -1, 0],
    [0, 1, 1, -17 / 4, -17 / 4, 1, 1, 0],
    [0, -1, 1, 17 / 4, -17 / 4, -1, 1, 0],
    [0, 1 / 2, 1 / 4, -5 / 2, -5 / 4, 2, 1, 0],
    [0, -1 / 2, 1 / 4, 5 / 2, -5 / 4, -2, 1, 0],
    [0, 2, 4, -5 / 2, -5, 1 / 2, 1, 0],
    [0, -2, 4, 5 / 2, -5, -1 / 2, 1, 0],
    [0, -1, 0, 21 / 4, 0, -21 / 4, 0, 1],
  ],
  G: [
    [1, 0, 0],
    [-2 / 9, -2 / 9, -2 / 9],
    [-2 / 9, 2 / 9, -2 / 9],
    [1 / 90, 1 / 45, 2 / 45],
    [1 / 90, -1 / 45, 2 / 45],
    [32 / 45, 16 / 45, 8 / 45],
    [32 / 45, -16 / 45, 8 / 45],
    [0, 0, 1],
  ],
  AT: [
    [1, 1, 1, 1, 1, 1, 1, 0],
    [0, 1, -1, 2, -2, 1 / 2, -1 / 2, 0],
    [0, 1, 1, 4, 4, 1 / 4, 1 / 4, 0],
    [0, 1, -1, 8, -8, 1 / 8, -1 / 8, 0],
    [0, 1, 1, 16, 16, 1 / 16, 1 / 16, 0],
    [0, 1, -1, 32, -32, 1 / 32, -1 / 32, 1],
  ],
};

/**
 * Where Winograd beats ORT's direct conv on a 2-core AVX2 machine (measured): layers at least
 * 256 wide on maps of 16×16 and more; F(6×6) from 48×48 up (on smaller maps its ragged tiles
 * cost more than it saves).
 */
export function winogradPays(inChannels: number, outChannels: number, height: number, width: number): boolean {
  return Math.min(inChannels, outChannels) >= 256 && height % 4 === 0 && width % 4 === 0 && height * width >= 256;
}

function tileFor(height: number, width: number): WinogradMatrices {
  return Math.min(height, width) >= 48 ? F6 : F4;
}

/** Whether a 3×3 conv of this shape uses Winograd under the graph's policy. */
export function useWinograd(g: OnnxGraph, inChannels: number, outChannels: number, size: { height: number; width: number }): boolean {
  const policy = g.options.winograd ?? 'auto';
  if (policy === 'always') return size.height % 4 === 0 && size.width % 4 === 0;
  return policy === 'auto' && winogradPays(inChannels, outChannels, size.height, size.width);
}

/** Conv 3×3, pad 1, stride 1 with bias, by Winograd when the graph's policy says so, else ORT's Conv. */
export function conv3x3(g: OnnxGraph, x: string, weight: FloatTensor, bias: FloatTensor, height: number, width: number): string {
  const [outChannels, inChannels] = weight.dims as [number, number];
  if (!useWinograd(g, inChannels, outChannels, { height, width })) return g.conv(x, weight, bias, { pads: 1 });
  return winogradConv3x3(g, x, weight, bias, height, width);
}

/** The Winograd conv: F(6×6) on maps of 48×48 and more, else F(4×4) (height and width multiples of 4). */
export function winogradConv3x3(g: OnnxGraph, x: string, weight: FloatTensor, bias: FloatTensor, height: number, width: number): string {
  const { m, BT, G, AT } = tileFor(height, width);
  const n = m + 2;
  const freqs = n * n;
  const [co, ci] = weight.dims as [number, number];
  const tilesY = Math.ceil(height / m);
  const tilesX = Math.ceil(width / m);
  // U[f = (i, j), o, c] = (G · w[o, c] · Gᵀ)[i, j], in float64 then rounded once.
  const u = new Float32Array(freqs * co * ci);
  for (let o = 0; o < co; o++) {
    for (let c = 0; c < ci; c++) {
      const base = (o * ci + c) * 9;
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) {
          let acc = 0;
          for (let r = 0; r < 3; r++) for (let s = 0; s < 3; s++) acc += G[i]![r]! * weight.data[base + r * 3 + s]! * G[j]![s]!;
          u[((i * n + j) * co + o) * ci + c] = acc;
        }
      }
    }
  }
  // Rows: every channel → n (Bᵀ rows), n-tall windows, stride m; 1 pixel of padding above and
  // enough below for whole tiles. Then the same along columns.
  const padBottom = tilesY * m + 1 - height;
  const padRight = tilesX * m + 1 - width;
  const rowWeights = new Float32Array(ci * n * n);
  for (let c = 0; c < ci; c++) for (let i = 0; i < n; i++) for (let a = 0; a < n; a++) rowWeights[(c * n + i) * n + a] = BT[i]![a]!;
  const rows = g.op('Conv', [x, g.constant({ dims: [ci * n, 1, n, 1], data: rowWeights }, 'wino_bt')], {
    kernel_shape: [n, 1], pads: [1, 0, padBottom, 0], strides: [m, 1], group: ci,
  });
  const colWeights = new Float32Array(ci * n * n * n);
  for (let c = 0; c < ci * n; c++) for (let j = 0; j < n; j++) for (let b = 0; b < n; b++) colWeights[(c * n + j) * n + b] = BT[j]![b]!;
  const transformed = g.op('Conv', [rows, g.constant({ dims: [ci * freqs, 1, 1, n], data: colWeights }, 'wino_b')], {
    kernel_shape: [1, n], pads: [0, 1, 0, padRight], strides: [1, m], group: ci * n,
  }); // [1, ci·freqs, tilesY, tilesX], channels (c, f)
  const tiles = tilesY * tilesX;
  const v = g.transpose(g.reshape(transformed, [ci, freqs, tiles]), [1, 0, 2]); // [freqs, ci, T]
  const products = g.matMul(g.constant({ dims: [freqs, co, ci], data: u }, 'wino_u'), v); // [freqs, co, T]
  // Output transform Aᵀ·M·A as one plain MatMul over the frequencies: rows (a, b) of the m×m tile,
  // columns (o, tile), which is DepthToSpace's DCR channel order. Measured faster than a grouped
  // 1×1 conv of co groups after a transpose (25.8 vs 27.0 ms per 256→256 conv at 64², 1 thread).
  const outMatrix = new Float32Array(m * m * freqs);
  for (let p = 0; p < m * m; p++) {
    const [i, j] = [Math.floor(p / m), p % m];
    for (let f = 0; f < freqs; f++) outMatrix[p * freqs + f] = AT[i]![Math.floor(f / n)]! * AT[j]![f % n]!;
  }
  const outTiles = g.matMul(g.constant({ dims: [m * m, freqs], data: outMatrix }, 'wino_a'), g.reshape(products, [freqs, co * tiles]));
  const tiled = g.op('DepthToSpace', [g.reshape(outTiles, [1, m * m * co, tilesY, tilesX])], { blocksize: m, mode: 'DCR' });
  const out = tilesY * m === height && tilesX * m === width ? tiled : g.slice(tiled, [0, 0], [height, width], [2, 3]);
  return g.add(out, g.constant({ dims: [1, co, 1, 1], data: bias.data }, 'wino_bias'));
}
