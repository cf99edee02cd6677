// Converts a quantised TFLite image classifier (model/tflite.ts reads it) into an ONNX graph
// that ONNX Runtime runs on its integer kernels.
//
// Form: QDQ. Every activation keeps TFLite's own scale and zero point (real = (q - zp) *
// scale), as uint8: an int8 tensor becomes uint8 with its zero point raised by 128, the same
// real values and the same rounding, in the type x86's integer kernels take (u8 activations;
// with int8 activations ORT left a third of a per-channel model's convolutions in float). Each operator reads DequantizeLinear of its inputs,
// computes in float, and its output goes through QuantizeLinear with the output tensor's
// parameters; ORT fuses DQ → Conv → Q into QLinearConv, DQ → Add → Q into QLinearAdd, and
// so on, which compute exactly that in integers. Weights are TFLite's integer bytes behind
// a DequantizeLinear (per tensor, or per output channel with `axis`); biases are TFLite's
// int32 values on the scale in_scale · w_scale, the accumulator's own scale, so QLinearConv
// adds them to the accumulator as they are.
//
// What TFLite does beyond the operator's math, reproduced here:
// - a fused activation is a clamp in the quantized domain, after requantisation:
//   RELU6 keeps q in [max(qmin, zp), min(qmax, zp + round(6 / scale))]. Where that range
//   is the whole type (the usual case: QAT gives ReLU6 outputs the range [0, 6] exactly),
//   no node is needed;
// - "SAME" padding puts the odd pixel after: for stride 2 on an even input, 0 before and 1
//   after (onnx-graph.ts samePadding); padded pixels are real zeros, i.e. the zero point,
//   which is what QLinearConv pads with;
// - the layout: TFLite is NHWC, ONNX's Conv is NCHW. The graph transposes the input bytes
//   once; ORT's layout pass moves its integer convolutions back to NHWC.
//
// The output: the final Softmax runs in float on the dequantised logits, instead of TFLite's
// uint8 softmax, whose 1/256 steps tie most classes at 0 and would change a probability by
// up to half a step. The first `dropClasses` classes (background) are then sliced off, not
// renormalised, so each class keeps the probability the model gives it.
import { GraphBuilder, samePadding } from './onnx-graph.ts';
import { readTflite, type Activation, type Model, type Operator, type Quantization, type Tensor } from './tflite.ts';

export interface TfliteConversion {
  inputName: string;
  outputName: string;
  /** Leading output classes to drop (1 for the background class of TF-slim classifiers). */
  dropClasses: number;
  /** Classes the converted model must return, after the drop. */
  classes: number;
}

type IntType = 'uint8' | 'int8';
const RANGE: Record<IntType, [number, number]> = { uint8: [0, 255], int8: [-128, 127] };
/** What is added to a TFLite tensor's integers to get this graph's uint8 ones. */
const SHIFT: Record<IntType, number> = { uint8: 0, int8: 128 };
/** What is subtracted from TFLite's weights to get this graph's int8 ones. */
const WEIGHT_SHIFT: Record<IntType, number> = { uint8: 128, int8: 0 };

interface Quantized {
  kind: 'q';
  /** The ONNX tensor holding the integers, as uint8. */
  name: string;
  scale: number;
  zeroPoint: number;
  /** [N, C, H, W] while spatial; [N, C] once flattened. */
  dims: number[];
}
interface Float {
  kind: 'float';
  name: string;
  dims: number[];
}
type Value = Quantized | Float;

/** TfLiteRound: halves away from zero (Math.round rounds -0.5 up). */
const roundAway = (x: number) => Math.sign(x) * Math.round(Math.abs(x));

export function convertTflite(file: Uint8Array, spec: TfliteConversion): Uint8Array {
  return new TfliteGraph(readTflite(file)).build(spec);
}

/** One operator of a model as an ONNX graph of its own, for checking a conversion layer by layer. */
export interface OperatorGraph {
  onnx: Uint8Array;
  /**
   * The operator's activation inputs, in order: TFLite tensor index, ONNX name, NCHW dims,
   * and what to add to TFLite's integers to get the uint8 ones fed here (128 for int8).
   */
  inputs: { tensor: number; name: string; dims: number[]; shift: number }[];
  /** Its output: uint8 in NCHW (or [N, C]) that are TFLite's plus `shift`, or float probabilities after a softmax. */
  output: { tensor: number; name: string; dims: number[]; type: 'uint8' | 'float32'; shift: number };
}

/**
 * Operator `index` alone: its activation inputs become graph inputs, in ONNX's layout, and
 * its output the graph's output, so that another runtime's
 * input to that operator can be fed in and its output compared.
 */
export function convertOperator(model: Model, index: number): OperatorGraph {
  return new TfliteGraph(model).buildOperator(index);
}

class TfliteGraph {
  private g = new GraphBuilder();
  private values = new Map<number, Value>();
  private dqCount = 0;

  constructor(private model: Model) {}

  build(spec: TfliteConversion): Uint8Array {
    const { model } = this;
    if (model.inputs.length !== 1 || model.outputs.length !== 1) throw new Error('expected one input and one output');
    const input = model.tensors[model.inputs[0]];
    const [n, h, w, c] = input.shape;
    // The bytes fed in are the pixels themselves, so the model must take uint8.
    if (input.shape.length !== 4 || n !== 1 || input.type !== 'uint8') {
      throw new Error(`expected a [1,H,W,C] uint8 input, got ${input.type} [${input.shape}]`);
    }
    const nchw = this.g.node('Transpose', [spec.inputName], { perm: [0, 3, 1, 2] });
    this.values.set(input.index, { kind: 'q', name: nchw, ...activation8(input), dims: [1, c, h, w] });
    for (const i of model.operators.keys()) this.convert(i);
    const out = this.values.get(model.outputs[0]);
    if (out?.kind !== 'float') throw new Error('the model does not end in a softmax');
    const classes = out.dims[1] - spec.dropClasses;
    if (out.dims.length !== 2 || classes !== spec.classes) {
      throw new Error(`the model has ${out.dims[1]} outputs; dropping ${spec.dropClasses} leaves ${classes}, expected ${spec.classes}`);
    }
    const sliced = this.g.node('Slice', [
      out.name,
      this.g.constant('slice_start', [1], BigInt64Array.of(BigInt(spec.dropClasses))),
      this.g.constant('slice_end', [1], BigInt64Array.of(BigInt(out.dims[1]))),
      this.g.constant('slice_axis', [1], BigInt64Array.of(1n)),
    ]);
    this.g.rename(sliced, spec.outputName);
    return this.g.encode(
      'tflite',
      [{ name: spec.inputName, dims: ['N', h, w, c], type: 'uint8' }],
      [{ name: spec.outputName, dims: ['N', spec.classes], type: 'float32' }],
    );
  }

  buildOperator(index: number): OperatorGraph {
    const op = this.model.operators[index];
    if (!op) throw new Error(`the model has no operator ${index}`);
    const inputs = op.inputs.filter((i) => i >= 0 && !this.model.tensors[i].data).map((tensor) => {
      const t = this.model.tensors[tensor];
      const [n, h, w, c] = t.shape;
      const dims = t.shape.length === 4 ? [n, c, h, w] : t.shape;
      const name = `input_${tensor}`;
      this.values.set(tensor, { kind: 'q', name, ...activation8(t), dims });
      return { tensor, name, dims, type: 'uint8' as const, shift: SHIFT[t.type as IntType] };
    });
    this.convert(index);
    const tensor = op.outputs[0];
    const out = this.values.get(tensor)!;
    const type = out.kind === 'float' ? 'float32' : 'uint8';
    this.g.rename(out.name, `output_${tensor}`);
    const output = { tensor, name: `output_${tensor}`, dims: out.dims, type, shift: out.kind === 'float' ? 0 : SHIFT[this.model.tensors[tensor].type as IntType] } as const;
    const onnx = this.g.encode(`operator_${index}`, inputs, [output]);
    return { onnx, inputs: inputs.map(({ type: _, ...i }) => i), output };
  }

  private convert(index: number): void {
    const op = this.model.operators[index];
    try {
      this.operator(op);
    } catch (err) {
      throw new Error(`operator ${index} (${op.op}): ${(err as Error).message}`);
    }
  }

  private operator(op: Operator): void {
    const handlers: Record<string, (op: Operator) => void> = {
      CONV_2D: this.conv,
      DEPTHWISE_CONV_2D: this.conv,
      ADD: this.add,
      AVERAGE_POOL_2D: this.averagePool,
      MEAN: this.mean,
      RESHAPE: this.reshape,
      SOFTMAX: this.softmax,
      QUANTIZE: this.quantize,
    };
    const handle = handlers[op.op];
    if (!handle) throw new Error(`unsupported operator ${op.op}`);
    handle.call(this, op);
  }

  private value(index: number): Value {
    const v = this.values.get(index);
    if (!v) throw new Error(`tensor ${index} (${this.model.tensors[index].name}) is read before it is written`);
    return v;
  }

  private quantized(index: number): Quantized {
    const v = this.value(index);
    if (v.kind !== 'q') throw new Error(`tensor ${index} is float where an 8-bit tensor is expected`);
    return v;
  }

  /** A DequantizeLinear of its own for each reader, as ORT's QDQ fusion expects. */
  private dq(v: Quantized): string {
    const [scale, zp] = this.params(v.scale, v.zeroPoint);
    return this.g.node('DequantizeLinear', [v.name, scale, zp], {}, `${v.name}/dq${this.dqCount++}`);
  }

  private params(scale: number, zeroPoint: number): [string, string] {
    const key = `${Math.fround(scale).toPrecision(9)}_${zeroPoint}`;
    return [this.g.constant(`scale_${key}`, [], Float32Array.of(scale)), this.g.constant(`zp_${key}`, [], Uint8Array.of(zeroPoint))];
  }

  /** QuantizeLinear into the output tensor's parameters, then the fused activation's clamp. */
  private requantize(float: string, index: number, dims: number[], activation: Activation = 'NONE'): void {
    const { scale, zeroPoint } = activation8(this.model.tensors[index]);
    const [s, zp] = this.params(scale, zeroPoint);
    let name = this.g.node('QuantizeLinear', [float, s, zp], {}, `t${index}`);
    const [lo, hi] = activationRange(activation, scale, zeroPoint, 'uint8');
    if (lo !== 0 || hi !== 255) {
      const min = this.g.constant(`clip_${lo}`, [], Uint8Array.of(lo));
      const max = this.g.constant(`clip_${hi}`, [], Uint8Array.of(hi));
      name = this.g.node('Clip', [name, min, max], {}, `t${index}/${activation.toLowerCase()}`);
    }
    this.values.set(index, { kind: 'q', name, scale, zeroPoint, dims });
  }

  private conv(op: Operator): void {
    const [xi, wi, bi] = op.inputs;
    const x = this.quantized(xi);
    const wt = this.model.tensors[wi];
    const depthwise = op.op === 'DEPTHWISE_CONV_2D';
    const { strideH = 1, strideW = 1, dilationH = 1, dilationW = 1, padding = 'SAME' } = op.options;
    if (dilationH !== 1 || dilationW !== 1) throw new Error('dilated convolutions are not supported');
    if (x.dims.length !== 4) throw new Error('the input is not an image tensor');
    const [, cin, h, w] = x.dims;
    // TFLite: conv [O, kh, kw, I]; depthwise [1, kh, kw, I·multiplier].
    const [o0, kh, kw, o3] = wt.shape;
    const cout = depthwise ? o3 : o0;
    const perOut = depthwise ? 1 : o3;
    if (depthwise ? o0 !== 1 || o3 % cin !== 0 : o3 !== cin) throw new Error(`weights [${wt.shape}] do not fit ${cin} input channels`);
    const weights = this.weights(wt, cout, perOut, kh, kw, depthwise);
    const bias = bi >= 0 ? this.bias(this.model.tensors[bi], x.scale, wt, cout) : undefined;
    const [top, bottom, outH] = samePadding(h, kh, strideH, padding === 'SAME');
    const [left, right, outW] = samePadding(w, kw, strideW, padding === 'SAME');
    const y = this.g.node('Conv', [this.dq(x), weights, ...(bias ? [bias] : [])], {
      group: depthwise ? cin : 1,
      kernel_shape: [kh, kw],
      strides: [strideH, strideW],
      pads: [top, left, bottom, right],
    });
    this.requantize(y, op.outputs[0], [1, cout, outH, outW], op.options.activation);
  }

  /** The weights in ONNX's [O, I/group, kh, kw] order, behind their DequantizeLinear. */
  private weights(t: Tensor, cout: number, perOut: number, kh: number, kw: number, depthwise: boolean): string {
    if (t.type !== 'uint8' && t.type !== 'int8') throw new Error(`weights are ${t.type}; only 8-bit weights are supported`);
    const src = constantBytes(t, cout * perOut * kh * kw);
    const dst = new Uint8Array(src.length);
    for (let o = 0; o < cout; o++)
      for (let y = 0; y < kh; y++)
        for (let x = 0; x < kw; x++)
          for (let i = 0; i < perOut; i++) {
            const from = depthwise ? (y * kw + x) * cout + o : ((o * kh + y) * kw + x) * perOut + i;
            dst[((o * perOut + i) * kh + y) * kw + x] = src[from];
          }
    const q = t.quant;
    if (!q) throw new Error(`weights ${t.name} are not quantized`);
    // Per-channel weights are quantized along the output channel: axis 0 of a conv's
    // [O, kh, kw, I], axis 3 of a depthwise [1, kh, kw, O]; both become ONNX axis 0.
    const perChannel = q.scale.length > 1;
    if (perChannel && (q.scale.length !== cout || q.axis !== (depthwise ? 3 : 0))) throw new Error(`weights ${t.name}: unexpected per-channel axis ${q.axis}`);
    // uint8 weights become int8 with the zero point lowered by 128: the same real values, in
    // the type of x86's fast u8 × s8 kernels (VNNI); u8 × u8 ran 2.1× slower here.
    const shift = WEIGHT_SHIFT[t.type];
    const weights = Int8Array.from(dst, (v) => v - shift);
    const name = `w${t.index}`;
    const data = this.g.constant(name, [cout, perOut, kh, kw], weights);
    const dims = perChannel ? [cout] : [];
    const scale = this.g.constant(`${name}/scale`, dims, Float32Array.from(q.scale));
    const zp = this.g.constant(`${name}/zp`, dims, Int8Array.from(q.zeroPoint, (z) => z - shift));
    return this.g.node('DequantizeLinear', [data, scale, zp], perChannel ? { axis: 0 } : {}, `${name}/dq`);
  }

  /** TFLite's int32 bias, on the accumulator's scale in_scale · w_scale (per channel if w is). */
  private bias(t: Tensor, inScale: number, w: Tensor, cout: number): string {
    if (t.type !== 'int32' || !t.quant) throw new Error(`bias ${t.name} is ${t.type}, expected quantized int32`);
    const values = constantBytes(t, cout * 4);
    const wScales = w.quant!.scale;
    const scales = Float32Array.from({ length: wScales.length }, (_, c) => inScale * wScales[c]);
    // The file states the bias scale too; it must be that product, or the int32 values mean
    // something else than what the integer kernels will add.
    t.quant.scale.forEach((s, c) => {
      if (Math.abs(s - scales[c]) > 1e-5 * scales[c]) throw new Error(`bias ${t.name}: scale ${s} is not in_scale · w_scale = ${scales[c]}`);
    });
    const name = `b${t.index}`;
    const data = this.g.constant(name, [cout], int32s(values));
    const dims = scales.length > 1 ? [cout] : [];
    const scale = this.g.constant(`${name}/scale`, dims, scales);
    const zp = this.g.constant(`${name}/zp`, dims, new Int32Array(scales.length));
    return this.g.node('DequantizeLinear', [data, scale, zp], scales.length > 1 ? { axis: 0 } : {}, `${name}/dq`);
  }

  private add(op: Operator): void {
    const [a, b] = op.inputs.map((i) => this.quantized(i));
    if (a.dims.join() !== b.dims.join()) throw new Error(`ADD of shapes [${a.dims}] and [${b.dims}]: broadcasting is not supported`);
    const sum = this.g.node('Add', [this.dq(a), this.dq(b)]);
    this.requantize(sum, op.outputs[0], a.dims, op.options.activation);
  }

  private averagePool(op: Operator): void {
    const x = this.quantized(op.inputs[0]);
    const { filterH = 1, filterW = 1, strideH = 1, strideW = 1, padding = 'VALID' } = op.options;
    const [, c, h, w] = x.dims;
    const [top, bottom, outH] = samePadding(h, filterH, strideH, padding === 'SAME');
    const [left, right, outW] = samePadding(w, filterW, strideW, padding === 'SAME');
    // A window over the whole map is a global average: ORT has a dedicated kernel for it.
    const pooled = outH === 1 && outW === 1 && filterH === h && filterW === w
      ? this.g.node('GlobalAveragePool', [this.dq(x)])
      // count_include_pad = 0 (the default): TFLite averages only the real pixels under SAME padding.
      : this.g.node('AveragePool', [this.dq(x)], { kernel_shape: [filterH, filterW], strides: [strideH, strideW], pads: [top, left, bottom, right] });
    this.requantize(pooled, op.outputs[0], [1, c, outH, outW], op.options.activation);
  }

  /** MEAN over the two spatial axes (NHWC 1 and 2) is a global average pool. */
  private mean(op: Operator): void {
    const x = this.quantized(op.inputs[0]);
    const axesTensor = this.model.tensors[op.inputs[1]];
    const axes = [...int32s(constantBytes(axesTensor, 4 * (axesTensor.shape[0] ?? 1)))].sort();
    if (axes.join() !== '1,2' || x.dims.length !== 4) throw new Error(`MEAN over axes [${axes}] is not supported; only the spatial mean`);
    const pooled = this.g.node('GlobalAveragePool', [this.dq(x)]);
    const [, c] = x.dims;
    if (op.options.keepDims) return this.requantize(pooled, op.outputs[0], [1, c, 1, 1]);
    this.requantize(this.g.node('Flatten', [pooled], { axis: 1 }), op.outputs[0], [1, c]);
  }

  /** Only [N,1,1,C] → [N,C]: the same bytes in NHWC and NCHW, so a Flatten of the integers. */
  private reshape(op: Operator): void {
    const x = this.quantized(op.inputs[0]);
    const out = this.model.tensors[op.outputs[0]];
    const [, c, h, w] = x.dims;
    if (x.dims.length !== 4 || h !== 1 || w !== 1 || out.shape.length !== 2 || out.shape[1] !== c) {
      throw new Error(`reshape of [${x.dims}] to [${out.shape}] is not supported`);
    }
    const q = activation8(out);
    if (q.scale !== x.scale || q.zeroPoint !== x.zeroPoint) throw new Error('a reshape that requantizes is not supported');
    this.values.set(op.outputs[0], { ...x, name: this.g.node('Flatten', [x.name], { axis: 1 }), dims: [1, c] });
  }

  private softmax(op: Operator): void {
    const x = this.quantized(op.inputs[0]);
    if (x.dims.length !== 2) throw new Error('softmax over an image tensor is not supported');
    let logits = this.dq(x);
    const beta = op.options.beta ?? 1;
    if (beta !== 1) logits = this.g.node('Mul', [logits, this.g.constant(`beta_${beta}`, [], Float32Array.of(beta))]);
    this.values.set(op.outputs[0], { kind: 'float', name: this.g.node('Softmax', [logits], { axis: 1 }), dims: x.dims });
  }

  /** A change of integer type or parameters; on the float probabilities, only a format: skipped. */
  private quantize(op: Operator): void {
    const x = this.value(op.inputs[0]);
    if (x.kind === 'float') return void this.values.set(op.outputs[0], x);
    this.requantize(this.dq(x), op.outputs[0], x.dims);
  }
}

/** An 8-bit activation's per-tensor parameters, for the uint8 form of its integers. */
function activation8(t: Tensor): { scale: number; zeroPoint: number } {
  const q: Quantization | undefined = t.quant;
  if (t.type !== 'uint8' && t.type !== 'int8') throw new Error(`tensor ${t.name} is ${t.type}, expected 8-bit integers`);
  if (!q || q.scale.length !== 1) throw new Error(`tensor ${t.name} must be quantized per tensor`);
  return { scale: q.scale[0], zeroPoint: (q.zeroPoint[0] ?? 0) + SHIFT[t.type] };
}

function constantBytes(t: Tensor, expected: number): Uint8Array {
  if (!t.data) throw new Error(`${t.name} has no constant data`);
  if (t.data.length !== expected) throw new Error(`${t.name} holds ${t.data.length} bytes, expected ${expected}`);
  return t.data;
}

/** Little-endian int32s, copied: a constant's bytes need not be 4-byte aligned in the file. */
const int32s = (bytes: Uint8Array) => new Int32Array(new Uint8Array(bytes).buffer);

/** The quantized range that TFLite's CalculateActivationRangeQuantized clamps to. */
export function activationRange(activation: Activation, scale: number, zeroPoint: number, type: IntType): [number, number] {
  const [qmin, qmax] = RANGE[type];
  const q = (x: number) => zeroPoint + roundAway(x / scale);
  switch (activation) {
    case 'NONE':
      return [qmin, qmax];
    case 'RELU':
      return [Math.max(qmin, q(0)), qmax];
    case 'RELU6':
      return [Math.max(qmin, q(0)), Math.min(qmax, q(6))];
    case 'RELU_N1_TO_1':
      return [Math.max(qmin, q(-1)), Math.min(qmax, q(1))];
    default:
      throw new Error(`unsupported fused activation ${activation}`);
  }
}
