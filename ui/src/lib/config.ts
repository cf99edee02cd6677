/**
 * The page's runtime settings (contracts/page.ts), fetched from the UI server's
 * /config.json so that one build works locally and on any cluster. Unknown or
 * invalid values fall back to the defaults; the page never fails on a bad config.
 */

import { isModelName, MODEL_PARAMETER, type ModelSummary } from '../../../contracts/models.ts';
import { PAGE_DEFAULTS, PAGE_LIMITS, type PageConfig } from '../../../contracts/page.ts';

export type { PageConfig };

/** The defaults the UI server serves too. */
export const DEFAULT_CONFIG: PageConfig = PAGE_DEFAULTS;

export function normalizeConfig(input: unknown): PageConfig {
  const raw = (input && typeof input === 'object' ? input : {}) as Record<string, unknown>;
  const features = (raw.features && typeof raw.features === 'object' ? raw.features : {}) as Record<string, unknown>;
  const d = DEFAULT_CONFIG;
  return {
    classifyUrl: str(raw.classifyUrl, d.classifyUrl),
    readinessUrl: typeof raw.readinessUrl === 'string' ? raw.readinessUrl : d.readinessUrl,
    topK: int(raw.topK, d.topK, PAGE_LIMITS.topK),
    maxUploadBytes: int(raw.maxUploadBytes, d.maxUploadBytes, PAGE_LIMITS.maxUploadBytes),
    maxPixels: int(raw.maxPixels, d.maxPixels, PAGE_LIMITS.maxPixels),
    maxDimension: int(raw.maxDimension, d.maxDimension, PAGE_LIMITS.maxDimension),
    uploadConcurrency: int(raw.uploadConcurrency, d.uploadConcurrency, PAGE_LIMITS.uploadConcurrency),
    slowAfterMs: int(raw.slowAfterMs, d.slowAfterMs, PAGE_LIMITS.slowAfterMs),
    maxAttempts: int(raw.maxAttempts, d.maxAttempts, PAGE_LIMITS.maxAttempts),
    features: {
      events: bool(features.events, d.features.events),
      camera: bool(features.camera, d.features.camera),
      prewarm: bool(features.prewarm, d.features.prewarm),
    },
    eventsUrl: str(raw.eventsUrl, d.eventsUrl),
    eventSource: bool(raw.eventSource, d.eventSource),
    ...models(raw.models, raw.defaultModel),
  };
}

/** The served models as listed (known names, short titles); the defaults if none is valid. */
function models(list: unknown, fallback: unknown): Pick<PageConfig, 'models' | 'defaultModel'> {
  const valid = (Array.isArray(list) ? list : [])
    .filter((m): m is ModelSummary => isModelName(m?.name) && typeof m?.title === 'string' && m.title.length > 0 && m.title.length <= 100)
    .map((m) => ({ name: m.name, title: m.title }));
  if (valid.length === 0) return { models: DEFAULT_CONFIG.models, defaultModel: DEFAULT_CONFIG.defaultModel };
  const chosen = valid.find((m) => m.name === fallback) ?? valid[0];
  return { models: valid, defaultModel: chosen.name };
}

/** The model to ask for: the one the person chose last time, if still served, else the default. */
export function chooseModel(config: PageConfig, stored: string | null): string {
  return stored && config.models.some((m) => m.name === stored) ? stored : config.defaultModel;
}

/** A model's title, or its name when the page does not know it (an answer from another server). */
export function modelTitle(config: PageConfig, name: string): string {
  return config.models.find((m) => m.name === name)?.title ?? name;
}

/**
 * Appends ?topk=N (and ?model=, when one is chosen) to the classify URL, keeping any
 * query it already has.
 */
export function classifyEndpoint(config: PageConfig, base = 'http://localhost', model?: string): string {
  const url = new URL(config.classifyUrl, base);
  url.searchParams.set('topk', String(config.topK));
  if (model) url.searchParams.set(MODEL_PARAMETER, model);
  return url.origin === new URL(base).origin ? `${url.pathname}${url.search}` : url.href;
}

function str(value: unknown, fallback: string): string {
  return typeof value === 'string' && value.length > 0 ? value : fallback;
}

function int(value: unknown, fallback: number, { min, max }: { min: number; max: number }): number {
  return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max ? value : fallback;
}

function bool(value: unknown, fallback: boolean): boolean {
  return typeof value === 'boolean' ? value : fallback;
}
