/**
 * The UI server's settings, read once from the environment at start-up into
 * a frozen object. Invalid values fail fast with every problem listed, so a
 * bad Knative manifest shows up as one clear crash-loop message. The page's
 * settings take their defaults and ranges from contracts/page.ts, which the page reads too.
 */

import { PAGE_DEFAULTS, PAGE_LIMITS, type PageConfig } from '../../contracts/page.ts';

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
  /** The page's settings that come from the environment. */
  page: Pick<PageConfig, 'topK' | 'uploadConcurrency' | 'slowAfterMs' | 'maxAttempts' | 'features'>;
  events: {
    bufferSize: number;
    maxClients: number;
    /** Streams one client address may hold at once. */
    maxClientsPerAddress: number;
    /** Proxies in front of this server that append to X-Forwarded-For (0: use the socket's peer). */
    trustedProxyHops: number;
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

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid UI configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/** Every variable the UI server reads, with its default. Documented in the README. */
export const ENV_DEFAULTS = Object.freeze({
  PORT: '3000',
  HOST: '',
  CLASSIFY_URL: 'http://127.0.0.1:8080',
  UI_PUBLIC_CLASSIFY_URL: PAGE_DEFAULTS.classifyUrl,
  UI_MAX_BODY_BYTES: String(PAGE_DEFAULTS.maxUploadBytes),
  UI_PROXY_TIMEOUT_MS: '120000',
  UI_TOPK: String(PAGE_DEFAULTS.topK),
  UI_UPLOAD_CONCURRENCY: String(PAGE_DEFAULTS.uploadConcurrency),
  UI_SLOW_AFTER_MS: String(PAGE_DEFAULTS.slowAfterMs),
  UI_MAX_ATTEMPTS: String(PAGE_DEFAULTS.maxAttempts),
  UI_FEATURE_EVENTS: String(PAGE_DEFAULTS.features.events),
  UI_FEATURE_CAMERA: String(PAGE_DEFAULTS.features.camera),
  UI_FEATURE_PREWARM: String(PAGE_DEFAULTS.features.prewarm),
  UI_EVENT_BUFFER: '50',
  UI_MAX_SSE_CLIENTS: '200',
  UI_MAX_SSE_PER_CLIENT: '6',
  UI_TRUSTED_PROXY_HOPS: '0',
  UI_SSE_HEARTBEAT_MS: '15000',
  UI_SSE_MAX_LIFETIME_MS: '900000',
  UI_SSE_MAX_BUFFER_BYTES: String(1024 * 1024),
  UI_EVENTS_TOKEN: '',
  UI_DEAD_LETTER_TIMEOUT_MS: '60000',
  UI_SHUTDOWN_GRACE_MS: '5000',
});

export function loadConfig(env: Env, defaults: { publicDir: string }): Readonly<UiConfig> {
  const problems: string[] = [];
  const read = (name: keyof typeof ENV_DEFAULTS) => {
    const value = env[name];
    return value === undefined || value.trim() === '' ? ENV_DEFAULTS[name] : value.trim();
  };
  const int = (name: keyof typeof ENV_DEFAULTS, min: number, max: number) => {
    const text = read(name);
    const value = Number(text);
    if (!/^\d+$/.test(text) || value < min || value > max) {
      problems.push(`${name}=${JSON.stringify(text)}: expected an integer from ${min} to ${max}`);
      return Number(ENV_DEFAULTS[name]);
    }
    return value;
  };
  const pageInt = (name: keyof typeof ENV_DEFAULTS, setting: keyof typeof PAGE_LIMITS) =>
    int(name, PAGE_LIMITS[setting].min, PAGE_LIMITS[setting].max);
  const bool = (name: keyof typeof ENV_DEFAULTS) => {
    const text = read(name).toLowerCase();
    if (['true', '1', 'yes', 'on'].includes(text)) return true;
    if (['false', '0', 'no', 'off'].includes(text)) return false;
    problems.push(`${name}=${JSON.stringify(text)}: expected one of true, false, 1, 0, yes, no, on, off`);
    return ENV_DEFAULTS[name] === 'true';
  };

  let classifyUpstream = new URL(ENV_DEFAULTS.CLASSIFY_URL);
  try {
    classifyUpstream = new URL(read('CLASSIFY_URL'));
    if (classifyUpstream.protocol !== 'http:' && classifyUpstream.protocol !== 'https:') {
      problems.push(`CLASSIFY_URL=${JSON.stringify(read('CLASSIFY_URL'))}: expected an http:// or https:// URL`);
    }
  } catch {
    problems.push(`CLASSIFY_URL=${JSON.stringify(read('CLASSIFY_URL'))}: expected an absolute URL such as http://classify.default.svc.cluster.local`);
  }

  const publicClassifyUrl = read('UI_PUBLIC_CLASSIFY_URL');
  if (!publicClassifyUrl.startsWith('/') && !/^https?:\/\//.test(publicClassifyUrl)) {
    problems.push(`UI_PUBLIC_CLASSIFY_URL=${JSON.stringify(publicClassifyUrl)}: expected a path ("/api/classify") or an http(s) URL`);
  }

  const config: UiConfig = {
    port: int('PORT', 0, 65535),
    host: read('HOST') || undefined,
    publicDir: env.UI_PUBLIC_DIR?.trim() || defaults.publicDir,
    classifyUpstream,
    publicClassifyUrl,
    maxBodyBytes: pageInt('UI_MAX_BODY_BYTES', 'maxUploadBytes'),
    proxyTimeoutMs: int('UI_PROXY_TIMEOUT_MS', 100, 3_600_000),
    page: {
      topK: pageInt('UI_TOPK', 'topK'),
      uploadConcurrency: pageInt('UI_UPLOAD_CONCURRENCY', 'uploadConcurrency'),
      slowAfterMs: pageInt('UI_SLOW_AFTER_MS', 'slowAfterMs'),
      maxAttempts: pageInt('UI_MAX_ATTEMPTS', 'maxAttempts'),
      features: {
        events: bool('UI_FEATURE_EVENTS'),
        camera: bool('UI_FEATURE_CAMERA'),
        prewarm: bool('UI_FEATURE_PREWARM'),
      },
    },
    events: {
      bufferSize: int('UI_EVENT_BUFFER', 0, 1000),
      maxClients: int('UI_MAX_SSE_CLIENTS', 1, 10_000),
      maxClientsPerAddress: int('UI_MAX_SSE_PER_CLIENT', 1, 1000),
      trustedProxyHops: int('UI_TRUSTED_PROXY_HOPS', 0, 10),
      heartbeatMs: int('UI_SSE_HEARTBEAT_MS', 10, 300_000),
      maxStreamMs: int('UI_SSE_MAX_LIFETIME_MS', 100, 86_400_000),
      maxBufferedBytes: int('UI_SSE_MAX_BUFFER_BYTES', 1024, 64 * 1024 * 1024),
      // A classified event is about 1 KB; 16 KiB leaves room and keeps replay small.
      maxEventBytes: 16 * 1024,
      maxEventDepth: 32,
      maxBodyBytes: 64 * 1024,
      // A submitted event holds an image of up to ~10 MB, ~13.4 MB in base64.
      maxDeadLetterBytes: 32 * 1024 * 1024,
      deadLetterTimeoutMs: int('UI_DEAD_LETTER_TIMEOUT_MS', 100, 600_000),
      token: readToken(read('UI_EVENTS_TOKEN'), problems),
    },
    shutdownGraceMs: int('UI_SHUTDOWN_GRACE_MS', 0, 60_000),
  };
  // A new reader gets the whole ring replayed at once; it must fit its buffer.
  const replayBytes = (config.events.bufferSize + 2) * config.events.maxEventBytes;
  if (config.events.maxBufferedBytes < replayBytes) {
    problems.push(`UI_SSE_MAX_BUFFER_BYTES=${config.events.maxBufferedBytes}: must be at least ${replayBytes} ((UI_EVENT_BUFFER + 2) x ${config.events.maxEventBytes}), or a replay would drop every new reader`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return deepFreeze(config);
}

const TOKEN = /^[A-Za-z0-9_-]{16,256}$/;

function readToken(text: string, problems: string[]): string {
  if (text === '' || TOKEN.test(text)) return text;
  // Never echo the secret itself.
  problems.push(`UI_EVENTS_TOKEN: expected 16 to 256 characters from A-Z a-z 0-9 _ - (got ${text.length} characters)`);
  return '';
}

/** The public part of the configuration, served as /config.json. */
export function pageConfig(config: UiConfig): PageConfig {
  return {
    classifyUrl: config.publicClassifyUrl,
    // The readiness probe goes through this server's proxy, so only beside the default URL.
    readinessUrl: config.publicClassifyUrl === PAGE_DEFAULTS.classifyUrl ? PAGE_DEFAULTS.readinessUrl : '',
    eventsUrl: PAGE_DEFAULTS.eventsUrl,
    maxUploadBytes: config.maxBodyBytes,
    ...config.page,
    /** Whether anything can write to the feed: without a source, "Live" would mean nothing. */
    eventSource: config.events.token !== '',
  };
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !(value instanceof URL)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
