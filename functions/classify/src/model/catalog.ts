// The models this function can serve, by name, and what a client of the core may know about
// each: the catalogue the HTTP routes, the CloudEvents handler and the Open Inference
// Protocol routes all answer from. Constants only.
import { MODEL_NAMES, type ModelName } from '../../../../contracts/models.ts';
import { CHANNELS, CLASS_COUNT, INPUT_SIZE } from './mobilenet.ts';
import { MOBILENET_V1 } from './mobilenet-v1.ts';
import { MOBILENET_V2 } from './mobilenet-v2.ts';

export type { ModelName };
export type Precision = 'fp32' | 'int8';

export const CATALOG = Object.freeze({
  [MOBILENET_V1.name]: MOBILENET_V1,
  [MOBILENET_V2.name]: MOBILENET_V2,
}) satisfies Record<ModelName, unknown>;

export interface ModelInfo {
  name: ModelName;
  title: string;
  /** Square input in pixels; every model takes [N, 224, 224, 3] uint8 RGB (model/mobilenet.ts). */
  inputSize: number;
  channels: number;
  /** ImageNet classes, in the order of labels.ts. */
  classes: number;
  /** What runs: v1 in fp32 or our int8 quantisation (KLASSIFY_MODEL_PRECISION), v2 in int8. */
  precision: Precision;
  /** ImageNet validation top-1 (%) as its publishers report it. */
  publishedTop1: number;
}

/** The engines that can run each model (v2 is TFLite, which TF.js cannot read). */
export function enginesFor(name: ModelName): readonly string[] {
  return CATALOG[name].engines;
}

/** The precision `name` is served in, given KLASSIFY_MODEL_PRECISION (which only v1 has a choice of). */
export function precisionOf(name: ModelName, requested: Precision): Precision {
  const offered: readonly Precision[] = CATALOG[name].precisions;
  return offered.includes(requested) ? requested : offered[0];
}

export function modelInfo(name: ModelName, requestedPrecision: Precision): ModelInfo {
  const spec = CATALOG[name];
  return Object.freeze({
    name,
    title: spec.title,
    inputSize: INPUT_SIZE,
    channels: CHANNELS,
    classes: CLASS_COUNT,
    precision: precisionOf(name, requestedPrecision),
    publishedTop1: spec.publishedTop1,
  });
}

export { MODEL_NAMES };
