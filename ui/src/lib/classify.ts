/**
 * One image's trip to the classify API, with the waits a serverless backend
 * needs: a "waking up" notice when the answer is slow (scale from zero), and
 * bounded retries when the function says 503/429 with Retry-After.
 *
 * The HTTP call itself is a `Transport` (XMLHttpRequest in the browser, for
 * upload progress; a fake in the tests), so this module is pure logic.
 */

import type { Classification, Prediction } from '../../../contracts/classification.ts';
import {
  badResponseMessage,
  networkErrorMessage,
  parseProblem,
  problemToMessage,
  type ErrorMessage,
} from './problem.ts';

export type { Prediction };

/**
 * What a card shows of a Classification. The answer may come from an older or newer
 * function, so only the predictions are required; anything else may be missing.
 */
export type Timings = Partial<Classification['timingMs']>;
export type ServedBy = Partial<Pick<Classification['servedBy'], 'pod' | 'revision' | 'engine' | 'provider'>>;
export interface ClassifyResult extends Pick<Classification, 'model' | 'predictions'> {
  timingMs: Timings;
  servedBy: ServedBy;
}

export interface TransportRequest {
  url: string;
  file: Blob;
  /** Fraction of the body sent, 0..1, when the transport can tell. */
  onUploadProgress(fraction: number): void;
  /** The whole body is sent; the server is working on it. */
  onUploaded(): void;
}

export interface TransportResponse {
  status: number;
  header(name: string): string | null;
  body: string;
}

/** Resolves with any HTTP answer; rejects only when none came (network failure, abort). */
export type Transport = (request: TransportRequest) => Promise<TransportResponse>;

export type Phase = 'uploading' | 'classifying' | 'waking' | 'retrying';

export interface Progress {
  phase: Phase;
  /** 0..1 while uploading. */
  uploaded?: number;
  /** 1-based attempt number. */
  attempt: number;
  /** While retrying: how long until the next attempt. */
  retryInMs?: number;
  /** While retrying: why. */
  reason?: ErrorMessage;
}

export type Outcome =
  | { ok: true; result: ClassifyResult; roundTripMs: number; attempts: number }
  | { ok: false; error: ErrorMessage; attempts: number };

export interface ClassifyOptions {
  url: string;
  transport: Transport;
  onProgress?: (progress: Progress) => void;
  /** Show "waking up" when no answer arrives this long after the upload finished. */
  slowAfterMs?: number;
  /** Total attempts, the first included. */
  maxAttempts?: number;
  /** Retry-After is clamped to [minRetryDelayMs, maxRetryDelayMs]. */
  minRetryDelayMs?: number;
  maxRetryDelayMs?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  isOnline?: () => boolean;
}

export const DEFAULTS = Object.freeze({
  slowAfterMs: 1500,
  maxAttempts: 4,
  minRetryDelayMs: 250,
  maxRetryDelayMs: 10_000,
});

/** Statuses worth another try: the function is cold, busy or briefly unreachable. */
const RETRY_STATUSES = new Set([429, 502, 503, 504]);

export async function classifyImage(file: Blob, options: ClassifyOptions): Promise<Outcome> {
  const {
    url,
    transport,
    onProgress = () => {},
    slowAfterMs = DEFAULTS.slowAfterMs,
    maxAttempts = DEFAULTS.maxAttempts,
    minRetryDelayMs = DEFAULTS.minRetryDelayMs,
    maxRetryDelayMs = DEFAULTS.maxRetryDelayMs,
    now = () => performance.now(),
    sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)),
    isOnline = () => true,
  } = options;

  for (let attempt = 1; ; attempt += 1) {
    onProgress({ phase: 'uploading', uploaded: 0, attempt });
    const started = now();
    let slowTimer: ReturnType<typeof setTimeout> | undefined;
    let response: TransportResponse;
    try {
      response = await transport({
        url,
        file,
        onUploadProgress: (fraction) => onProgress({ phase: 'uploading', uploaded: fraction, attempt }),
        onUploaded: () => {
          onProgress({ phase: 'classifying', attempt });
          clearTimeout(slowTimer);
          slowTimer = setTimeout(() => onProgress({ phase: 'waking', attempt }), slowAfterMs);
        },
      });
    } catch {
      clearTimeout(slowTimer);
      const error = networkErrorMessage(isOnline());
      if (attempt >= maxAttempts || !isOnline()) return { ok: false, error, attempts: attempt };
      const delay = backoff(attempt, minRetryDelayMs, maxRetryDelayMs);
      onProgress({ phase: 'retrying', attempt, retryInMs: delay, reason: error });
      await sleep(delay);
      continue;
    }
    clearTimeout(slowTimer);
    const roundTripMs = now() - started;

    if (response.status >= 200 && response.status < 300) {
      const result = parseResult(response.body);
      if (result) return { ok: true, result, roundTripMs, attempts: attempt };
      return { ok: false, error: badResponseMessage(), attempts: attempt };
    }

    const error = problemToMessage(
      response.status,
      parseProblem(response.header('content-type'), response.body),
    );
    if (!RETRY_STATUSES.has(response.status) || attempt >= maxAttempts) {
      return { ok: false, error, attempts: attempt };
    }
    const retryAfter = parseRetryAfter(response.header('retry-after'), Date.now());
    const delay =
      retryAfter == null
        ? backoff(attempt, minRetryDelayMs, maxRetryDelayMs)
        : clamp(retryAfter, minRetryDelayMs, maxRetryDelayMs);
    onProgress({ phase: 'retrying', attempt, retryInMs: delay, reason: error });
    await sleep(delay);
  }
}

/**
 * Retry-After is either delay-seconds ("3") or an HTTP-date. Returns the
 * wait in milliseconds, or null when the header is absent or malformed.
 */
export function parseRetryAfter(value: string | null | undefined, nowMs: number): number | null {
  if (value == null) return null;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  if (!/[a-z]/i.test(text)) return null;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return null;
  return Math.max(0, date - nowMs);
}

/** 1 s, 2 s, 4 s, … between attempts without a Retry-After. */
export function backoff(attempt: number, min: number, max: number): number {
  return clamp(1000 * 2 ** (attempt - 1), min, max);
}

/** Accepts a classification only if it has the fields the card renders. */
export function parseResult(body: string): ClassifyResult | null {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return null;
  }
  if (value === null || typeof value !== 'object') return null;
  const record = value as Record<string, unknown>;
  if (!Array.isArray(record.predictions)) return null;
  const predictions: Prediction[] = [];
  for (const item of record.predictions) {
    if (item === null || typeof item !== 'object') return null;
    const p = item as Record<string, unknown>;
    if (typeof p.label !== 'string' || typeof p.probability !== 'number') return null;
    predictions.push({
      label: p.label,
      classIndex: typeof p.classIndex === 'number' ? p.classIndex : -1,
      probability: p.probability,
    });
  }
  const timing = (record.timingMs ?? {}) as Record<string, unknown>;
  const served = (record.servedBy ?? {}) as Record<string, unknown>;
  return {
    model: typeof record.model === 'string' ? record.model : 'unknown model',
    predictions,
    timingMs: pickNumbers(timing, ['decode', 'queue', 'inference', 'total']),
    servedBy: {
      pod: typeof served.pod === 'string' ? served.pod : undefined,
      revision: typeof served.revision === 'string' ? served.revision : null,
      engine: typeof served.engine === 'string' ? served.engine : undefined,
      provider: typeof served.provider === 'string' ? served.provider : undefined,
    },
  };
}

function pickNumbers(source: Record<string, unknown>, keys: Array<keyof Timings>): Timings {
  const out: Timings = {};
  for (const key of keys) {
    const value = source[key];
    if (typeof value === 'number' && Number.isFinite(value)) out[key] = value;
  }
  return out;
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}
