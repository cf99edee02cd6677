// Reads a TensorFlow Lite flatbuffer into plain objects: the one subgraph's tensors (shape,
// type, constant bytes, quantisation) and operators (builtin code, inputs, outputs, options).
// Only the schema fields the converter uses are read, by their slot numbers in TFLite's
// schema.fbs; the `flatbuffers` runtime does the offset arithmetic. Anything the converter
// does not know stays unread, and it refuses the operator by name.
import { ByteBuffer } from 'flatbuffers';

/** TensorType in schema.fbs, by value. */
const TENSOR_TYPES = ['float32', 'float16', 'int32', 'uint8', 'int64', 'string', 'bool', 'int16', 'complex64', 'int8'] as const;
export type TensorType = (typeof TENSOR_TYPES)[number] | 'unknown';

/** BuiltinOperator values of the operators this reader knows the options of. */
export const OPS = {
  ADD: 0,
  AVERAGE_POOL_2D: 1,
  CONV_2D: 3,
  DEPTHWISE_CONV_2D: 4,
  DEQUANTIZE: 6,
  FULLY_CONNECTED: 9,
  RESHAPE: 22,
  SOFTMAX: 25,
  MEAN: 40,
  QUANTIZE: 114,
} as const;
export type OpName = keyof typeof OPS;
const OP_NAMES = new Map<number, OpName>(Object.entries(OPS).map(([k, v]) => [v, k as OpName]));

/** ActivationFunctionType in schema.fbs. */
export const ACTIVATIONS = ['NONE', 'RELU', 'RELU_N1_TO_1', 'RELU6', 'TANH', 'SIGN_BIT'] as const;
export type Activation = (typeof ACTIVATIONS)[number];

export interface Quantization {
  /** One per tensor, or one per slice along `axis` (per-channel). */
  scale: number[];
  zeroPoint: number[];
  axis: number;
}

export interface Tensor {
  index: number;
  name: string;
  shape: number[];
  type: TensorType;
  /** The constant's bytes (little-endian, row-major); undefined for activations. */
  data?: Uint8Array;
  quant?: Quantization;
}

export interface Options {
  padding?: 'SAME' | 'VALID';
  strideH?: number;
  strideW?: number;
  dilationH?: number;
  dilationW?: number;
  filterH?: number;
  filterW?: number;
  depthMultiplier?: number;
  activation?: Activation;
  beta?: number;
  keepDims?: boolean;
}

export interface Operator {
  /** The builtin's name, or `BUILTIN_<code>` / `CUSTOM_<name>` for what this reader does not know. */
  op: OpName | string;
  inputs: number[];
  outputs: number[];
  options: Options;
}

export interface Model {
  description: string;
  tensors: Tensor[];
  operators: Operator[];
  inputs: number[];
  outputs: number[];
}

/** One flatbuffer table: fields are read by their slot in the schema (0, 1, 2, …). */
class Table {
  constructor(
    private bb: ByteBuffer,
    readonly pos: number,
  ) {}

  private field(slot: number): number {
    return this.bb.__offset(this.pos, 4 + 2 * slot);
  }

  /** A scalar field, or `fallback` where the table leaves it out (its schema default). */
  private scalar(slot: number, read: (this: ByteBuffer, offset: number) => number, fallback: number): number {
    const o = this.field(slot);
    return o ? read.call(this.bb, this.pos + o) : fallback;
  }

  int32 = (slot: number, fallback = 0) => this.scalar(slot, ByteBuffer.prototype.readInt32, fallback);
  uint32 = (slot: number, fallback = 0) => this.scalar(slot, ByteBuffer.prototype.readUint32, fallback);
  int8 = (slot: number, fallback = 0) => this.scalar(slot, ByteBuffer.prototype.readInt8, fallback);
  uint8 = (slot: number, fallback = 0) => this.scalar(slot, ByteBuffer.prototype.readUint8, fallback);
  float32 = (slot: number, fallback = 0) => this.scalar(slot, ByteBuffer.prototype.readFloat32, fallback);

  uint64(slot: number): number {
    const o = this.field(slot);
    return o ? Number(this.bb.readUint64(this.pos + o)) : 0;
  }

  string(slot: number): string {
    const o = this.field(slot);
    return o ? (this.bb.__string(this.pos + o) as string) : '';
  }

  table(slot: number): Table | undefined {
    const o = this.field(slot);
    return o ? new Table(this.bb, this.bb.__indirect(this.pos + o)) : undefined;
  }

  /** A vector's start and length; length 0 when absent. */
  private vector(slot: number): { start: number; length: number } {
    const o = this.field(slot);
    if (!o) return { start: 0, length: 0 };
    return { start: this.bb.__vector(this.pos + o), length: this.bb.__vector_len(this.pos + o) };
  }

  tables(slot: number): Table[] {
    const { start, length } = this.vector(slot);
    return Array.from({ length }, (_, i) => new Table(this.bb, this.bb.__indirect(start + 4 * i)));
  }

  int32s(slot: number): number[] {
    const { start, length } = this.vector(slot);
    return Array.from({ length }, (_, i) => this.bb.readInt32(start + 4 * i));
  }

  int64s(slot: number): number[] {
    const { start, length } = this.vector(slot);
    return Array.from({ length }, (_, i) => Number(this.bb.readInt64(start + 8 * i)));
  }

  float32s(slot: number): number[] {
    const { start, length } = this.vector(slot);
    return Array.from({ length }, (_, i) => this.bb.readFloat32(start + 4 * i));
  }

  bytes(slot: number): Uint8Array {
    const { start, length } = this.vector(slot);
    return this.bb.bytes().subarray(start, start + length);
  }
}

// Slots, as numbered in tensorflow/lite/schema/schema.fbs.
const MODEL = { operatorCodes: 1, subgraphs: 2, description: 3, buffers: 4 };
const OPERATOR_CODE = { deprecatedBuiltinCode: 0, customCode: 1, builtinCode: 3 };
const SUBGRAPH = { tensors: 0, inputs: 1, outputs: 2, operators: 3 };
const TENSOR = { shape: 0, type: 1, buffer: 2, name: 3, quantization: 4 };
const QUANTIZATION = { scale: 2, zeroPoint: 3, quantizedDimension: 6 };
const OPERATOR = { opcodeIndex: 0, inputs: 1, outputs: 2, builtinOptions: 4 };
const BUFFER = { data: 0, offset: 1, size: 2 };

export function readTflite(file: Uint8Array): Model {
  if (file.length < 8) throw new Error('not a TFLite model: the file is too short');
  const bb = new ByteBuffer(file);
  if (!bb.__has_identifier('TFL3')) throw new Error('not a TFLite model: the file identifier is not TFL3');
  const model = new Table(bb, bb.readInt32(0));
  const subgraphs = model.tables(MODEL.subgraphs);
  if (subgraphs.length !== 1) throw new Error(`expected one subgraph, found ${subgraphs.length}`);
  const graph = subgraphs[0];

  const codes = model.tables(MODEL.operatorCodes).map((c) => {
    // Codes past 127 live in builtin_code; older files only have the deprecated byte.
    const code = Math.max(c.int8(OPERATOR_CODE.deprecatedBuiltinCode), c.int32(OPERATOR_CODE.builtinCode));
    const custom = c.string(OPERATOR_CODE.customCode);
    return custom ? `CUSTOM_${custom}` : (OP_NAMES.get(code) ?? `BUILTIN_${code}`);
  });
  const buffers = model.tables(MODEL.buffers);
  const bufferBytes = (index: number): Uint8Array | undefined => {
    const buffer = buffers[index];
    if (!buffer) throw new Error(`a tensor names buffer ${index}, but the file has ${buffers.length}`);
    const inline = buffer.bytes(BUFFER.data);
    if (inline.length) return inline;
    // Large models keep their data after the flatbuffer, addressed by offset and size.
    const [offset, size] = [buffer.uint64(BUFFER.offset), buffer.uint64(BUFFER.size)];
    if (offset <= 1 || size === 0) return undefined;
    if (offset + size > file.length) throw new Error(`buffer ${index} runs past the end of the file`);
    return file.subarray(offset, offset + size);
  };

  const tensors = graph.tables(SUBGRAPH.tensors).map((t, index): Tensor => {
    const q = t.table(TENSOR.quantization);
    const scale = q?.float32s(QUANTIZATION.scale) ?? [];
    return {
      index,
      name: t.string(TENSOR.name),
      shape: t.int32s(TENSOR.shape),
      type: TENSOR_TYPES[t.int8(TENSOR.type)] ?? 'unknown',
      data: bufferBytes(t.uint32(TENSOR.buffer)),
      quant: q && scale.length
        ? { scale, zeroPoint: q.int64s(QUANTIZATION.zeroPoint), axis: q.int32(QUANTIZATION.quantizedDimension) }
        : undefined,
    };
  });
  const operators = graph.tables(SUBGRAPH.operators).map((o): Operator => {
    const op = codes[o.uint32(OPERATOR.opcodeIndex)];
    if (op === undefined) throw new Error(`an operator names opcode ${o.uint32(OPERATOR.opcodeIndex)}, but the file has ${codes.length}`);
    const inputs = o.int32s(OPERATOR.inputs);
    const outputs = o.int32s(OPERATOR.outputs);
    for (const i of [...inputs, ...outputs]) {
      if (i >= tensors.length) throw new Error(`${op} names tensor ${i}, but the subgraph has ${tensors.length}`);
    }
    return { op, inputs, outputs, options: readOptions(op, o.table(OPERATOR.builtinOptions)) };
  });
  return {
    description: model.string(MODEL.description),
    tensors,
    operators,
    inputs: graph.int32s(SUBGRAPH.inputs),
    outputs: graph.int32s(SUBGRAPH.outputs),
  };
}

const PADDING = ['SAME', 'VALID'] as const;
const activation = (t: Table, slot: number): Activation => ACTIVATIONS[t.int8(slot)] ?? 'NONE';

/** Each builtin's options table, by the slots of its fields in schema.fbs. */
function readOptions(op: string, t: Table | undefined): Options {
  if (!t) return {};
  switch (op) {
    case 'CONV_2D': // Conv2DOptions
      return { padding: PADDING[t.int8(0)], strideW: t.int32(1), strideH: t.int32(2), activation: activation(t, 3), dilationW: t.int32(4, 1), dilationH: t.int32(5, 1) };
    case 'DEPTHWISE_CONV_2D': // DepthwiseConv2DOptions
      return {
        padding: PADDING[t.int8(0)], strideW: t.int32(1), strideH: t.int32(2), depthMultiplier: t.int32(3),
        activation: activation(t, 4), dilationW: t.int32(5, 1), dilationH: t.int32(6, 1),
      };
    case 'AVERAGE_POOL_2D': // Pool2DOptions
      return { padding: PADDING[t.int8(0)], strideW: t.int32(1), strideH: t.int32(2), filterW: t.int32(3), filterH: t.int32(4), activation: activation(t, 5) };
    case 'ADD': // AddOptions
    case 'FULLY_CONNECTED': // FullyConnectedOptions
      return { activation: activation(t, 0) };
    case 'SOFTMAX': // SoftmaxOptions
      return { beta: t.float32(0) };
    case 'MEAN': // ReducerOptions
      return { keepDims: t.uint8(0) !== 0 };
    default:
      return {};
  }
}
