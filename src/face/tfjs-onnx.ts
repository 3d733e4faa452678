import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { OnnxGraph, type FloatTensor } from '../fomm/onnx/builder.js';

/**
 * Rewrites one of Human's TensorFlow.js graph models (BlazeFace, Face Mesh, Iris) as an ONNX
 * model, so that onnxruntime's CPU kernels run it instead of tfjs's single-threaded wasm ones.
 * Only the operators those three graphs use are known; any other is refused by name. Inside,
 * maps are NCHW (ONNX's layout); the graph's input and outputs keep TensorFlow's NHWC layout, so
 * the caller sees the same tensors tfjs would give.
 */
export function tfjsGraphToOnnx(modelJsonPath: string): Uint8Array {
  const model = JSON.parse(readFileSync(modelJsonPath, 'utf8')) as TfjsModel;
  const constants = readWeights(model, dirname(modelJsonPath));
  const graph = new OnnxGraph(modelJsonPath);
  const values = new Map<string, Value>();
  const valueOf = (input: string): Value => {
    const value = values.get(input.replace(/:0$/, ''));
    if (!value) throw new Error(`tfjs graph ${modelJsonPath}: ${input} is used before it is made`);
    return value;
  };
  const constantOf = (input: string): FloatTensor => {
    const weight = constants.get(input);
    if (!weight) throw new Error(`tfjs graph ${modelJsonPath}: ${input} is not a weight`);
    return weight;
  };

  for (const node of model.modelTopology.node) {
    const attr = node.attr ?? {};
    const inputs = node.input ?? [];
    switch (node.op) {
      case 'Const':
        break;
      case 'Placeholder': {
        const dims = attr.shape!.shape!.dim!.map((d) => Number(d.size));
        const [, h, w, c] = dims as [number, number, number, number];
        const name = graph.input(node.name, ['batch', h, w, c]);
        values.set(node.name, { name: graph.transpose(name, [0, 3, 1, 2]), layout: 'nchw', hwc: [h, w, c] });
        break;
      }
      case '_FusedConv2D': {
        const x = valueOf(inputs[0]!);
        const filter = constantOf(inputs[1]!); // [kh, kw, in, out]
        const bias = constantOf(inputs[2]!);
        const [kh, kw, cin, cout] = filter.dims as [number, number, number, number];
        const stride = strideOf(attr);
        const fused = (attr.fused_ops?.list?.s ?? []).map((s) => Buffer.from(s, 'base64').toString());
        if (fused[0] !== 'BiasAdd') throw new Error(`tfjs graph ${modelJsonPath}: fused ops ${fused.join('+')}`);
        const weight = transposeFilter(filter.data, kh, kw, cin, cout);
        const [pads, hwc] = window(x.hwc, kh, kw, stride, paddingOf(attr), cout);
        let y = graph.conv(x.name, weight, bias, { pads, stride });
        for (const op of fused.slice(1)) {
          if (op === 'Relu') y = graph.relu(y);
          else if (op === 'Prelu') y = prelu(graph, y, constantOf(inputs[3]!));
          else throw new Error(`tfjs graph ${modelJsonPath}: fused op ${op} is not supported`);
        }
        values.set(node.name, { name: y, layout: 'nchw', hwc });
        break;
      }
      case 'DepthwiseConv2dNative': {
        const x = valueOf(inputs[0]!);
        const filter = constantOf(inputs[1]!); // [kh, kw, in, multiplier]
        const [kh, kw, cin, multiplier] = filter.dims as [number, number, number, number];
        const stride = strideOf(attr);
        const [pads, hwc] = window(x.hwc, kh, kw, stride, paddingOf(attr), cin * multiplier);
        // [kh, kw, in, m] → [in·m, 1, kh, kw]: output channel c·m + j reads input channel c.
        const weight = transposeFilter(filter.data, kh, kw, 1, cin * multiplier);
        const y = graph.conv(x.name, weight, undefined, { pads, stride, group: cin });
        values.set(node.name, { name: y, layout: 'nchw', hwc });
        break;
      }
      case 'AddV2': {
        const a = valueOf(inputs[0]!);
        const b = valueOf(inputs[1]!);
        values.set(node.name, { name: graph.add(a.name, b.name), layout: a.layout, hwc: a.hwc });
        break;
      }
      case 'Relu':
      case 'Sigmoid': {
        const x = valueOf(inputs[0]!);
        const y = node.op === 'Relu' ? graph.relu(x.name) : graph.sigmoid(x.name);
        values.set(node.name, { ...x, name: y });
        break;
      }
      case 'Prelu': {
        const x = valueOf(inputs[0]!);
        values.set(node.name, { ...x, name: prelu(graph, x.name, constantOf(inputs[1]!)) });
        break;
      }
      case 'MaxPool': {
        const x = valueOf(inputs[0]!);
        const k = attr.ksize!.list!.i!.map(Number);
        const stride = strideOf(attr);
        const [pads, hwc] = window(x.hwc, k[1]!, k[2]!, stride, paddingOf(attr), x.hwc[2]);
        const y = graph.op('MaxPool', [x.name], { kernel_shape: [k[1]!, k[2]!], strides: [stride, stride], pads });
        values.set(node.name, { name: y, layout: 'nchw', hwc });
        break;
      }
      case 'Pad': {
        const x = valueOf(inputs[0]!);
        const p = Array.from(constantOf(inputs[1]!).data); // NHWC [[n0, n1], [h0, h1], [w0, w1], [c0, c1]]
        const nchw = [p[0]!, p[6]!, p[2]!, p[4]!, p[1]!, p[7]!, p[3]!, p[5]!];
        const y = graph.op('Pad', [x.name, graph.int64s(nchw)], { mode: 'constant' });
        const hwc: Hwc = [x.hwc[0] + p[2]! + p[3]!, x.hwc[1] + p[4]! + p[5]!, x.hwc[2] + p[6]! + p[7]!];
        values.set(node.name, { name: y, layout: 'nchw', hwc });
        break;
      }
      case 'Reshape': {
        const x = valueOf(inputs[0]!);
        const shape = Array.from(constantOf(inputs[1]!).data);
        values.set(node.name, { name: graph.reshape(nhwc(graph, x), shape), layout: 'flat', hwc: x.hwc });
        break;
      }
      case 'ConcatV2': {
        const parts = inputs.slice(0, -1).map(valueOf);
        const axis = constantOf(inputs[inputs.length - 1]!).data[0]!;
        const y = graph.concat(
          parts.map((part) => nhwc(graph, part)),
          axis,
        );
        const hwc: Hwc = [parts[0]!.hwc[0], parts[0]!.hwc[1], parts.reduce((sum, part) => sum + part.hwc[2], 0)];
        values.set(node.name, { name: y, layout: 'flat', hwc });
        break;
      }
      case 'Identity': {
        const x = valueOf(inputs[0]!);
        graph.output(node.name, nhwc(graph, x));
        break;
      }
      default:
        throw new Error(`tfjs graph ${modelJsonPath}: operator ${node.op} (${node.name}) is not supported`);
    }
  }
  return graph.toBytes();
}

type Hwc = [number, number, number];

/** A map in the graph: NCHW inside, or already in TensorFlow's order (after a Reshape or Concat). */
interface Value {
  name: string;
  layout: 'nchw' | 'flat';
  /** The map's height, width and channels, to compute TensorFlow's SAME padding. */
  hwc: Hwc;
}

interface TfjsAttr {
  shape?: { shape?: { dim?: { size: string }[] } };
  strides?: { list?: { i?: string[] } };
  ksize?: { list?: { i?: string[] } };
  padding?: { s: string };
  fused_ops?: { list?: { s?: string[] } };
}

interface TfjsModel {
  modelTopology: { node: { name: string; op: string; input?: string[]; attr?: TfjsAttr }[] };
  weightsManifest: {
    paths: string[];
    weights: { name: string; shape: number[]; dtype: string; quantization?: { dtype: string } }[];
  }[];
}

function nhwc(graph: OnnxGraph, value: Value): string {
  return value.layout === 'nchw' ? graph.transpose(value.name, [0, 2, 3, 1]) : value.name;
}

function strideOf(attr: TfjsAttr): number {
  const [, sh, sw] = attr.strides!.list!.i!.map(Number) as [number, number, number, number];
  if (sh !== sw) throw new Error(`tfjs graph: unequal strides ${sh}x${sw} are not supported`);
  return sh;
}

function paddingOf(attr: TfjsAttr): 'SAME' | 'VALID' {
  const padding = Buffer.from(attr.padding!.s, 'base64').toString();
  if (padding !== 'SAME' && padding !== 'VALID') throw new Error(`tfjs graph: padding ${padding} is not supported`);
  return padding;
}

/** TensorFlow's padding for a kh×kw window (SAME puts the odd pixel after) and the output size. */
function window(
  [h, w]: Hwc,
  kh: number,
  kw: number,
  stride: number,
  padding: 'SAME' | 'VALID',
  channels: number,
): [[number, number, number, number], Hwc] {
  if (padding === 'VALID')
    return [
      [0, 0, 0, 0],
      [Math.floor((h - kh) / stride) + 1, Math.floor((w - kw) / stride) + 1, channels],
    ];
  const oh = Math.ceil(h / stride);
  const ow = Math.ceil(w / stride);
  const ph = Math.max((oh - 1) * stride + kh - h, 0);
  const pw = Math.max((ow - 1) * stride + kw - w, 0);
  const top = Math.floor(ph / 2);
  const left = Math.floor(pw / 2);
  return [
    [top, left, ph - top, pw - left],
    [oh, ow, channels],
  ];
}

/** HWIO → OIHW. */
function transposeFilter(data: Float32Array, kh: number, kw: number, cin: number, cout: number): FloatTensor {
  const out = new Float32Array(data.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < cin; i++)
        for (let o = 0; o < cout; o++)
          out[((o * cin + i) * kh + y) * kw + x] = data[((y * kw + x) * cin + i) * cout + o]!;
  return { dims: [cout, cin, kh, kw], data: out };
}

/**
 * TensorFlow's PReLU with per-channel alpha (any shape ending in C), as alpha * x + (1 - alpha) *
 * relu(x): two 1x1 depthwise convolutions and a Relu, which onnxruntime keeps in its blocked
 * (NCHWc) layout and fuses with the Add. Its PRelu kernel broadcasts element by element and takes
 * the maps out of that layout and back: with it Face Mesh took 8.1 ms and Iris 16.9 on one
 * thread, this way 3.4 and 7.6. The outputs differ from PRelu's by float rounding only.
 */
function prelu(graph: OnnxGraph, x: string, alpha: FloatTensor): string {
  const channels = alpha.data.length;
  const scaled = (input: string, factors: Float32Array) =>
    graph.conv(input, { dims: [channels, 1, 1, 1], data: factors }, undefined, { group: channels });
  const positive = alpha.data.map((slope) => 1 - slope);
  return graph.add(scaled(graph.relu(x), positive), scaled(x, alpha.data));
}

/** The graph's weights, float16-quantized ones widened, int32 ones (shapes, paddings) as floats. */
function readWeights(model: TfjsModel, folder: string): Map<string, FloatTensor> {
  const weights = new Map<string, FloatTensor>();
  for (const group of model.weightsManifest) {
    const bytes = Buffer.concat(group.paths.map((path) => readFileSync(join(folder, path))));
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let offset = 0;
    for (const entry of group.weights) {
      const count = entry.shape.reduce((a, b) => a * b, 1);
      const data = new Float32Array(count);
      const stored = entry.quantization?.dtype ?? entry.dtype;
      if (stored === 'float32') for (let i = 0; i < count; i++, offset += 4) data[i] = view.getFloat32(offset, true);
      else if (stored === 'int32') for (let i = 0; i < count; i++, offset += 4) data[i] = view.getInt32(offset, true);
      else if (stored === 'float16')
        for (let i = 0; i < count; i++, offset += 2) data[i] = HALF_TO_FLOAT[view.getUint16(offset, true)]!;
      else throw new Error(`tfjs graph: weight ${entry.name} is stored as ${stored}, which is not supported`);
      weights.set(entry.name, { dims: entry.shape, data });
    }
  }
  return weights;
}

/** Every IEEE half-precision bit pattern's value. */
const HALF_TO_FLOAT = Float32Array.from({ length: 0x10000 }, (_, half) => halfToFloat(half));

function halfToFloat(half: number): number {
  const sign = half & 0x8000 ? -1 : 1;
  const exponent = (half >> 10) & 0x1f;
  const fraction = half & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}
