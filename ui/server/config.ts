/**
 * The UI server's settings, read once from the environment at start-up into
 * a frozen object. Invalid values fail fast with every problem listed, so a
 * bad Knative manifest shows up as one clear crash-loop message.
 */

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
  page: {
    topK: number;
    uploadConcurrency: number;
    slowAfterMs: number;
    maxAttempts: number;
    features: { events: boolean; camera: boolean; prewarm: boolean };
  };
  events: {
    bufferSize: number;
    maxClients: number;
    heartbeatMs: number;
    maxBodyBytes: number;
    /** Host names allowed to POST /events; empty allows any. */
    allowedHosts: readonly string[];
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
  UI_PUBLIC_CLASSIFY_URL: '/api/classify',
  UI_MAX_BODY_BYTES: String(10 * 1024 * 1024),
  UI_PROXY_TIMEOUT_MS: '120000',
  UI_TOPK: '5',
  UI_UPLOAD_CONCURRENCY: '4',
  UI_SLOW_AFTER_MS: '1500',
  UI_MAX_ATTEMPTS: '4',
  UI_FEATURE_EVENTS: 'true',
  UI_FEATURE_CAMERA: 'true',
  UI_FEATURE_PREWARM: 'true',
  UI_EVENT_BUFFER: '50',
  UI_MAX_SSE_CLIENTS: '200',
  UI_SSE_HEARTBEAT_MS: '15000',
  UI_EVENTS_ALLOWED_HOSTS: '',
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
    maxBodyBytes: int('UI_MAX_BODY_BYTES', 1024, 1024 ** 3),
    proxyTimeoutMs: int('UI_PROXY_TIMEOUT_MS', 100, 3_600_000),
    page: {
      topK: int('UI_TOPK', 1, 20),
      uploadConcurrency: int('UI_UPLOAD_CONCURRENCY', 1, 16),
      slowAfterMs: int('UI_SLOW_AFTER_MS', 0, 60_000),
      maxAttempts: int('UI_MAX_ATTEMPTS', 1, 10),
      features: {
        events: bool('UI_FEATURE_EVENTS'),
        camera: bool('UI_FEATURE_CAMERA'),
        prewarm: bool('UI_FEATURE_PREWARM'),
      },
    },
    events: {
      bufferSize: int('UI_EVENT_BUFFER', 0, 1000),
      maxClients: int('UI_MAX_SSE_CLIENTS', 1, 10_000),
      heartbeatMs: int('UI_SSE_HEARTBEAT_MS', 10, 300_000),
      maxBodyBytes: 256 * 1024,
      allowedHosts: read('UI_EVENTS_ALLOWED_HOSTS')
        .split(',')
        .map((host) => host.trim().toLowerCase())
        .filter(Boolean),
    },
    shutdownGraceMs: int('UI_SHUTDOWN_GRACE_MS', 0, 60_000),
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return deepFreeze(config);
}

/** The public part of the configuration, served as /config.json. */
export function pageConfig(config: UiConfig) {
  return {
    classifyUrl: config.publicClassifyUrl,
    readinessUrl: config.publicClassifyUrl === ENV_DEFAULTS.UI_PUBLIC_CLASSIFY_URL ? '/api/health/readiness' : '',
    eventsUrl: '/events/stream',
    maxUploadBytes: config.maxBodyBytes,
    ...config.page,
  };
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !(value instanceof URL)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
