/**
 * A small ONNX (opset 13) graph writer over onnx-proto's generated protobuf classes. Same calls in the
 * same order → same bytes: names are assigned by a counter, tensors are stored as little-endian raw
 * data, and nothing carries a timestamp or a host name.
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

export const OPSET = 13;
/** ONNX IR version 7: the newest that opset 13 needs, read by every onnxruntime since 1.6. */
const IR_VERSION = 7;
const PRODUCER = 'aipg-diffusion';

/** Integer, integer list or string attributes: the graphs here need no float attribute. */
type Attribute = number | readonly number[] | string;
export type Dim = number | string;
type ElemType = 'float' | 'int64' | 'uint8';

const ELEM: Record<ElemType, number> = {
  float: onnx.TensorProto.DataType.FLOAT,
  int64: onnx.TensorProto.DataType.INT64,
  uint8: onnx.TensorProto.DataType.UINT8,
};

export class OnnxGraph {
  private readonly nodes: InstanceType<typeof onnx.NodeProto>[] = [];
  private readonly initializers: InstanceType<typeof onnx.TensorProto>[] = [];
  private readonly inputs: InstanceType<typeof onnx.ValueInfoProto>[] = [];
  private readonly outputs: InstanceType<typeof onnx.ValueInfoProto>[] = [];
  private counter = 0;
  /** Number of float weights stored. */
  parameterCount = 0;

  constructor(private readonly name: string) {}

  input(name: string, type: ElemType, dims: readonly Dim[]): string {
    this.inputs.push(valueInfo(name, type, dims));
    return name;
  }

  output(value: string, name: string, type: ElemType, dims: readonly Dim[]): void {
    this.op('Identity', [value], {}, name);
    this.outputs.push(valueInfo(name, type, dims));
  }

  /** A float initializer (a weight). */
  weight(name: string, dims: readonly number[], data: Float32Array): string {
    if (data.length !== dims.reduce((a, b) => a * b, 1))
      throw new RangeError(`weight ${name}: ${data.length} values for dims ${dims.join('×')}`);
    const raw = new Uint8Array(data.length * 4);
    const view = new DataView(raw.buffer);
    for (let i = 0; i < data.length; i++) view.setFloat32(4 * i, data[i]!, true);
    this.initializers.push(
      onnx.TensorProto.create({ name, dims: [...dims], dataType: ELEM.float, rawData: raw }),
    );
    this.parameterCount += data.length;
    return name;
  }

  /** A constant (not counted as a parameter): shapes, axes, scales. */
  constant(type: 'float' | 'int64', dims: readonly number[], values: readonly number[]): string {
    const name = `const_${this.counter++}`;
    const raw = new Uint8Array(values.length * (type === 'float' ? 4 : 8));
    const view = new DataView(raw.buffer);
    for (const [i, v] of values.entries())
      if (type === 'float') view.setFloat32(4 * i, v, true);
      else view.setBigInt64(8 * i, BigInt(v), true);
    this.initializers.push(
      onnx.TensorProto.create({ name, dims: [...dims], dataType: ELEM[type], rawData: raw }),
    );
    return name;
  }

  /** Appends a node; returns its output's name (`out` or a fresh one). */
  op(
    type: string,
    inputs: readonly string[],
    attributes: Record<string, Attribute> = {},
    out?: string,
  ): string {
    const output = out ?? `${type.toLowerCase()}_${this.counter++}`;
    this.nodes.push(
      onnx.NodeProto.create({
        opType: type,
        name: `${type}_${this.nodes.length}`,
        input: [...inputs],
        output: [output],
        attribute: Object.entries(attributes).map(([name, value]) => attribute(name, value)),
      }),
    );
    return output;
  }

  encode(): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: IR_VERSION,
      producerName: PRODUCER,
      opsetImport: [onnx.OperatorSetIdProto.create({ domain: '', version: OPSET })],
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

function attribute(name: string, value: Attribute): InstanceType<typeof onnx.AttributeProto> {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof value === 'string')
    return onnx.AttributeProto.create({ name, type: T.STRING, s: new TextEncoder().encode(value) });
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new RangeError(`attribute ${name}: ${value} is not an integer`);
    return onnx.AttributeProto.create({ name, type: T.INT, i: value });
  }
  return onnx.AttributeProto.create({ name, type: T.INTS, ints: [...value] });
}

function valueInfo(name: string, type: ElemType, dims: readonly Dim[]) {
  return onnx.ValueInfoProto.create({
    name,
    type: onnx.TypeProto.create({
      tensorType: onnx.TypeProto.Tensor.create({
        elemType: ELEM[type],
        shape: onnx.TensorShapeProto.create({
          dim: dims.map((d) =>
            typeof d === 'number'
              ? onnx.TensorShapeProto.Dimension.create({ dimValue: d })
              : onnx.TensorShapeProto.Dimension.create({ dimParam: d }),
          ),
        }),
      }),
    }),
  });
}
