/**
 * The reference's building blocks (modules/util.py), shared by the keypoint detector, the dense
 * motion network and the generator: `Hourglass` (with its `Encoder` and `Decoder`), `ResBlock2d`,
 * `UpBlock2d`, `DownBlock2d`, `SameBlock2d`, `AntiAliasInterpolation2d` and
 * `make_coordinate_grid`. Layers of the paper's networks (Sec. 3 and its supplementary
 * architecture), with no equation of their own.
 */
import type { ConvKernels, FloatTensor, OnnxGraph } from '../onnx/builder.js';
import { foldAffine, type Weights } from '../checkpoint/tensors.js';
import { conv3x3, useWinograd, type MapSize } from '../onnx/winograd.js';

/**
 * SameBlock2d: conv k×k "same" (bias) → batch norm → ReLU, with the batch norm folded into the
 * conv. Keys `conv.*`, `norm.*`.
 */
export function sameBlock(
  g: OnnxGraph,
  x: string,
  w: Weights,
  inChannels: number,
  outChannels: number,
  kernel: number,
  pad: number,
  size?: MapSize,
): string {
  const conv = w.at('conv');
  const weight = conv.get('weight', [outChannels, inChannels, kernel, kernel]);
  const bias = conv.get('bias', [outChannels]);
  const { scale, shift } = w.at('norm').batchNorm(outChannels);
  const folded = foldAffine(weight, bias, scale, shift);
  if (kernel === 3 && pad === 1 && size) return g.relu(conv3x3(g, x, folded.weight, folded.bias, size));
  return g.relu(g.conv(x, folded.weight, folded.bias, { pads: pad }));
}

/** A block that takes `x` from `inChannels` to `outChannels` with the weights under `w`; `size`: `x`'s, where known. */
export type ChannelBlock = (
  g: OnnxGraph,
  x: string,
  w: Weights,
  inChannels: number,
  outChannels: number,
  size?: MapSize,
) => string;

/** DownBlock2d: conv 3×3 → BN → ReLU → 2×2 average pool. */
export const downBlock: ChannelBlock = (g, x, w, inChannels, outChannels, size) =>
  g.averagePool2(sameBlock(g, x, w, inChannels, outChannels, 3, 1, size));

/**
 * UpBlock2d: nearest 2× → conv 3×3 → BN → ReLU. A 3×3 conv of a nearest-upsampled map is, for
 * each of the four output phases, a 2×2 conv of the small map with summed taps: 16 instead of
 * 36 multiply-adds per input pixel, same result up to rounding. Where Winograd pays, the four
 * phases run as one 3×3 conv (zero taps) with 4× the outputs: 9 multiplies per input pixel.
 * DepthToSpace interleaves the phases.
 */
export const upBlock: ChannelBlock = (g, x, w, inChannels, outChannels, size) =>
  g.depthToSpace2(upBlockPhases(g, x, w, inChannels, outChannels, size));

/**
 * UpBlock2d's output before its phases are interleaved: [1, 4·C, h, w], channels (row phase,
 * column phase, C) — DepthToSpace's DCR order — so a following conv can work on the phases
 * (phaseConv) instead of on the 4× larger map.
 */
export const upBlockPhases: ChannelBlock = (g, x, w, inChannels, outChannels, size) => {
  if (size && useWinograd(g, inChannels, 4 * outChannels, size)) {
    const { weight, bias } = upBlockPhaseKernels(w, inChannels, outChannels);
    return g.relu(conv3x3(g, x, weight, bias, size));
  }
  const folded = foldedUpBlock(w, inChannels, outChannels);
  const phases: string[] = [];
  for (const py of [0, 1]) {
    for (const px of [0, 1]) {
      const pads: [number, number, number, number] = [1 - py, 1 - px, py, px];
      phases.push(
        g.conv(x, { dims: [outChannels, inChannels, 2, 2], data: phaseKernel(folded.weight, py, px) }, folded.bias, {
          pads,
        }),
      );
    }
  }
  return g.relu(g.concat(phases, 1));
};

/**
 * UpBlock2d's four phases as one 3×3 conv of the small map with 4·C outputs, channels (phase,
 * out): phase (py, px) sits in the 3×3 window at rows py..py+1, columns px..px+1, zero elsewhere.
 * Batch norm folded in; ReLU still to apply.
 */
export function upBlockPhaseKernels(w: Weights, inChannels: number, outChannels: number): ConvKernels {
  const folded = foldedUpBlock(w, inChannels, outChannels);
  const weight = new Float32Array(4 * outChannels * inChannels * 9);
  const bias = new Float32Array(4 * outChannels);
  for (let phase = 0; phase < 4; phase++) {
    const [py, px] = [phase >> 1, phase & 1];
    const small = phaseKernel(folded.weight, py, px);
    for (let oc = 0; oc < outChannels * inChannels; oc++) {
      for (let a = 0; a < 2; a++)
        for (let b = 0; b < 2; b++)
          weight[(phase * outChannels * inChannels + oc) * 9 + (py + a) * 3 + px + b] = small[oc * 4 + a * 2 + b]!;
    }
    bias.set(folded.bias.data, phase * outChannels);
  }
  return {
    weight: { dims: [4 * outChannels, inChannels, 3, 3], data: weight },
    bias: { dims: [4 * outChannels], data: bias },
  };
}

function foldedUpBlock(w: Weights, inChannels: number, outChannels: number): ConvKernels {
  const conv = w.at('conv');
  const { scale, shift } = w.at('norm').batchNorm(outChannels);
  return foldAffine(conv.get('weight', [outChannels, inChannels, 3, 3]), conv.get('bias', [outChannels]), scale, shift);
}

/** The 2×2 kernel of output phase (py, px): phase 0 reads offsets (-1, 0) with taps (w0, w1 + w2), phase 1 reads (0, +1) with (w0 + w1, w2). */
function phaseKernel(weight: FloatTensor, py: number, px: number): Float32Array {
  const taps = [
    [[0], [1, 2]],
    [[0, 1], [2]],
  ] as const;
  const pairs = weight.dims[0]! * weight.dims[1]!;
  const out = new Float32Array(pairs * 4);
  for (let oc = 0; oc < pairs; oc++) {
    for (let a = 0; a < 2; a++) {
      for (let b = 0; b < 2; b++) {
        let sum = 0;
        for (const r of taps[py]![a]!) for (const s of taps[px]![b]!) sum += weight.data[oc * 9 + r * 3 + s]!;
        out[oc * 4 + a * 2 + b] = sum;
      }
    }
  }
  return out;
}

/** ResBlock2d: BN1 → ReLU → conv1 → BN2 (folded) → ReLU → conv2, plus the input. */
export function resBlock(g: OnnxGraph, x: string, w: Weights, channels: number, size: MapSize): string {
  const { norm1, conv1, conv2 } = resBlockKernels(w, channels);
  const normed = g.add(
    g.mul(x, g.constant({ dims: [1, channels, 1, 1], data: norm1.scale }, 'bn_scale')),
    g.constant({ dims: [1, channels, 1, 1], data: norm1.shift }, 'bn_shift'),
  );
  const hidden = g.relu(conv3x3(g, g.relu(normed), conv1.weight, conv1.bias, size));
  return g.add(conv3x3(g, hidden, conv2.weight, conv2.bias, size), x);
}

/** ResBlock2d's norm1 (scale, shift), conv1 with norm2 folded in, and conv2. */
export function resBlockKernels(
  w: Weights,
  channels: number,
): {
  norm1: { scale: Float32Array; shift: Float32Array };
  conv1: ConvKernels;
  conv2: ConvKernels;
} {
  const conv1 = w.at('conv1');
  const norm2 = w.at('norm2').batchNorm(channels);
  const conv2 = w.at('conv2');
  return {
    norm1: w.at('norm1').batchNorm(channels),
    conv1: foldAffine(
      conv1.get('weight', [channels, channels, 3, 3]),
      conv1.get('bias', [channels]),
      norm2.scale,
      norm2.shift,
    ),
    conv2: { weight: conv2.get('weight', [channels, channels, 3, 3]), bias: conv2.get('bias', [channels]) },
  };
}

export interface HourglassSpec {
  blockExpansion: number;
  inFeatures: number;
  numBlocks: number;
  maxFeatures: number;
  /** Size of the input map. */
  height: number;
  width: number;
}

/** Hourglass (U-Net) of `encoder.down_blocks.N` and `decoder.up_blocks.N`; returns E + C channels at the input size. */
export function hourglass(g: OnnxGraph, x: string, w: Weights, spec: HourglassSpec): { out: string; channels: number } {
  const { blockExpansion: e, inFeatures, numBlocks, maxFeatures: m } = spec;
  const width = (i: number) => Math.min(m, e * 2 ** i);
  const skips = [x];
  for (let i = 0; i < numBlocks; i++) {
    const size = { height: Math.floor(spec.height / 2 ** i), width: Math.floor(spec.width / 2 ** i) };
    skips.push(
      downBlock(
        g,
        skips[skips.length - 1]!,
        w.at(`encoder.down_blocks.${i}`),
        i === 0 ? inFeatures : width(i),
        width(i + 1),
        size,
      ),
    );
  }
  let out = skips.pop()!;
  let n = 0;
  for (let i = numBlocks - 1; i >= 0; i--, n++) {
    const inChannels = (i === numBlocks - 1 ? 1 : 2) * width(i + 1);
    const size = { height: Math.floor(spec.height / 2 ** (i + 1)), width: Math.floor(spec.width / 2 ** (i + 1)) };
    out = upBlock(g, out, w.at(`decoder.up_blocks.${n}`), inChannels, width(i), size);
    out = g.concat([out, skips.pop()!], 1);
  }
  return { out, channels: e + inFeatures };
}

/** Python's round(): halves go to the even neighbour (the kernel size formula depends on it). */
function pythonRound(value: number): number {
  const floor = Math.floor(value);
  const diff = value - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/**
 * AntiAliasInterpolation2d: depthwise Gaussian blur (the stored `down.weight`), then every
 * int(1/s)-th pixel from 0 — done as one strided depthwise conv. Identity when scale is 1.
 */
export function antiAliasDownsample(
  g: OnnxGraph,
  x: string,
  w: Weights,
  channels: number,
  scale: number,
  height: number,
  width: number,
): { out: string; height: number; width: number } {
  if (scale === 1) return { out: x, height, width };
  const sigma = (1 / scale - 1) / 2;
  const kernel = 2 * pythonRound(sigma * 4) + 1;
  const stride = Math.trunc(1 / scale);
  const weight = w.get('down.weight', [channels, 1, kernel, kernel]);
  let out = g.conv(x, weight, undefined, { pads: Math.floor(kernel / 2), stride, group: channels });
  const convHeight = Math.floor((height - 1) / stride) + 1;
  const convWidth = Math.floor((width - 1) / stride) + 1;
  const outHeight = Math.floor(height * scale);
  const outWidth = Math.floor(width * scale);
  if (convHeight !== outHeight || convWidth !== outWidth) out = g.slice(out, [0, 0], [outHeight, outWidth], [2, 3]);
  return { out, height: outHeight, width: outWidth };
}

/** The [-1, 1] coordinate grid of an h×w map as (h·w, 2) rows of (x, y), computed in float32 as the reference does. */
export function coordinateGrid(height: number, width: number): Float32Array {
  const grid = new Float32Array(height * width * 2);
  const f = Math.fround;
  for (let i = 0; i < height; i++) {
    const y = f(f(2 * f(i / (height - 1))) - 1);
    for (let j = 0; j < width; j++) {
      grid[(i * width + j) * 2] = f(f(2 * f(j / (width - 1))) - 1);
      grid[(i * width + j) * 2 + 1] = y;
    }
  }
  return grid;
}

/**
 * Several convs of the same input, kernel and padding (heads such as keypoints + jacobians, or
 * masks + occlusion) as one conv whose output is split again: one pass over the input and no
 * padding of a 1- or 10-channel output to ORT's 8/16-channel blocks per head.
 */
export function convHeads(g: OnnxGraph, x: string, heads: ConvKernels[], pads: number): string[] {
  if (heads.length === 1) return [g.conv(x, heads[0]!.weight, heads[0]!.bias, { pads })];
  const [, inChannels, kh, kw] = heads[0]!.weight.dims as [number, number, number, number];
  const sizes = heads.map((h) => h.weight.dims[0]!);
  const total = sizes.reduce((a, b) => a + b, 0);
  const weight = new Float32Array(total * inChannels * kh * kw);
  const bias = new Float32Array(total);
  let offset = 0;
  for (const head of heads) {
    weight.set(head.weight.data, offset * inChannels * kh * kw);
    bias.set(head.bias.data, offset);
    offset += head.weight.dims[0]!;
  }
  const out = sameConv(g, x, { dims: [total, inChannels, kh, kw], data: weight }, { dims: [total], data: bias }, pads);
  return g.split(out, 1, sizes);
}

/**
 * A stride-1 conv with the same padding on every side. When it has fewer outputs than inputs (the
 * 7×7 heads: 3 or 11 outputs from 64 or 108 channels) it runs as the equivalent ConvTranspose
 * (kernel flipped, in/out swapped, padding k − 1 − p): ORT then does one dense GEMM of C_out·k²
 * rows and a col2im, instead of an im2col of C_in·k² rows for a few outputs. Measured on the
 * 2-core AVX2 machine, 1 thread: final 7×7 64→3 at 256² 23 ms vs 90 (50 by space-to-depth),
 * dense-motion heads 108→11 at 64² 7.3 vs 10.9; 35→50 is slower (15 vs 10), so wider outputs stay direct.
 */
export function sameConv(g: OnnxGraph, x: string, weight: FloatTensor, bias: FloatTensor, pad: number): string {
  return strideOneConv(g, x, weight, bias, [pad, pad, pad, pad]);
}

/** A stride-1 conv with pads [top, left, bottom, right], as ConvTranspose where that pays (see sameConv). */
function strideOneConv(
  g: OnnxGraph,
  x: string,
  weight: FloatTensor,
  bias: FloatTensor,
  pads: [number, number, number, number],
): string {
  const [outChannels, inChannels, kh, kw] = weight.dims as [number, number, number, number];
  const [top, left, bottom, right] = pads;
  if (
    outChannels >= inChannels ||
    kh === 1 ||
    kw === 1 ||
    Math.max(top, bottom) > kh - 1 ||
    Math.max(left, right) > kw - 1
  )
    return g.conv(x, weight, bias, { pads });
  const flipped = new Float32Array(weight.data.length);
  for (let o = 0; o < outChannels; o++) {
    for (let c = 0; c < inChannels; c++) {
      for (let a = 0; a < kh; a++) {
        for (let b = 0; b < kw; b++)
          flipped[((c * outChannels + o) * kh + kh - 1 - a) * kw + kw - 1 - b] =
            weight.data[((o * inChannels + c) * kh + a) * kw + b]!;
      }
    }
  }
  return g.op(
    'ConvTranspose',
    [x, g.constant({ dims: [inChannels, outChannels, kh, kw], data: flipped }, 'convt_w'), g.constant(bias, 'convt_b')],
    {
      kernel_shape: [kh, kw],
      pads: [kh - 1 - top, kw - 1 - left, kh - 1 - bottom, kw - 1 - right],
      strides: [1, 1],
    },
  );
}

/**
 * A stride-1 k×k "same" conv of the map that `phases` (upBlockPhases' output, [1, 4·C, h, w])
 * interleave to, without interleaving them first: each of the four output phases is a conv of
 * all four input phases with the taps that land on them (a k×k kernel spans ⌈k/2⌉ or so rows of
 * the small map). Only the small output is interleaved. For the generator's final 7×7 64→3 conv
 * at 256² this skips interleaving and rectifying 64 channels at full size (measured 17.1 vs
 * 23.0 ms, 2 threads); the result is the same up to rounding.
 */
export function phaseConv(g: OnnxGraph, phases: string, weight: FloatTensor, bias: FloatTensor, pad: number): string {
  const [outChannels, inChannels, kh, kw] = weight.dims as [number, number, number, number];
  // Output row 2U + q reads input row 2U + q + a − pad = 2(U + d) + p for tap a: d spans
  // floor((q − pad) / 2) .. floor((q + k − 1 − pad) / 2).
  const span = (q: number, k: number) => ({
    first: Math.floor((q - pad) / 2),
    last: Math.floor((q + k - 1 - pad) / 2),
  });
  const outputs: string[] = [];
  for (const qy of [0, 1]) {
    for (const qx of [0, 1]) {
      const rows = span(qy, kh);
      const cols = span(qx, kw);
      const [lh, lw] = [rows.last - rows.first + 1, cols.last - cols.first + 1];
      const kernel = new Float32Array(outChannels * 4 * inChannels * lh * lw);
      for (let o = 0; o < outChannels; o++) {
        for (let c = 0; c < inChannels; c++) {
          for (let a = 0; a < kh; a++) {
            const ry = qy + a - pad;
            const py = ry & 1;
            const dy = (ry - py) / 2 - rows.first;
            for (let b = 0; b < kw; b++) {
              const rx = qx + b - pad;
              const px = rx & 1;
              const dx = (rx - px) / 2 - cols.first;
              const channel = (py * 2 + px) * inChannels + c;
              kernel[((o * 4 * inChannels + channel) * lh + dy) * lw + dx]! +=
                weight.data[((o * inChannels + c) * kh + a) * kw + b]!;
            }
          }
        }
      }
      const pads: [number, number, number, number] = [-rows.first, -cols.first, rows.last, cols.last];
      outputs.push(strideOneConv(g, phases, { dims: [outChannels, 4 * inChannels, lh, lw], data: kernel }, bias, pads));
    }
  }
  return g.depthToSpace2(g.concat(outputs, 1));
}
