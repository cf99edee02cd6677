// Query parameters of POST /classify, validated into typed options.
import { MODEL_PARAMETER } from '../../../../contracts/models.ts';
import type { Config } from '../config.ts';
import { MAX_TOPK, RESIZE_POLICIES, type ResizePolicy } from '../config.ts';
import type { ClassifyOptions } from '../classifier.ts';
import { InvalidParameter, UnknownModel } from '../errors.ts';

export function classifyOptions(query: URLSearchParams, config: Pick<Config, 'topkDefault' | 'resize' | 'models'>): ClassifyOptions {
  const rawTopk = query.get('topk');
  let topk = config.topkDefault;
  if (rawTopk !== null) {
    topk = Number(rawTopk);
    if (!/^\d+$/.test(rawTopk) || topk < 1 || topk > MAX_TOPK) {
      throw new InvalidParameter('topk', `topk must be an integer from 1 to ${MAX_TOPK}; got ${JSON.stringify(rawTopk.slice(0, 40))}.`);
    }
  }
  const rawResize = query.get('resize');
  if (rawResize !== null && !RESIZE_POLICIES.includes(rawResize as ResizePolicy)) {
    throw new InvalidParameter('resize', `resize must be one of ${RESIZE_POLICIES.join(', ')}; got ${JSON.stringify(rawResize.slice(0, 40))}.`);
  }
  const model = query.get(MODEL_PARAMETER) ?? undefined;
  if (model !== undefined && !(config.models as readonly string[]).includes(model)) throw new UnknownModel(model, config.models);
  return { topk, resize: (rawResize as ResizePolicy | null) ?? config.resize, model };
}

/** Query parameters, with form fields filling in what the query string does not set. */
export function mergeParams(query: URLSearchParams, form: URLSearchParams): URLSearchParams {
  const merged = new URLSearchParams(query);
  for (const [name, value] of form) if (!merged.has(name)) merged.set(name, value);
  return merged;
}
