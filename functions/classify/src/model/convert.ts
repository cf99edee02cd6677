// Converts the Keras MobileNet TF.js layers model into an ONNX graph for onnxruntime.
//
// Layout (model/mobilenet.ts): the graph takes the decoded RGB bytes, NHWC uint8
// [N,224,224,3], transposes them once to NCHW (ONNX's native conv layout; moving bytes is
// cheaper than floats), scales them to the model's range with NORMALIZE,
// out = x * (1/127.5) - 1 (Cast, Mul, Add: exact at every pixel, unlike folding the offset
// into the first conv's bias, which is wrong where "same" padding adds zeros) and returns
// [N,1000] probabilities.
//
// Rewrites, each exact up to float rounding:
// - BatchNorm folded into the preceding conv:  s = gamma / sqrt(var + eps),
//   W' = W * s (per output channel),  b' = (b - mean) * s + beta.
// - ReLU6 is Clip(0, 6).
// - TF "same" padding: total = max((ceil(in/s) - 1) * s + k - in, 0), split as
//   floor(total/2) before and the rest after. For stride 2 on an even input that is
//   0 before and 1 after; symmetric padding would shift every feature map by a pixel.
import onnxProto from 'onnx-proto';
import { CLASS_COUNT, INPUT_NAME, INPUT_SIZE, OUTPUT_NAME } from './mobilenet.ts';
import { NORMALIZE } from './mobilenet-v1.ts';
import { GraphBuilder, samePadding } from './onnx-graph.ts';
import type { LayersModel, LayerSpec, Weight } from './tfjs-layers.ts';

const { onnx } = onnxProto;

interface Shape {
  c: number;
  h: number;
  w: number;
  /** 4 while the tensor is [N,C,H,W]; 2 once flattened to [N,C]. */
  rank: 2 | 4;
}

interface PendingConv {
  layer: LayerSpec;
  weight: Float32Array; // ONNX layout [cout, cin/group, kh, kw]
  bias: Float32Array;
  dims: number[];
  group: number;
}

export function convertToOnnx(model: LayersModel, inputSize = INPUT_SIZE): Uint8Array {
  const b = new KerasGraph(model.weights);
  const [inputLayer, ...rest] = model.layers;
  if (inputLayer?.className !== 'InputLayer') throw new Error('model must start with an InputLayer');
  const channels = (inputLayer.config.batch_input_shape as number[])[3];

  let tensor = b.node('Transpose', [INPUT_NAME], { perm: [0, 3, 1, 2] });
  tensor = b.node('Cast', [tensor], { to: onnx.TensorProto.DataType.FLOAT });
  tensor = b.node('Mul', [tensor, b.constant('input_scale', [], Float32Array.of(NORMALIZE.scale))]);
  tensor = b.node('Add', [tensor, b.constant('input_offset', [], Float32Array.of(NORMALIZE.offset))]);
  let shape: Shape = { c: channels, h: inputSize, w: inputSize, rank: 4 };

  for (let i = 0; i < rest.length; i++) {
    const layer = rest[i];
    const cfg = layer.config;
    switch (layer.className) {
      case 'Conv2D':
      case 'DepthwiseConv2D': {
        const conv = b.readConv(layer, shape.c);
        const next = rest[i + 1];
        if (next?.className === 'BatchNormalization' && next.inbound[0] === layer.name) {
          b.foldBatchNorm(conv, next);
          i++;
        }
        ({ tensor, shape } = b.emitConv(conv, tensor, shape));
        tensor = b.activation(String(cfg.activation ?? 'linear'), tensor, layer.name);
        break;
      }
      case 'BatchNormalization':
        throw new Error(`${layer.name}: BatchNormalization must follow a convolution`);
      case 'Activation':
        tensor = b.activation(String(cfg.activation), tensor, layer.name);
        break;
      case 'ReLU': {
        const max = cfg.max_value == null ? undefined : Number(cfg.max_value);
        tensor = max === undefined ? b.node('Relu', [tensor]) : b.clip(tensor, 0, max);
        break;
      }
      case 'GlobalAveragePooling2D':
        tensor = b.node('GlobalAveragePool', [tensor]);
        shape = { ...shape, h: 1, w: 1 };
        break;
      case 'Reshape': {
        const target = cfg.target_shape as number[];
        if (target.length === 3 && target[0] === 1 && target[1] === 1 && shape.h === 1 && shape.w === 1) {
          break; // NHWC [1,1,C] is the same memory as NCHW [C,1,1]: nothing to do.
        }
        if (target.length === 1 && shape.h === 1 && shape.w === 1) {
          tensor = b.node('Flatten', [tensor], { axis: 1 });
          shape = { ...shape, rank: 2 };
          break;
        }
        throw new Error(`${layer.name}: unsupported reshape to [${target}]`);
      }
      case 'Dropout':
        break; // identity at inference
      default:
        throw new Error(`${layer.name}: unsupported layer type ${layer.className}`);
    }
  }
  if (shape.rank === 4) {
    if (shape.h !== 1 || shape.w !== 1) throw new Error('model output is not a vector per image');
    tensor = b.node('Flatten', [tensor], { axis: 1 });
  }
  if (shape.c !== CLASS_COUNT) throw new Error(`model has ${shape.c} outputs, expected ${CLASS_COUNT} (model/mobilenet.ts)`);
  b.rename(tensor, OUTPUT_NAME);
  return b.encode('mobilenet', [{ name: INPUT_NAME, dims: ['N', inputSize, inputSize, channels], type: 'uint8' }], [{ name: OUTPUT_NAME, dims: ['N', shape.c], type: 'float32' }]);
}

/** The ONNX graph plus the Keras weights it is built from. */
class KerasGraph extends GraphBuilder {
  constructor(private weights: Map<string, Weight>) {
    super();
  }

  clip(tensor: string, min: number, max: number): string {
    const lo = this.constant(`clip_min_${min}`, [], Float32Array.of(min));
    const hi = this.constant(`clip_max_${max}`, [], Float32Array.of(max));
    return this.node('Clip', [tensor, lo, hi]);
  }

  activation(kind: string, tensor: string, layer: string): string {
    switch (kind) {
      case 'linear':
        return tensor;
      case 'relu':
        return this.node('Relu', [tensor]);
      case 'relu6':
        return this.clip(tensor, 0, 6);
      case 'softmax':
        // Keras applies softmax on the last (channel) axis; in NCHW that is axis 1.
        return this.node('Softmax', [tensor], { axis: 1 });
      default:
        throw new Error(`${layer}: unsupported activation ${kind}`);
    }
  }

  private weight(name: string): Weight {
    const w = this.weights.get(name);
    if (!w) throw new Error(`missing weight ${name}`);
    return w;
  }

  readConv(layer: LayerSpec, cin: number): PendingConv {
    const cfg = layer.config;
    if (cfg.data_format && cfg.data_format !== 'channels_last') throw new Error(`${layer.name}: expected channels_last`);
    const dilation = (cfg.dilation_rate as number[] | undefined) ?? [1, 1];
    if (dilation.some((d) => d !== 1)) throw new Error(`${layer.name}: dilated convolutions are not supported`);
    const depthwise = layer.className === 'DepthwiseConv2D';
    const k = this.weight(`${layer.name}/${depthwise ? 'depthwise_kernel' : 'kernel'}`);
    const [kh, kw, kin, kout] = k.shape; // Keras: [kh, kw, in, out] or [kh, kw, in, multiplier]
    if (kin !== cin) throw new Error(`${layer.name}: kernel expects ${kin} channels, got ${cin}`);
    const cout = depthwise ? kin * kout : kout;
    const perOut = depthwise ? 1 : kin;
    const weight = new Float32Array(cout * perOut * kh * kw);
    for (let y = 0; y < kh; y++)
      for (let x = 0; x < kw; x++)
        for (let i = 0; i < kin; i++)
          for (let o = 0; o < kout; ++o) {
            const src = ((y * kw + x) * kin + i) * kout + o;
            // Depthwise output channel i*multiplier+o reads only input channel i.
            const dst = depthwise ? ((i * kout + o) * kh + y) * kw + x : ((o * kin + i) * kh + y) * kw + x;
            weight[dst] = k.values[src];
          }
    const bias = cfg.use_bias ? Float32Array.from(this.weight(`${layer.name}/bias`).values) : new Float32Array(cout);
    return { layer, weight, bias, dims: [cout, perOut, kh, kw], group: depthwise ? kin : 1 };
  }

  foldBatchNorm(conv: PendingConv, bn: LayerSpec): void {
    const eps = Number(bn.config.epsilon ?? 1e-3);
    const cout = conv.dims[0];
    const ones = new Float32Array(cout).fill(1);
    const gamma = bn.config.scale === false ? ones : this.weight(`${bn.name}/gamma`).values;
    const beta = bn.config.center === false ? new Float32Array(cout) : this.weight(`${bn.name}/beta`).values;
    const mean = this.weight(`${bn.name}/moving_mean`).values;
    const variance = this.weight(`${bn.name}/moving_variance`).values;
    const perChannel = conv.weight.length / cout;
    for (let o = 0; o < cout; o++) {
      // Fold in float64, then round once to float32.
      const s = gamma[o] / Math.sqrt(variance[o] + eps);
      for (let j = 0; j < perChannel; j++) conv.weight[o * perChannel + j] *= s;
      conv.bias[o] = (conv.bias[o] - mean[o]) * s + beta[o];
    }
  }

  emitConv(conv: PendingConv, input: string, shape: Shape): { tensor: string; shape: Shape } {
    const cfg = conv.layer.config;
    const [sh, sw] = cfg.strides as number[];
    const [, , kh, kw] = conv.dims;
    const same = cfg.padding === 'same';
    const [top, bottom, outH] = samePadding(shape.h, kh, sh, same);
    const [left, right, outW] = samePadding(shape.w, kw, sw, same);
    const w = this.constant(`${conv.layer.name}/W`, conv.dims, conv.weight);
    const bias = this.constant(`${conv.layer.name}/B`, [conv.dims[0]], conv.bias);
    const tensor = this.node('Conv', [input, w, bias], {
      group: conv.group,
      kernel_shape: [kh, kw],
      strides: [sh, sw],
      pads: [top, left, bottom, right],
    });
    return { tensor, shape: { c: conv.dims[0], h: outH, w: outW, rank: 4 } };
  }
}
