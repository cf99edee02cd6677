// Parameters of POST /classify, from the query string and from form fields, validated into
// typed options. Each source is validated once; the query string wins over a form field.
import { MODEL_PARAMETER } from '../../../../contracts/models.ts';
import type { Config } from '../config.ts';
import { MAX_TOPK, RESIZE_POLICIES, type ResizePolicy } from '../config.ts';
import type { ClassifyOptions } from '../classifier.ts';
import { InvalidParameter, unknownModelParameter } from '../errors.ts';

export type ClassifyParams = Pick<ClassifyOptions, 'topk' | 'resize' | 'model'>;

/**
 * The parameters that `params` sets, validated; those already in `given` are not read again.
 * A model must be one that `models` lists.
 */
export function readParams(params: URLSearchParams, models: readonly string[], given: Partial<ClassifyParams> = {}): Partial<ClassifyParams> {
  const found: Partial<ClassifyParams> = {};
  const topk = params.get('topk');
  if (topk !== null && given.topk === undefined) {
    found.topk = Number(topk);
    if (!/^\d+$/.test(topk) || found.topk < 1 || found.topk > MAX_TOPK) {
      throw new InvalidParameter('topk', `topk must be an integer from 1 to ${MAX_TOPK}; got ${JSON.stringify(topk.slice(0, 40))}.`);
    }
  }
  const resize = params.get('resize');
  if (resize !== null && given.resize === undefined) {
    if (!RESIZE_POLICIES.includes(resize as ResizePolicy)) {
      throw new InvalidParameter('resize', `resize must be one of ${RESIZE_POLICIES.join(', ')}; got ${JSON.stringify(resize.slice(0, 40))}.`);
    }
    found.resize = resize as ResizePolicy;
  }
  const model = params.get(MODEL_PARAMETER);
  if (model !== null && given.model === undefined) {
    if (!models.includes(model)) throw unknownModelParameter(model, models);
    found.model = model;
  }
  return found;
}

/** The options for one request: the query string's, then the form's, then the configured defaults. */
export function classifyOptions(
  config: Pick<Config, 'topkDefault' | 'resize' | 'model'>,
  query: Partial<ClassifyParams>,
  form: Partial<ClassifyParams> = {},
): Required<ClassifyParams> {
  return {
    topk: query.topk ?? form.topk ?? config.topkDefault,
    resize: query.resize ?? form.resize ?? config.resize,
    model: query.model ?? form.model ?? config.model,
  };
}
