/**
 * The page's runtime settings: what the UI server serves as /config.json and the page
 * reads at start-up, so that one build works locally and on any cluster. The UI server
 * takes each default from here and refuses values outside PAGE_LIMITS at start-up; the page
 * falls back to the default for anything missing or out of range.
 */
import { DEFAULT_MODEL, MODEL_NAMES, MODEL_TITLES, type ModelSummary } from './models.ts';

/** Where the page fetches its settings. */
export const CONFIG_PATH = '/config.json';
/** The UI server's SSE stream of relayed events (contracts/events.ts). */
export const EVENTS_STREAM_PATH = '/events/stream';
/** The UI server proxies this prefix to the classify function. */
export const API_PREFIX = '/api';

export interface PageConfig {
  /** Where images are POSTed; same-origin "/api/classify" behind the UI server's proxy. */
  classifyUrl: string;
  /** Readiness probe used to wake the function when the page opens; "" disables. */
  readinessUrl: string;
  topK: number;
  /** The smaller of the UI server's and the function's body limits. */
  maxUploadBytes: number;
  /**
   * The function's decode limits (KLASSIFY_MAX_PIXELS, KLASSIFY_MAX_DIMENSION): the page
   * sends a photo as it is unless the function would refuse it, and only then shrinks it.
   */
  maxPixels: number;
  maxDimension: number;
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
  /** The models the classify function serves, for the page to offer (contracts/models.ts). */
  models: ModelSummary[];
  /** The one that answers when the page names none. */
  defaultModel: string;
}

export type PageFeature = keyof PageConfig['features'];

export const PAGE_DEFAULTS: PageConfig = Object.freeze({
  classifyUrl: `${API_PREFIX}/classify`,
  readinessUrl: `${API_PREFIX}/health/readiness`,
  topK: 5,
  maxUploadBytes: 10 * 1024 * 1024,
  maxPixels: 50_000_000,
  maxDimension: 32_768,
  uploadConcurrency: 4,
  slowAfterMs: 1500,
  maxAttempts: 4,
  features: Object.freeze({ events: true, camera: true, prewarm: true }),
  eventsUrl: EVENTS_STREAM_PATH,
  eventSource: false,
  models: Object.freeze(MODEL_NAMES.map((name) => Object.freeze({ name, title: MODEL_TITLES[name] }))),
  defaultModel: DEFAULT_MODEL,
}) as PageConfig;

/** Inclusive ranges of the numeric settings. */
export const PAGE_LIMITS = Object.freeze({
  topK: { min: 1, max: 20 },
  maxUploadBytes: { min: 1024, max: 1024 ** 3 },
  maxPixels: { min: 1, max: 1_000_000_000 },
  maxDimension: { min: 1, max: 1_000_000 },
  uploadConcurrency: { min: 1, max: 16 },
  slowAfterMs: { min: 0, max: 60_000 },
  maxAttempts: { min: 1, max: 10 },
} as const satisfies Partial<Record<keyof PageConfig, { min: number; max: number }>>);
