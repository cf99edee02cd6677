/**
 * The UI server's settings, read once from the environment at start-up into
 * a frozen object. Invalid values fail fast with every problem listed, in the
 * same form as the function's (server-kit/config.ts), so a bad Knative
 * manifest shows up as one clear crash-loop message. The page's
 * settings take their defaults and ranges from contracts/page.ts, which the page reads too.
 */

import { BlockList } from 'node:net';
import { DEFAULT_MODEL, MODEL_NAMES, MODEL_TITLES, parseModelList, type ModelName } from '../../contracts/models.ts';
import { PAGE_DEFAULTS, PAGE_LIMITS, type PageConfig } from '../../contracts/page.ts';
import { readTrustedProxies } from '../../server-kit/client-address.ts';
import { envReader, type Env, type EnvReader } from '../../server-kit/config.ts';

export { ConfigError } from '../../server-kit/config.ts';

export interface UiConfig {
  port: number;
  /** Interface to bind; undefined binds all (IPv6 and IPv4). */
  host: string | undefined;
  publicDir: string;
  /** Where /api/* is proxied to: the classify function's cluster-local address. */
  classifyUpstream: URL;
  /** What browsers POST images to (sent in /config.json). */
  publicClassifyUrl: string;
  maxBodyBytes: number;
  proxyTimeoutMs: number;
  /**
   * Networks of the proxies in front of this server that append their peer to
   * X-Forwarded-For (server-kit/client-address.ts); default loopback only.
   */
  trustedProxies: BlockList;
  /** The page's settings that come from the environment. */
  page: Pick<PageConfig, 'topK' | 'uploadConcurrency' | 'slowAfterMs' | 'maxAttempts' | 'features' | 'models' | 'defaultModel'>;
  /**
   * The function's limits, read under the function's own variable names, so that one
   * environment (npm start's, or the same values in both Services) sets both: the page
   * shrinks a photo only when the function would refuse it.
   */
  functionLimits: Pick<PageConfig, 'maxPixels' | 'maxDimension'> & { bodyBytes: number };
  events: {
    bufferSize: number;
    maxClients: number;
    /** Streams one client (an IPv4 address, an IPv6 /64) may hold at once. */
    maxClientsPerAddress: number;
    heartbeatMs: number;
    /** A stream is ended after this long; EventSource reconnects with Last-Event-ID. */
    maxStreamMs: number;
    /** A reader whose unsent bytes pass this is dropped. */
    maxBufferedBytes: number;
    /** Largest relayed event, as it is written to the stream. */
    maxEventBytes: number;
    /** Deepest JSON nesting accepted in an event. */
    maxEventDepth: number;
    maxBodyBytes: number;
    /** Dead letters carry the whole submitted image; it is read and discarded, never stored. */
    maxDeadLetterBytes: number;
    deadLetterTimeoutMs: number;
    /**
     * The secret path segment of POST /events/<token> and /dead-letters/<token>;
     * empty: no event source, both answer 404.
     */
    token: string;
  };
  shutdownGraceMs: number;
}

const TOKEN = /^[A-Za-z0-9_-]{16,256}$/;

/** Reads every variable the UI server uses, each with its default (docs/configuration.md). */
export function loadConfig(env: Env, defaults: { publicDir: string }): Readonly<UiConfig> {
  const read = envReader(env);
  const pageInt = (name: string, setting: keyof typeof PAGE_LIMITS, fallback: number) =>
    read.int(name, fallback, PAGE_LIMITS[setting].min, PAGE_LIMITS[setting].max);

  const classifyUpstream = upstreamUrl(read, 'CLASSIFY_URL', 'http://127.0.0.1:8080');
  const publicClassifyUrl = read.string('UI_PUBLIC_CLASSIFY_URL', PAGE_DEFAULTS.classifyUrl, {
    pattern: /^(\/|https?:\/\/)/,
    valid: 'a path such as "/api/classify", or an http(s) URL',
  });

  const config: UiConfig = {
    port: read.int('PORT', 3000, 0, 65535),
    host: read.host('HOST', undefined),
    publicDir: read.string('UI_PUBLIC_DIR', defaults.publicDir),
    classifyUpstream,
    publicClassifyUrl,
    maxBodyBytes: pageInt('UI_MAX_BODY_BYTES', 'maxUploadBytes', PAGE_DEFAULTS.maxUploadBytes),
    proxyTimeoutMs: read.int('UI_PROXY_TIMEOUT_MS', 120_000, 100, 3_600_000),
    trustedProxies: readTrustedProxies(read, 'UI_TRUSTED_PROXIES'),
    functionLimits: {
      bodyBytes: read.int('KLASSIFY_BODY_LIMIT', PAGE_DEFAULTS.maxUploadBytes, 1024, 1024 ** 3),
      maxPixels: pageInt('KLASSIFY_MAX_PIXELS', 'maxPixels', PAGE_DEFAULTS.maxPixels),
      maxDimension: pageInt('KLASSIFY_MAX_DIMENSION', 'maxDimension', PAGE_DEFAULTS.maxDimension),
    },
    page: {
      topK: pageInt('UI_TOPK', 'topK', PAGE_DEFAULTS.topK),
      uploadConcurrency: pageInt('UI_UPLOAD_CONCURRENCY', 'uploadConcurrency', PAGE_DEFAULTS.uploadConcurrency),
      slowAfterMs: pageInt('UI_SLOW_AFTER_MS', 'slowAfterMs', PAGE_DEFAULTS.slowAfterMs),
      maxAttempts: pageInt('UI_MAX_ATTEMPTS', 'maxAttempts', PAGE_DEFAULTS.maxAttempts),
      features: {
        events: read.bool('UI_FEATURE_EVENTS', PAGE_DEFAULTS.features.events),
        camera: read.bool('UI_FEATURE_CAMERA', PAGE_DEFAULTS.features.camera),
        prewarm: read.bool('UI_FEATURE_PREWARM', PAGE_DEFAULTS.features.prewarm),
      },
      ...readModels(read),
    },
    events: {
      bufferSize: read.int('UI_EVENT_BUFFER', 50, 0, 1000),
      maxClients: read.int('UI_MAX_SSE_CLIENTS', 200, 1, 10_000),
      maxClientsPerAddress: read.int('UI_MAX_SSE_PER_CLIENT', 6, 1, 1000),
      heartbeatMs: read.int('UI_SSE_HEARTBEAT_MS', 15_000, 10, 300_000),
      maxStreamMs: read.int('UI_SSE_MAX_LIFETIME_MS', 900_000, 100, 86_400_000),
      maxBufferedBytes: read.int('UI_SSE_MAX_BUFFER_BYTES', 1024 * 1024, 1024, 64 * 1024 * 1024),
      // A classified event is about 1 KB; 16 KiB leaves room and keeps replay small.
      maxEventBytes: 16 * 1024,
      maxEventDepth: 32,
      maxBodyBytes: 64 * 1024,
      // A submitted event holds an image of up to ~10 MB, ~13.4 MB in base64.
      maxDeadLetterBytes: 32 * 1024 * 1024,
      deadLetterTimeoutMs: read.int('UI_DEAD_LETTER_TIMEOUT_MS', 60_000, 100, 600_000),
      // Never echoed in a message: a wrong token is reported by its length.
      token: read.string('UI_EVENTS_TOKEN', '', { pattern: TOKEN, valid: '16 to 256 characters from A-Z a-z 0-9 _ -', secret: true }),
    },
    shutdownGraceMs: read.int('UI_SHUTDOWN_GRACE_MS', 5000, 0, 60_000),
  };
  if (read.raw('UI_TRUSTED_PROXY_HOPS') !== undefined) {
    // A count of hops cannot fit both paths Knative has (with and without the activator).
    read.problem('UI_TRUSTED_PROXY_HOPS is no longer read; set UI_TRUSTED_PROXIES to the networks of the proxies in front (default 127.0.0.0/8,::1/128).');
  }
  // A new reader gets the whole ring replayed at once; it must fit its buffer.
  const replayBytes = (config.events.bufferSize + 2) * config.events.maxEventBytes;
  if (config.events.maxBufferedBytes < replayBytes) {
    read.invalid('UI_SSE_MAX_BUFFER_BYTES', `at least ${replayBytes} ((UI_EVENT_BUFFER + 2) x ${config.events.maxEventBytes}), or a replay would drop every new reader`);
  }
  read.done();
  return deepFreeze(config);
}

/**
 * The models the page offers: what the function serves, read like the limits above under the
 * function's own variables, KLASSIFY_MODELS (default every model) and KLASSIFY_MODEL (default
 * DEFAULT_MODEL when listed), so that one environment sets both.
 */
function readModels(read: EnvReader): Pick<PageConfig, 'models' | 'defaultModel'> {
  const listed = read.raw('KLASSIFY_MODELS');
  let names: readonly ModelName[] = MODEL_NAMES;
  if (listed !== undefined) {
    const parsed = parseModelList(listed);
    if (parsed) names = parsed;
    else read.invalid('KLASSIFY_MODELS', `a comma-separated list of distinct model names from ${MODEL_NAMES.join(', ')} (default: all)`);
  }
  const defaultModel = read.oneOf('KLASSIFY_MODEL', names, names.includes(DEFAULT_MODEL) ? DEFAULT_MODEL : names[0]);
  return { models: names.map((name) => ({ name, title: MODEL_TITLES[name] })), defaultModel };
}

/** An absolute http(s) URL, such as the classify function's cluster-local address. */
function upstreamUrl(read: EnvReader, name: string, fallback: string): URL {
  const text = read.raw(name) ?? fallback;
  try {
    const url = new URL(text);
    if (url.protocol === 'http:' || url.protocol === 'https:') return url;
  } catch {
    // reported below
  }
  read.invalid(name, `an absolute http:// or https:// URL such as http://classify.default.svc.cluster.local (default ${fallback})`);
  return new URL(fallback);
}

/** The public part of the configuration, served as /config.json. */
export function pageConfig(config: UiConfig): PageConfig {
  return {
    classifyUrl: config.publicClassifyUrl,
    // The readiness probe goes through this server's proxy, so only beside the default URL.
    readinessUrl: config.publicClassifyUrl === PAGE_DEFAULTS.classifyUrl ? PAGE_DEFAULTS.readinessUrl : '',
    eventsUrl: PAGE_DEFAULTS.eventsUrl,
    maxUploadBytes: Math.min(config.maxBodyBytes, config.functionLimits.bodyBytes),
    maxPixels: config.functionLimits.maxPixels,
    maxDimension: config.functionLimits.maxDimension,
    ...config.page,
    /** Whether anything can write to the feed: without a source, "Live" would mean nothing. */
    eventSource: config.events.token !== '',
  };
}

function deepFreeze<T>(value: T): T {
  // URL and BlockList keep their state outside their own properties; they are not walked.
  if (value && typeof value === 'object' && !(value instanceof URL) && !(value instanceof BlockList)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
