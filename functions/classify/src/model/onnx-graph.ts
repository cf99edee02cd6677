// A small builder for the ONNX graphs the converters write: nodes with integer attributes,
// constants from typed arrays (their ONNX type follows from the array's), and the model's
// encoding with a batch-first uint8 input and a float output.
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
const T = onnx.TensorProto.DataType;

/** Opset 13: per-axis DequantizeLinear, Clip on integer types, Slice and Softmax as used here. */
export const OPSET = 13;

export type Constant = Float32Array | Int32Array | Uint8Array | Int8Array | BigInt64Array;
type Attribute = number | number[];

function dataType(values: Constant): number {
  if (values instanceof Float32Array) return T.FLOAT;
  if (values instanceof Int32Array) return T.INT32;
  if (values instanceof Int8Array) return T.INT8;
  if (values instanceof BigInt64Array) return T.INT64;
  return T.UINT8;
}

export interface TensorSpec {
  name: string;
  /** A string is a symbolic dimension ("N"). */
  dims: (number | string)[];
  type: 'uint8' | 'int8' | 'float32';
}

const ELEM_TYPE = { uint8: T.UINT8, int8: T.INT8, float32: T.FLOAT } as const;

export class GraphBuilder {
  private nodes: onnxProto.onnx.INodeProto[] = [];
  private initializers = new Map<string, onnxProto.onnx.ITensorProto>();
  private counter = 0;

  /** Adds a node and returns the name of its (only) output. */
  node(op: string, inputs: string[], attrs: Record<string, Attribute> = {}, output = `${op.toLowerCase()}_${this.counter++}`): string {
    this.nodes.push({
      opType: op,
      name: output,
      input: inputs,
      output: [output],
      attribute: Object.entries(attrs).map(([name, v]) =>
        Array.isArray(v)
          ? { name, type: onnx.AttributeProto.AttributeType.INTS, ints: v }
          : { name, type: onnx.AttributeProto.AttributeType.INT, i: v },
      ),
    });
    return output;
  }

  /** Adds a constant; a second one under the same name must hold the same values. */
  constant(name: string, dims: number[], values: Constant): string {
    const rawData = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    const existing = this.initializers.get(name);
    if (existing) {
      if (Buffer.compare(Buffer.from(existing.rawData!), Buffer.from(rawData)) !== 0) throw new Error(`two different constants named ${name}`);
      return name;
    }
    this.initializers.set(name, { name, dims, dataType: dataType(values), rawData });
    return name;
  }

  has(name: string): boolean {
    return this.initializers.has(name);
  }

  /** Renames a node output, so the graph's output gets its contract name. */
  rename(from: string, to: string): void {
    for (const n of this.nodes) n.output = n.output!.map((o) => (o === from ? to : o));
  }

  encode(graphName: string, inputs: TensorSpec[], outputs: TensorSpec[]): Uint8Array {
    const dim = (v: number | string) => (typeof v === 'number' ? { dimValue: v } : { dimParam: v });
    const valueInfo = (t: TensorSpec) => ({
      name: t.name,
      type: { tensorType: { elemType: ELEM_TYPE[t.type], shape: { dim: t.dims.map(dim) } } },
    });
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'klassify-convert',
      opsetImport: [{ domain: '', version: OPSET }],
      graph: {
        name: graphName,
        node: this.nodes,
        initializer: [...this.initializers.values()],
        input: inputs.map(valueInfo),
        output: outputs.map(valueInfo),
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

/** Returns [padBefore, padAfter, outSize] for one spatial axis, as TF's "same"/"valid" do. */
export function samePadding(size: number, kernel: number, stride: number, same: boolean): [number, number, number] {
  if (!same) return [0, 0, Math.floor((size - kernel) / stride) + 1];
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + kernel - size, 0);
  const before = Math.floor(total / 2);
  return [before, total - before, out];
}
