/**
 * The page's runtime settings, fetched from the UI server's /config.json so
 * that one build works locally and on any cluster. Unknown or invalid values
 * fall back to the defaults; the page never fails on a bad config.
 */

export interface PageConfig {
  /** Where images are POSTed; same-origin "/api/classify" behind the UI server's proxy. */
  classifyUrl: string;
  /** Readiness probe used to wake the function when the page opens; "" disables. */
  readinessUrl: string;
  topK: number;
  maxUploadBytes: number;
  uploadConcurrency: number;
  slowAfterMs: number;
  maxAttempts: number;
  features: {
    events: boolean;
    camera: boolean;
    prewarm: boolean;
  };
  eventsUrl: string;
  /** Whether an event source (the Broker, or the local relay) delivers to the feed. */
  eventSource: boolean;
}

export const DEFAULT_CONFIG: PageConfig = Object.freeze({
  classifyUrl: '/api/classify',
  readinessUrl: '/api/health/readiness',
  topK: 5,
  maxUploadBytes: 10 * 1024 * 1024,
  uploadConcurrency: 4,
  slowAfterMs: 1500,
  maxAttempts: 4,
  features: Object.freeze({ events: true, camera: true, prewarm: true }),
  eventsUrl: '/events/stream',
  eventSource: false,
}) as PageConfig;

export function normalizeConfig(input: unknown): PageConfig {
  const raw = (input && typeof input === 'object' ? input : {}) as Record<string, unknown>;
  const features = (raw.features && typeof raw.features === 'object' ? raw.features : {}) as Record<string, unknown>;
  const d = DEFAULT_CONFIG;
  return {
    classifyUrl: str(raw.classifyUrl, d.classifyUrl),
    readinessUrl: typeof raw.readinessUrl === 'string' ? raw.readinessUrl : d.readinessUrl,
    topK: int(raw.topK, d.topK, 1, 20),
    maxUploadBytes: int(raw.maxUploadBytes, d.maxUploadBytes, 1, 1024 ** 3),
    uploadConcurrency: int(raw.uploadConcurrency, d.uploadConcurrency, 1, 16),
    slowAfterMs: int(raw.slowAfterMs, d.slowAfterMs, 0, 60_000),
    maxAttempts: int(raw.maxAttempts, d.maxAttempts, 1, 10),
    features: {
      events: bool(features.events, d.features.events),
      camera: bool(features.camera, d.features.camera),
      prewarm: bool(features.prewarm, d.features.prewarm),
    },
    eventsUrl: str(raw.eventsUrl, d.eventsUrl),
    eventSource: bool(raw.eventSource, d.eventSource),
  };
}

/** Appends ?topk=N to the classify URL, keeping any query it already has. */
export function classifyEndpoint(config: PageConfig, base = 'http://localhost'): string {
  const url = new URL(config.classifyUrl, base);
  url.searchParams.set('topk', String(config.topK));
  return url.origin === new URL(base).origin ? `${url.pathname}${url.search}` : url.href;
}

function str(value: unknown, fallback: string): string {
  return typeof value === 'string' && value.length > 0 ? value : fallback;
}

function int(value: unknown, fallback: number, min: number, max: number): number {
  return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max ? value : fallback;
}

function bool(value: unknown, fallback: boolean): boolean {
  return typeof value === 'boolean' ? value : fallback;
}
