// Static int8 quantisation of the converted graph, in QDQ form: every convolution reads
// DequantizeLinear(QuantizeLinear(x)) activations and DequantizeLinear(int8) weights, and
// ONNX Runtime fuses each such group into one QLinearConv that runs on integer kernels
// (VNNI where the CPU has it).
//
// Math (x real, q integer):
// - activations, per tensor, asymmetric:  q = clamp(round(x / s) + z),  x ≈ (q - z) * s,
//   s = (max - min) / 255 over a range widened to hold 0, so that 0 (ReLU's floor and the
//   convs' zero padding) is exact: z = round(-min / s), offset by -128 for int8.
// - weights, per output channel, symmetric:  q = clamp(round(W / s_c), ±127), with s_c from
//   max|W_c| / 127 down to half that, whichever rounds the channel with least squared error.
// - bias, int32 on the product scale:  s_b,c = s_x * s_c,  q = round(b' / s_b,c); QLinearConv
//   adds it to the int32 accumulator directly. b' is b with the bias correction below.
// The classifier (the last conv) stays float: quantising the logits would blur the softmax
// for a layer that is under 1 % of the multiply-adds.
import onnxProto from 'onnx-proto';
import { NORMALIZE } from './mobilenet-v1.ts';

const { onnx } = onnxProto;
type ModelProto = onnxProto.onnx.IModelProto;
type NodeProto = onnxProto.onnx.INodeProto;
type TensorProto = onnxProto.onnx.ITensorProto;
const T = onnx.TensorProto.DataType;

export const ACTIVATION_TYPES = ['u8', 's8'] as const;
export type ActivationType = (typeof ACTIVATION_TYPES)[number];

export interface Range {
  min: number;
  max: number;
}

export interface QuantizeOptions {
  /** uint8 (ORT's choice for x86: u8 activations × s8 weights) or int8 activations. */
  activations: ActivationType;
  /**
   * Channel means of each conv's input on the calibration photos. With them, each bias
   * absorbs the mean error that rounding the weights adds to its output channel:
   * b' = b - sum((Wq - W) * E[x]) (bias correction, Nagel et al. 2019).
   */
  means?: Readonly<Record<string, readonly number[]>>;
  /** Convolutions (by layer name, e.g. conv_pw_13) to leave in float. */
  keepFloat?: readonly string[];
}

const decode = (bytes: Uint8Array): ModelProto => onnx.ModelProto.decode(bytes);

/** The activations a quantised graph needs ranges for: the inputs of its quantised convs and pools. */
export function activationTensors(model: Uint8Array | ModelProto, keepFloat: readonly string[] = []): string[] {
  const graph = (model instanceof Uint8Array ? decode(model) : model).graph!;
  const constants = new Set(graph.initializer!.map((t) => t.name!));
  const names = new Set<string>();
  for (const n of quantisedConvs(graph.node!, keepFloat)) names.add(n.input![0]);
  for (const n of graph.node!) if (n.opType === 'GlobalAveragePool') names.add(n.input![0]);
  return [...names].filter((n) => !constants.has(n));
}

/** All convs but the classifier, which is the last one, and those kept in float. */
function quantisedConvs(nodes: NodeProto[], keepFloat: readonly string[] = []): NodeProto[] {
  return nodes.filter((n) => n.opType === 'Conv').slice(0, -1).filter((n) => !keepFloat.includes(layerOf(n)));
}

/** The Keras layer a converted conv came from: its weight is named `<layer>/W`. */
export const layerOf = (conv: NodeProto) => conv.input![1].replace(/\/W$/, '');

/**
 * The fp32 graph with every tensor in `names` added as an output, for calibration: run it on
 * photos and record each tensor's range.
 */
export function withOutputs(model: Uint8Array, names: string[]): Uint8Array {
  const m = decode(model);
  for (const name of names) m.graph!.output!.push({ name, type: { tensorType: { elemType: T.FLOAT } } });
  return onnx.ModelProto.encode(m).finish();
}

/** Scale and zero point for one activation range. */
export function activationParams(range: Range, type: ActivationType): { scale: number; zeroPoint: number } {
  const min = Math.min(range.min, 0);
  const max = Math.max(range.max, 0);
  const scale = max > min ? (max - min) / 255 : 1;
  const offset = type === 'u8' ? 0 : -128;
  const zeroPoint = Math.min(255 + offset, Math.max(offset, Math.round(-min / scale) + offset));
  return { scale: Math.fround(scale), zeroPoint };
}

export function quantizeQdq(model: Uint8Array, ranges: Readonly<Record<string, Range>>, opts: QuantizeOptions): Uint8Array {
  const m = decode(model);
  const graph = m.graph!;
  const inits = new Map(graph.initializer!.map((t) => [t.name!, t]));
  const added: TensorProto[] = [];
  const nodes: NodeProto[] = [];
  /**
   * Activation name → its DequantizeLinear output, the scale it was quantised with, and
   * the constant by which the dequantised value falls short of the real one.
   */
  const dequantised = new Map<string, { name: string; scale: number; shortBy?: number }>();
  const consumers = new Set(activationTensors(m, opts.keepFloat));
  const convs = new Set(quantisedConvs(graph.node!, opts.keepFloat));
  const dropped = new Set<string>();

  const qdq = (x: string): { name: string; scale: number; shortBy?: number } => {
    let done = dequantised.get(x);
    if (done) return done;
    const range = ranges[x];
    if (!range) throw new Error(`no calibration range for tensor ${x}: recalibrate (npm run calibrate)`);
    const { scale, zeroPoint } = activationParams(range, opts.activations);
    added.push(floats(`${x}/scale`, [], [scale]), int8s(`${x}/zp`, [], [zeroPoint], opts.activations));
    nodes.push(
      { opType: 'QuantizeLinear', name: `${x}/q`, input: [x, `${x}/scale`, `${x}/zp`], output: [`${x}/q`] },
      { opType: 'DequantizeLinear', name: `${x}/dq`, input: [`${x}/q`, `${x}/scale`, `${x}/zp`], output: [`${x}/dq`] },
    );
    done = { name: `${x}/dq`, scale };
    dequantised.set(x, done);
    return done;
  };

  // The input is bytes already. With u8 activations the first conv reads them through one
  // DequantizeLinear (scale 2/255, zero point 128) in place of Cast, Mul, Add and a
  // QuantizeLinear, which would put every pixel exactly halfway between two steps:
  // (x - 128) * 2/255 = (x / 127.5 - 1) - 1/255, and the conv's bias adds back the 1/255.
  const scaling = opts.activations === 'u8' ? inputScaling(graph.node!, inits, convs) : undefined;
  if (scaling) {
    const { bytes, output } = scaling;
    added.push(floats(`${bytes}/scale`, [], [2 / 255]), int8s(`${bytes}/zp`, [], [128], 'u8'));
    dequantised.set(output, { name: `${output}/dq`, scale: Math.fround(2 / 255), shortBy: 1 / 255 });
  }

  for (const node of graph.node!) {
    if (scaling?.nodes.includes(node)) {
      if (node.opType === 'Cast') {
        const { bytes, output } = scaling;
        nodes.push({ opType: 'DequantizeLinear', name: `${output}/dq`, input: [bytes, `${bytes}/scale`, `${bytes}/zp`], output: [`${output}/dq`] });
      }
      continue;
    }
    if (node.opType === 'GlobalAveragePool' && consumers.has(node.input![0])) {
      nodes.push({ ...node, input: [qdq(node.input![0]).name] });
      continue;
    }
    if (!convs.has(node)) {
      nodes.push(node);
      continue;
    }
    const [x, wName, bName] = node.input!;
    const input = qdq(x);
    const w = inits.get(wName)!;
    const b = inits.get(bName)!;
    const cout = Number(w.dims![0]);
    const wf = floatData(w);
    const perChannel = wf.length / cout;
    const wq = new Int8Array(wf.length);
    const wScale = new Float32Array(cout);
    const bq = new Int32Array(cout);
    const bScale = new Float32Array(cout);
    const bf = floatData(b);
    const means = opts.means?.[x];
    const group = Number(node.attribute!.find((a) => a.name === 'group')?.i ?? 1);
    const cinPerGroup = Number(w.dims![1]);
    const spatial = perChannel / cinPerGroup;
    for (let c = 0; c < cout; c++) {
      let absMax = 0;
      for (let j = 0; j < perChannel; j++) absMax = Math.max(absMax, Math.abs(wf[c * perChannel + j]));
      const s = weightScale(wf.subarray(c * perChannel, (c + 1) * perChannel), absMax);
      wScale[c] = s;
      for (let j = 0; j < perChannel; j++) wq[c * perChannel + j] = Math.max(-127, Math.min(127, Math.round(wf[c * perChannel + j] * (1 / s))));
      let bias = bf[c];
      if (input.shortBy) for (let j = 0; j < perChannel; j++) bias += input.shortBy * wq[c * perChannel + j] * s;
      if (means) {
        // Output channel c of a grouped conv reads cinPerGroup inputs from its group's first.
        const firstInput = Math.floor(c / (cout / group)) * cinPerGroup;
        for (let j = 0; j < perChannel; j++) {
          const k = c * perChannel + j;
          bias -= (wq[k] * s - wf[k]) * means[firstInput + Math.floor(j / spatial)];
        }
      }
      bScale[c] = Math.fround(input.scale * s);
      // Clamped: an Int32Array would wrap an out-of-range value silently.
      bq[c] = Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, Math.round(bias / bScale[c])));
    }
    const wDims = w.dims!.map(Number);
    added.push(
      { name: `${wName}/q`, dims: wDims, dataType: T.INT8, rawData: bytesOf(wq) },
      floats(`${wName}/scale`, [cout], wScale),
      { name: `${wName}/zp`, dims: [cout], dataType: T.INT8, rawData: new Uint8Array(cout) },
      { name: `${bName}/q`, dims: [cout], dataType: T.INT32, rawData: bytesOf(bq) },
      floats(`${bName}/scale`, [cout], bScale),
      { name: `${bName}/zp`, dims: [cout], dataType: T.INT32, rawData: new Uint8Array(cout * 4) },
    );
    const axis0 = [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 0 }];
    nodes.push(
      { opType: 'DequantizeLinear', name: `${wName}/dq`, input: [`${wName}/q`, `${wName}/scale`, `${wName}/zp`], output: [`${wName}/dq`], attribute: axis0 },
      { opType: 'DequantizeLinear', name: `${bName}/dq`, input: [`${bName}/q`, `${bName}/scale`, `${bName}/zp`], output: [`${bName}/dq`], attribute: axis0 },
      { ...node, input: [input.name, `${wName}/dq`, `${bName}/dq`] },
    );
    dropped.add(wName).add(bName);
  }
  graph.node = nodes;
  graph.initializer = [...graph.initializer!.filter((t) => !dropped.has(t.name!)), ...added];
  m.producerName = 'klassify-convert+quantize';
  return onnx.ModelProto.encode(m).finish();
}

/**
 * The per-channel weight scale: max|W| / 127 shrunk while that lowers the squared rounding
 * error, trading a clipped outlier or two for finer steps for all the other weights.
 */
function weightScale(w: Float32Array, absMax: number): number {
  if (absMax === 0) return 1;
  let best = absMax / 127;
  let bestErr = Infinity;
  for (let step = 0; step <= 25; step++) {
    const s = Math.fround(((1 - step * 0.02) * absMax) / 127);
    const inv = 1 / s;
    let err = 0;
    for (let i = 0; i < w.length; i++) {
      const q = Math.round(w[i] * inv);
      const d = (q > 127 ? 127 : q < -127 ? -127 : q) * s - w[i];
      err += d * d;
    }
    if (err < bestErr) [best, bestErr] = [s, err];
  }
  return best;
}

/**
 * The converter's Cast → Mul(1/127.5) → Add(-1) on the input bytes, if the graph starts so.
 * The 2/255 and 128 that replace it hold for exactly this NORMALIZE; another one is left to
 * the general path.
 */
function inputScaling(nodes: NodeProto[], inits: Map<string, TensorProto>, convs: Set<NodeProto>): { bytes: string; output: string; nodes: NodeProto[] } | undefined {
  const cast = nodes.find((n) => n.opType === 'Cast');
  const consumer = (t: string) => nodes.filter((n) => n.input!.includes(t));
  if (!cast) return undefined;
  const [mul] = consumer(cast.output![0]);
  const [add] = mul ? consumer(mul.output![0]) : [];
  const scalar = (n: NodeProto | undefined) => {
    const t = n && inits.get(n.input![1]);
    return t ? floatData(t)[0] : NaN;
  };
  if (mul?.opType !== 'Mul' || add?.opType !== 'Add' || scalar(mul) !== Math.fround(NORMALIZE.scale) || scalar(add) !== NORMALIZE.offset) return undefined;
  if (consumer(add.output![0]).some((n) => !convs.has(n))) return undefined;
  return { bytes: cast.input![0], output: add.output![0], nodes: [cast, mul, add] };
}

function floatData(t: TensorProto): Float32Array {
  if (t.dataType !== T.FLOAT || !t.rawData) throw new Error(`${t.name}: expected a float32 initializer with raw data`);
  const raw = t.rawData;
  // Copy: protobuf's slice may not be 4-byte aligned.
  const out = new Float32Array(raw.length / 4);
  new Uint8Array(out.buffer).set(raw);
  return out;
}

const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

function floats(name: string, dims: number[], values: ArrayLike<number>): TensorProto {
  return { name, dims, dataType: T.FLOAT, rawData: bytesOf(Float32Array.from(values)) };
}

function int8s(name: string, dims: number[], values: number[], type: ActivationType): TensorProto {
  const data = type === 'u8' ? Uint8Array.from(values) : new Uint8Array(Int8Array.from(values).buffer);
  return { name, dims, dataType: type === 'u8' ? T.UINT8 : T.INT8, rawData: data };
}
