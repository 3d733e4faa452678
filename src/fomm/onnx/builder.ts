import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

/** ONNX operator set the graphs target: GridSample 'bilinear' is spelled that way in opsets 16–19. */
export const OPSET = 17;

/** A float32 tensor held in memory until the graph is serialised. */
export interface FloatTensor {
  dims: number[];
  data: Float32Array;
}

/** Marks a numeric attribute as FLOAT (plain numbers are written as INT). */
/** A conv's weight and bias. */
export interface ConvKernels {
  weight: FloatTensor;
  bias: FloatTensor;
}

export interface FloatAttribute {
  float: number;
}

export type AttributeValue = number | string | number[] | FloatAttribute;

export function float(value: number): FloatAttribute {
  return { float: value };
}

/**
 * When 3×3 convs use Winograd F(4×4, 3×3): where it is faster (auto, the default), wherever the
 * map size allows (always: to check its numerics on small models), or never.
 */
export type WinogradPolicy = 'auto' | 'always' | 'never';

export interface GraphOptions {
  winograd?: WinogradPolicy;
}

export interface ConvOptions {
  /** The same on every side, or [top, left, bottom, right]. */
  pads?: number | [number, number, number, number];
  stride?: number;
  group?: number;
}

/**
 * A small typed builder for one ONNX graph: named values are strings, every helper returns the
 * name of its output. Weights stay as Float32Array references until `toBytes`.
 */
export class OnnxGraph {
  private readonly nodes: InstanceType<typeof onnx.NodeProto>[] = [];
  private readonly initializers: InstanceType<typeof onnx.TensorProto>[] = [];
  private readonly inputs: InstanceType<typeof onnx.ValueInfoProto>[] = [];
  private readonly outputs: InstanceType<typeof onnx.ValueInfoProto>[] = [];
  private readonly constantCache = new Map<string, string>();
  private counter = 0;

  constructor(
    readonly name: string,
    readonly options: GraphOptions = {},
  ) {}

  private fresh(prefix: string): string {
    return `${prefix}_${this.counter++}`;
  }

  /** Declares a graph input; string dims are symbolic. */
  input(name: string, dims: (number | string)[], type: 'float32' | 'int64' = 'float32'): string {
    this.inputs.push(
      valueInfo(name, dims, type === 'float32' ? onnx.TensorProto.DataType.FLOAT : onnx.TensorProto.DataType.INT64),
    );
    return name;
  }

  /** Declares `value` as the graph output called `name`. */
  output(name: string, value: string, dims: (number | string)[] = []): void {
    if (value !== name)
      this.nodes.push(
        onnx.NodeProto.create({ opType: 'Identity', input: [value], output: [name], name: this.fresh('Identity') }),
      );
    this.outputs.push(valueInfo(name, dims.length ? dims : undefined, onnx.TensorProto.DataType.FLOAT));
  }

  /** A float32 initializer. */
  constant(tensor: FloatTensor, prefix = 'w'): string {
    const name = this.fresh(prefix);
    const bytes = new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
    this.initializers.push(
      onnx.TensorProto.create({ name, dims: tensor.dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: bytes }),
    );
    return name;
  }

  /** A float32 constant of any shape given as plain numbers (deduplicated). */
  floats(values: number[], dims: number[] = [values.length]): string {
    const key = `f:${dims.join(',')}:${values.join(',')}`;
    let name = this.constantCache.get(key);
    if (!name) {
      name = this.constant({ dims, data: Float32Array.from(values) }, 'c');
      this.constantCache.set(key, name);
    }
    return name;
  }

  scalar(value: number): string {
    return this.floats([value], []);
  }

  /** A 1-D int64 constant (shapes, axes, indices), deduplicated. */
  int64s(values: number[]): string {
    const key = `i:${values.join(',')}`;
    let name = this.constantCache.get(key);
    if (!name) {
      name = this.fresh('i');
      const data = BigInt64Array.from(values.map(BigInt));
      this.initializers.push(
        onnx.TensorProto.create({
          name,
          dims: [values.length],
          dataType: onnx.TensorProto.DataType.INT64,
          rawData: new Uint8Array(data.buffer),
        }),
      );
      this.constantCache.set(key, name);
    }
    return name;
  }

  /** An int64 constant of any shape (gather indices). */
  constInt64Tensor(values: number[], dims: number[]): string {
    const name = this.fresh('idx');
    const data = BigInt64Array.from(values.map(BigInt));
    this.initializers.push(
      onnx.TensorProto.create({
        name,
        dims,
        dataType: onnx.TensorProto.DataType.INT64,
        rawData: new Uint8Array(data.buffer),
      }),
    );
    return name;
  }

  /** Any operator with one output. */
  op(opType: string, inputs: string[], attributes: Record<string, AttributeValue> = {}): string {
    return this.opMulti(opType, inputs, 1, attributes)[0]!;
  }

  opMulti(
    opType: string,
    inputs: string[],
    outputCount: number,
    attributes: Record<string, AttributeValue> = {},
  ): string[] {
    const name = this.fresh(opType);
    const outputs = Array.from({ length: outputCount }, (_, i) => `${name}_out${i}`);
    this.nodes.push(
      onnx.NodeProto.create({
        opType,
        name,
        input: inputs,
        output: outputs,
        attribute: Object.entries(attributes).map(([key, value]) => attribute(key, value)),
      }),
    );
    return outputs;
  }

  conv(x: string, weight: FloatTensor, bias: FloatTensor | undefined, options: ConvOptions = {}): string {
    const [, , kh, kw] = weight.dims as [number, number, number, number];
    const pads =
      typeof options.pads === 'number' || options.pads === undefined
        ? new Array<number>(4).fill(options.pads ?? 0)
        : options.pads;
    const inputs = [x, this.constant(weight, 'conv_w')];
    if (bias) inputs.push(this.constant(bias, 'conv_b'));
    return this.op('Conv', inputs, {
      kernel_shape: [kh, kw],
      pads,
      strides: [options.stride ?? 1, options.stride ?? 1],
      group: options.group ?? 1,
    });
  }

  relu(x: string): string {
    return this.op('Relu', [x]);
  }
  sigmoid(x: string): string {
    return this.op('Sigmoid', [x]);
  }
  exp(x: string): string {
    return this.op('Exp', [x]);
  }
  neg(x: string): string {
    return this.op('Neg', [x]);
  }
  add(a: string, b: string): string {
    return this.op('Add', [a, b]);
  }
  sub(a: string, b: string): string {
    return this.op('Sub', [a, b]);
  }
  mul(a: string, b: string): string {
    return this.op('Mul', [a, b]);
  }
  div(a: string, b: string): string {
    return this.op('Div', [a, b]);
  }
  matMul(a: string, b: string): string {
    return this.op('MatMul', [a, b]);
  }
  reshape(x: string, shape: number[]): string {
    return this.op('Reshape', [x, this.int64s(shape)]);
  }
  transpose(x: string, perm: number[]): string {
    return this.op('Transpose', [x], { perm });
  }
  concat(xs: string[], axis: number): string {
    return xs.length === 1 ? xs[0]! : this.op('Concat', xs, { axis });
  }
  softmax(x: string, axis: number): string {
    return this.op('Softmax', [x], { axis });
  }
  reduceSum(x: string, axes: number[], keepdims: boolean): string {
    return this.op('ReduceSum', [x, this.int64s(axes)], { keepdims: keepdims ? 1 : 0 });
  }
  split(x: string, axis: number, sizes: number[]): string[] {
    return this.opMulti('Split', [x, this.int64s(sizes)], sizes.length, { axis });
  }
  slice(x: string, starts: number[], ends: number[], axes: number[]): string {
    return this.op('Slice', [x, this.int64s(starts), this.int64s(ends), this.int64s(axes)]);
  }
  expand(x: string, shape: number[]): string {
    return this.op('Expand', [x, this.int64s(shape)]);
  }

  /** 2x2 average pooling, stride 2 (PyTorch AvgPool2d((2, 2))). */
  averagePool2(x: string): string {
    return this.op('AveragePool', [x], { kernel_shape: [2, 2], strides: [2, 2] });
  }

  /** [1, 4C, H, W] with channels grouped by (row phase, column phase) → [1, C, 2H, 2W]. */
  depthToSpace2(x: string): string {
    return this.op('DepthToSpace', [x], { blocksize: 2, mode: 'DCR' });
  }

  /** Nearest-neighbour 2x upsampling (PyTorch F.interpolate(scale_factor=2)). */
  upsampleNearest2(x: string): string {
    return this.op('Resize', [x, '', this.floats([1, 1, 2, 2])], {
      mode: 'nearest',
      coordinate_transformation_mode: 'asymmetric',
      nearest_mode: 'floor',
    });
  }

  /** Bilinear resize of an NCHW map to h×w, align_corners = false (PyTorch's default). */
  resizeBilinear(x: string, batch: number, channels: number, height: number, width: number): string {
    return this.op('Resize', [x, '', '', this.int64s([batch, channels, height, width])], {
      mode: 'linear',
      coordinate_transformation_mode: 'half_pixel',
    });
  }

  /** PyTorch F.grid_sample defaults: bilinear, zero padding, align_corners = false. */
  gridSample(x: string, grid: string): string {
    return this.op('GridSample', [x, grid], { mode: 'bilinear', padding_mode: 'zeros', align_corners: 0 });
  }

  /** Serialises the graph as an ONNX model. */
  toBytes(): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'reenact',
      opsetImport: [{ domain: '', version: OPSET }],
      graph: onnx.GraphProto.create({
        name: this.name,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      }),
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

function valueInfo(name: string, dims: (number | string)[] | undefined, elemType: number) {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType,
        shape: dims ? { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } : undefined,
      },
    },
  });
}

function attribute(name: string, value: AttributeValue) {
  const { AttributeType } = onnx.AttributeProto;
  if (typeof value === 'string')
    return onnx.AttributeProto.create({ name, type: AttributeType.STRING, s: new TextEncoder().encode(value) });
  if (typeof value === 'number') return onnx.AttributeProto.create({ name, type: AttributeType.INT, i: value });
  if (Array.isArray(value)) return onnx.AttributeProto.create({ name, type: AttributeType.INTS, ints: value });
  return onnx.AttributeProto.create({ name, type: AttributeType.FLOAT, f: value.float });
}
