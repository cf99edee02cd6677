// What the Open Inference Protocol routes know of a served model, and the one place that
// adapts the core to it. A model takes one of two inputs: `image`, encoded images (BYTES
// [N]) decoded as /classify decodes them, or `pixels`, the model's own input (UINT8
// [N, 224, 224, 3], RGB, row-major) used as given. It gives `probabilities`, FP32 [N, 1000].
import type { Classifier } from '../../classifier.ts';
import type { Config, EngineName, ResizePolicy } from '../../config.ts';
import { LABELS } from '../../labels.ts';
import { CHANNELS, INPUT_SIZE, OUTPUT_NAME } from '../../model/mobilenet.ts';

export const IMAGE_INPUT = 'image';
export const PIXELS_INPUT = 'pixels';
export const PROBABILITIES_OUTPUT = OUTPUT_NAME;
/** Every model is served at one version; a client may name it or leave it out. */
export const MODEL_VERSION = '1';

export interface V2Model {
  name: string;
  versions: readonly string[];
  /** The spec's "<project>_<format>" name of what runs the model. */
  platform: string;
  /** Height and width of the pixels input. */
  inputSize: number;
  channels: number;
  /** Class names in output order; their count is the output's second dimension. */
  labels: readonly string[];
  /** Images one request may carry. */
  maxBatchSize: number;
}

/** What an inference needs from the core, for a model of the catalogue. */
export interface V2Runtime {
  /** Encoded image → the model's input pixels, with /classify's limits and decode budget. */
  decode(model: V2Model, bytes: Uint8Array, signal: AbortSignal): Promise<Uint8Array>;
  /** The model's input pixels for one image → its class probabilities. */
  infer(model: V2Model, pixels: Uint8Array, signal: AbortSignal): Promise<Float32Array>;
}

const PLATFORMS: Record<EngineName, string> = { onnx: 'onnxruntime_onnx', tfjs: 'tensorflowjs_layers' };

/**
 * The models served (KLASSIFY_MODELS; every one takes 224×224×3 and gives the same 1000
 * classes), known from the configuration before any is loaded.
 */
export function servedModels(config: Pick<Config, 'engine' | 'v2MaxBatchSize' | 'models'>): V2Model[] {
  return config.models.map((name) => ({
    name,
    versions: [MODEL_VERSION],
    platform: PLATFORMS[config.engine],
    inputSize: INPUT_SIZE,
    channels: CHANNELS,
    labels: LABELS,
    maxBatchSize: config.v2MaxBatchSize,
  }));
}

/** The classifier as a runtime: each model of servedModels() runs as itself. */
export function classifierRuntime(classifier: Classifier, resize: ResizePolicy): V2Runtime {
  return {
    decode: async (model, bytes, signal) => (await classifier.decodeImage(bytes, { resize, signal, model: model.name })).rgb,
    infer: async (model, pixels, signal) => (await classifier.infer(pixels, { model: model.name, signal })).probabilities,
  };
}

export const pixelsPerImage = (model: V2Model) => model.inputSize * model.inputSize * model.channels;

/** $metadata_model_response: the batch dimension is -1, as the client chooses it. */
export function modelMetadata(model: V2Model) {
  return {
    name: model.name,
    versions: [...model.versions],
    platform: model.platform,
    inputs: [
      { name: IMAGE_INPUT, datatype: 'BYTES', shape: [-1] },
      { name: PIXELS_INPUT, datatype: 'UINT8', shape: [-1, model.inputSize, model.inputSize, model.channels] },
    ],
    outputs: [{ name: PROBABILITIES_OUTPUT, datatype: 'FP32', shape: [-1, model.labels.length] }],
  };
}

/**
 * The model configuration extension's answer, in the shape of Triton's ModelConfig: the
 * fields perf_analyzer and the Triton clients read (max_batch_size, inputs with `optional`,
 * since a request carries one of the two). Dims leave out the batch dimension.
 */
export function modelConfiguration(model: V2Model, config: Pick<Config, 'batchMaxSize' | 'batchMaxDelayMs'>) {
  return {
    name: model.name,
    platform: model.platform,
    max_batch_size: model.maxBatchSize,
    input: [
      { name: IMAGE_INPUT, data_type: 'TYPE_STRING', dims: [], optional: true },
      { name: PIXELS_INPUT, data_type: 'TYPE_UINT8', format: 'FORMAT_NHWC', dims: [model.inputSize, model.inputSize, model.channels], optional: true },
    ],
    output: [{ name: PROBABILITIES_OUTPUT, data_type: 'TYPE_FP32', dims: [model.labels.length] }],
    // Requests from several clients are merged into one inference call (pool.ts).
    ...(config.batchMaxSize > 1 ? { dynamic_batching: { max_queue_delay_microseconds: Math.round(config.batchMaxDelayMs * 1000) } } : {}),
    version_policy: { specific: { versions: model.versions.map(Number) } },
  };
}
