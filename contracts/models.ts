/**
 * The models the classify function can serve: the names its answers carry (`model`), that a
 * request may ask for (`?model=`, the multipart field `model`, the CloudEvent extension
 * attribute `klassifymodel`), and that the UI offers. Every one takes a 224×224 RGB image
 * and returns the 1000 ImageNet classes in the same order, so answers compare class by class.
 * What each model is (source, checksums, published accuracy) lives with the function
 * (functions/classify/src/model/mobilenet-v1.ts, mobilenet-v2.ts).
 */

export const MODEL_TITLES = Object.freeze({
  'mobilenet_v1_0.75_224': 'MobileNet v1 0.75/224',
  'mobilenet_v2_1.0_224_quant': 'MobileNet v2 1.0/224, 8-bit',
} as const);

export type ModelName = keyof typeof MODEL_TITLES;

export const MODEL_NAMES = Object.freeze(Object.keys(MODEL_TITLES) as ModelName[]);

/** The model that answers when a request names none (KLASSIFY_MODEL overrides it). */
export const DEFAULT_MODEL: ModelName = 'mobilenet_v1_0.75_224';

/** The request parameter and form field that choose a model. */
export const MODEL_PARAMETER = 'model';
/** The CloudEvents extension attribute that chooses a model (lower-case letters only, as the spec asks). */
export const MODEL_EXTENSION = 'klassifymodel';

export interface ModelSummary {
  name: ModelName;
  title: string;
}

export function isModelName(value: unknown): value is ModelName {
  return typeof value === 'string' && Object.hasOwn(MODEL_TITLES, value);
}

/**
 * A KLASSIFY_MODELS value: comma-separated distinct model names, spaces around them allowed;
 * undefined when it is not one. Both servers read the variable, so that one environment sets
 * what the function serves and what the page offers.
 */
export function parseModelList(text: string): ModelName[] | undefined {
  const names = text.split(',').map((m) => m.trim());
  return names.every(isModelName) && new Set(names).size === names.length ? names : undefined;
}
