import type { FloatTensor, OnnxGraph } from './builder.js';

/** Height and width of a feature map, where a builder knows them (Winograd needs them). */
export interface MapSize {
  height: number;
  width: number;
}

/**
 * 3×3 "same" convolutions by Winograd F(m×m, 3×3) in plain ONNX ops. F(4×4) takes 36 multiplies
 * per 16 outputs and F(8×8) 100 per 64, instead of 9 per output. The input transform Bᵀ·d·B runs
 * as two grouped 1-D convs (stride m, so they also cut the overlapping tiles), the products as
 * one batched MatMul, the output transform Aᵀ·M·A as a plain MatMul, and DepthToSpace puts
 * the m×m tiles back. Float32 error about 1e-5 relative for F(4×4), 5e-5 for F(8×8).
 */

export interface WinogradMatrices {
  /** Output tile size m; input tiles are m + 2. */
  m: number;
  BT: number[][];
  G: number[][];
  AT: number[][];
}

/**
 * Cook–Toom F(m×m, 3×3) from m + 1 finite interpolation points and ∞ (Lavin & Gray): Aᵀ evaluates
 * the points' powers, G the kernel polynomial at each point divided by Π(pₖ − pₗ), and row k of
 * Bᵀ holds the coefficients of Π_{l≠k}(x − pₗ) (the last row, for ∞, those of Π(x − pₗ)). Built in
 * float64; the graph rounds each matrix to float32 once.
 */
function cookToom(points: number[]): WinogradMatrices {
  const m = points.length - 1;
  const n = m + 2;
  const product = (roots: number[]): number[] => {
    let coefficients = [1];
    for (const root of roots) {
      const next = new Array<number>(coefficients.length + 1).fill(0);
      coefficients.forEach((c, i) => {
        next[i + 1]! += c;
        next[i]! -= root * c;
      });
      coefficients = next;
    }
    return coefficients;
  };
  const padded = (coefficients: number[]) => [...coefficients, ...new Array<number>(n - coefficients.length).fill(0)];
  const AT = Array.from({ length: m }, (_, i) => [...points.map((p) => p ** i), i === m - 1 ? 1 : 0]);
  const G = [
    ...points.map((p, k) => {
      const scale = points.reduce((acc, q, l) => (l === k ? acc : acc * (p - q)), 1);
      return [1, p, p * p].map((power) => power / scale);
    }),
    [0, 0, 1],
  ];
  const BT = [...points.map((_, k) => padded(product(points.filter((__, l) => l !== k)))), padded(product(points))];
  return { m, BT, G, AT };
}

/** Lavin & Gray's F(4×4, 3×3), points 0, ±1, ±2, ∞. */
const F4 = cookToom([0, 1, -1, 2, -2]);

/**
 * F(8×8, 3×3): 100 multiplies per 64 outputs, and on a 64×64 map whole tiles (F(6×6) covers 66×66
 * with 121 tiles of 64). The points 0, ±1/2, ±2, ±5/4, ±4/5 were chosen by simulated float32 error
 * among sets of four ± pairs; measured on a 256→256 conv at 64²: rms error 3.4e-5 (F(6×6) with
 * 0, ±1, ±2, ±1/2: 3.7e-6; the usual 0, ±1, ±2, ±1/2, ±4: 3.8e-4).
 */
const F8 = cookToom([0, 1 / 2, -1 / 2, 2, -2, 5 / 4, -5 / 4, 4 / 5, -4 / 5]);

/**
 * Where Winograd beats ORT's direct conv on a 2-core AVX2 machine (measured): layers at least
 * 256 wide on maps of 16×16 and more. Large tiles from 48×48 up: on vox-adv-256 (12 bottleneck
 * convs and an up block at 64²) F(8×8) takes the generator from 274–285 to 249–265 ms a frame
 * (best of 6, 2 threads, against F(6×6)); prediction within 2e-4 of F(6×6), and golden-tiny
 * with Winograd forced everywhere stays within 1.3e-5 of PyTorch. Small maps keep F(4×4): there
 * the saving is small and its error lower.
 */
export function winogradPays(inChannels: number, outChannels: number, height: number, width: number): boolean {
  return Math.min(inChannels, outChannels) >= 256 && height % 4 === 0 && width % 4 === 0 && height * width >= 256;
}

/** The tile size for a map: F(8×8) from 48×48 up, else F(4×4). */
export function winogradMatrices(height: number, width: number): WinogradMatrices {
  return Math.min(height, width) >= 48 ? F8 : F4;
}

/**
 * U[f = (i, j), o, c] = (G · w[o, c] · Gᵀ)[i, j] of a [co, ci, 3, 3] kernel, in float64 (G·w
 * first, then ·Gᵀ) and rounded once, stored at `place(f, o, c)` (default: [f][o][c]).
 */
export function transformedKernels(
  weight: FloatTensor,
  G: number[][],
  place?: (f: number, o: number, c: number) => number,
): Float32Array {
  const n = G.length;
  const [co, ci] = weight.dims as [number, number];
  const index = place ?? ((f: number, o: number, c: number) => (f * co + o) * ci + c);
  const g = Float64Array.from(G.flat());
  const u = new Float32Array(n * n * co * ci);
  const gw = new Float64Array(n * 3);
  for (let o = 0; o < co; o++) {
    for (let c = 0; c < ci; c++) {
      const base = (o * ci + c) * 9;
      for (let i = 0; i < n; i++) {
        for (let s = 0; s < 3; s++) {
          gw[i * 3 + s] =
            g[i * 3]! * weight.data[base + s]! +
            g[i * 3 + 1]! * weight.data[base + 3 + s]! +
            g[i * 3 + 2]! * weight.data[base + 6 + s]!;
        }
      }
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) {
          u[index(i * n + j, o, c)] =
            gw[i * 3]! * g[j * 3]! + gw[i * 3 + 1]! * g[j * 3 + 1]! + gw[i * 3 + 2]! * g[j * 3 + 2]!;
        }
      }
    }
  }
  return u;
}

/** Whether a 3×3 conv of this shape uses Winograd under the graph's policy. */
export function useWinograd(g: OnnxGraph, inChannels: number, outChannels: number, size: MapSize): boolean {
  const policy = g.options.winograd ?? 'auto';
  if (policy === 'always') return size.height % 4 === 0 && size.width % 4 === 0;
  return policy === 'auto' && winogradPays(inChannels, outChannels, size.height, size.width);
}

/** Conv 3×3, pad 1, stride 1 with bias, by Winograd when the graph's policy says so, else ORT's Conv. */
export function conv3x3(g: OnnxGraph, x: string, weight: FloatTensor, bias: FloatTensor, size: MapSize): string {
  const [outChannels, inChannels] = weight.dims as [number, number];
  if (!useWinograd(g, inChannels, outChannels, size)) return g.conv(x, weight, bias, { pads: 1 });
  return winogradConv3x3(g, x, weight, bias, size.height, size.width);
}

/** The Winograd conv: F(8×8) on maps of 48×48 and more, else F(4×4) (height and width multiples of 4). */
function winogradConv3x3(
  g: OnnxGraph,
  x: string,
  weight: FloatTensor,
  bias: FloatTensor,
  height: number,
  width: number,
): string {
  const { m, BT, G, AT } = winogradMatrices(height, width);
  const n = m + 2;
  const freqs = n * n;
  const [co, ci] = weight.dims as [number, number];
  const tilesY = Math.ceil(height / m);
  const tilesX = Math.ceil(width / m);
  const u = transformedKernels(weight, G);
  // Rows: every channel → n (Bᵀ rows), n-tall windows, stride m; 1 pixel of padding above and
  // enough below for whole tiles. Then the same along columns.
  const padBottom = tilesY * m + 1 - height;
  const padRight = tilesX * m + 1 - width;
  const rowWeights = new Float32Array(ci * n * n);
  for (let c = 0; c < ci; c++)
    for (let i = 0; i < n; i++) for (let a = 0; a < n; a++) rowWeights[(c * n + i) * n + a] = BT[i]![a]!;
  const rows = g.op('Conv', [x, g.constant({ dims: [ci * n, 1, n, 1], data: rowWeights }, 'wino_bt')], {
    kernel_shape: [n, 1],
    pads: [1, 0, padBottom, 0],
    strides: [m, 1],
    group: ci,
  });
  const colWeights = new Float32Array(ci * n * n * n);
  for (let c = 0; c < ci * n; c++)
    for (let j = 0; j < n; j++) for (let b = 0; b < n; b++) colWeights[(c * n + j) * n + b] = BT[j]![b]!;
  const transformed = g.op('Conv', [rows, g.constant({ dims: [ci * freqs, 1, 1, n], data: colWeights }, 'wino_b')], {
    kernel_shape: [1, n],
    pads: [0, 1, 0, padRight],
    strides: [1, m],
    group: ci * n,
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
  const outTiles = g.matMul(
    g.constant({ dims: [m * m, freqs], data: outMatrix }, 'wino_a'),
    g.reshape(products, [freqs, co * tiles]),
  );
  const tiled = g.op('DepthToSpace', [g.reshape(outTiles, [1, m * m * co, tilesY, tilesX])], {
    blocksize: m,
    mode: 'DCR',
  });
  const out = tilesY * m === height && tilesX * m === width ? tiled : g.slice(tiled, [0, 0], [height, width], [2, 3]);
  return g.add(out, g.constant({ dims: [1, co, 1, 1], data: bias.data }, 'wino_bias'));
}
