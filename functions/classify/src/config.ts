// The function's configuration, read once from the environment at start-up into a frozen,
// typed object that is passed down. Nothing else reads process.env. Invalid values fail
// start-up with a message naming each invalid variable and its valid values
// (server-kit/config.ts, shared with the UI server).
import type { BlockList } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_MODEL, parseModelList } from '../../../contracts/models.ts';
import { readTrustedProxies } from '../../../server-kit/client-address.ts';
import { envReader, type Env, type EnvReader } from '../../../server-kit/config.ts';
import { DEFAULT_DECODE_LIMITS, DEFAULT_DECODE_TIMEOUT_SECONDS } from './decode-budget.ts';
import { enginesFor, MODEL_NAMES, type ModelName } from './model/catalog.ts';
import { MODEL_MIRROR, mirrorDir } from './model/mirror.ts';

const MiB = 1024 * 1024;

export const ENGINES = ['onnx', 'tfjs'] as const;
export const PROVIDERS = ['cpu', 'webgpu'] as const;
export const RESIZE_POLICIES = ['stretch', 'center-crop'] as const;
export const MODEL_FETCH = ['auto', 'never'] as const;
export const MODEL_PRECISIONS = ['fp32', 'int8'] as const;

export type EngineName = (typeof ENGINES)[number];
export type ProviderName = (typeof PROVIDERS)[number];
export type ResizePolicy = (typeof RESIZE_POLICIES)[number];

export interface Config {
  port: number;
  host: string;
  engine: EngineName;
  /** Execution provider for the onnx engine. */
  provider: ProviderName;
  /** With provider=webgpu and no GPU adapter: fall back to cpu instead of failing. */
  providerFallback: boolean;
  workers: number;
  intraOpThreads: number;
  /** Requests admitted at once (reading, decoding, queued or running); more get 503. */
  queueSize: number;
  /** Slow uploads (admission.ts) one client may have at once; more get 429. */
  maxUploadsPerClient: number;
  /**
   * Networks of the proxies in front that append their peer to X-Forwarded-For, through
   * which the client is found (server-kit/client-address.ts); default loopback only.
   */
  trustedProxies: BlockList;
  /** Largest batch one inference call may merge. */
  batchMaxSize: number;
  /** How long a partial batch may wait for more requests, in ms (0 = merge only what waits). */
  batchMaxDelayMs: number;
  /** Images one Open Inference Protocol request may carry (its model's max_batch_size). */
  v2MaxBatchSize: number;
  bodyLimitBytes: number;
  /** Longest pause between two reads of a request body, in ms (408 past it). */
  bodyIdleTimeoutMs: number;
  /** A body may take this long, plus 1 s per bodyMinRate bytes received (408 past it). */
  bodyGraceMs: number;
  /** Bytes per second a body must average once its grace period is spent. */
  bodyMinRate: number;
  /** Longest time a whole body may take to arrive, in ms (408 past it). */
  bodyTimeoutMs: number;
  /** Longest time one inference batch may run before its worker is replaced, in ms. */
  inferTimeoutMs: number;
  /** Decode limits, checked from the header before decoding (decode-budget.ts). */
  maxPixels: number;
  maxDecodedBytes: number;
  maxDimension: number;
  maxJpegScans: number;
  maxFrames: number;
  /** Wall-clock budget of one header read and of one decode, in whole seconds. */
  decodeTimeoutSeconds: number;
  /** Estimated bytes that all decodes in progress may hold together. */
  decodeMemoryBytes: number;
  /** Header reads and decodes in progress at once; more wait (and can be dropped) in the decode gate. */
  decodeConcurrency: number;
  /**
   * Decoder processes, where every sharp call runs under a deadline and a memory allowance
   * (decoder-pool.ts); 0 decodes in the server process, where nothing can stop a decode.
   */
  decoders: number;
  topkDefault: number;
  resize: ResizePolicy;
  modelCacheDir: string;
  modelMirror: string | undefined;
  modelFetch: (typeof MODEL_FETCH)[number];
  /**
   * MobileNet v1's weights and activations in the onnx engine: fp32, or our int8
   * quantisation (docs/models.md). v2 is int8 as published, whatever this says.
   */
  modelPrecision: (typeof MODEL_PRECISIONS)[number];
  /** The model that answers a request that names none. */
  model: ModelName;
  /** The models this server loads into every worker and answers with (the default among them). */
  models: readonly ModelName[];
  shutdownTimeoutMs: number;
  dedupeTtlMs: number;
  dedupeMaxEntries: number;
  /** Estimated bytes the de-duplication store may hold (keys and replies). */
  dedupeMaxBytes: number;
  eventSource: string;
  pod: string;
  revision: string | null;
}

export const MAX_TOPK = 1000;

/**
 * KLASSIFY_MODELS (the served models, comma-separated; default: every model the engine can
 * run) and KLASSIFY_MODEL (the default among them; default DEFAULT_MODEL when served).
 */
function readModels(read: EnvReader, engine: EngineName): Pick<Config, 'model' | 'models'> {
  const runnable = MODEL_NAMES.filter((m) => enginesFor(m).includes(engine));
  const listed = read.raw('KLASSIFY_MODELS');
  let models: ModelName[] = runnable;
  if (listed !== undefined) {
    const parsed = parseModelList(listed);
    if (parsed) models = parsed;
    else read.invalid('KLASSIFY_MODELS', `a comma-separated list of distinct model names from ${MODEL_NAMES.join(', ')} (default: all that KLASSIFY_ENGINE runs)`);
  }
  const model = read.oneOf('KLASSIFY_MODEL', MODEL_NAMES, models.includes(DEFAULT_MODEL) ? DEFAULT_MODEL : models[0]);
  if (!models.includes(model)) read.problem(`KLASSIFY_MODEL=${model} is not among KLASSIFY_MODELS=${models.join(',')}; valid values: one of the served models.`);
  for (const m of models.filter((m) => !runnable.includes(m))) {
    read.problem(`${m} cannot run on KLASSIFY_ENGINE=${engine} (it runs on ${enginesFor(m).join(', ')}); serve it with KLASSIFY_ENGINE=onnx, or leave it out of KLASSIFY_MODELS.`);
  }
  return { model, models: Object.freeze(models) };
}

export function loadConfig(env: Env = process.env): Readonly<Config> {
  const read = envReader(env);
  const provider = read.oneOf('KLASSIFY_PROVIDER', PROVIDERS, 'cpu');
  const gpu = provider === 'webgpu';
  const cpus = os.availableParallelism();
  const revision = read.raw('K_REVISION') ?? null;
  const queueSize = read.int('KLASSIFY_QUEUE_SIZE', 32, 1, 10_000);
  // Read in this order so that problems are listed in it.
  const port = read.int('PORT', 8080, 0, 65535);
  const host = read.host('HOST', '0.0.0.0');
  const engine = read.oneOf('KLASSIFY_ENGINE', ENGINES, 'onnx');
  // Two: a photo does not wait behind one slow decode, and each process adds about 20 MB
  // (PSS) at rest (docs/reliability.md measures 0, 1 and 2 side by side).
  const decoders = read.int('KLASSIFY_DECODERS', 2, 0, 64);
  const config: Config = {
    port,
    host,
    engine,
    provider,
    providerFallback: read.bool('KLASSIFY_PROVIDER_FALLBACK', false),
    // One worker per core, each running single-threaded inference, measured fastest on
    // 2 cores (docs/performance.md). A GPU is shared, so one worker feeds it batches.
    workers: read.int('KLASSIFY_WORKERS', gpu ? 1 : Math.min(cpus, 4), 1, 64),
    intraOpThreads: read.int('KLASSIFY_INTRA_OP_THREADS', 1, 1, 64),
    queueSize,
    // A quarter of the places: one client can never hold more than that with slow bodies
    // (8 of 32 by default; 1 of 4 on Knative, where the pod takes 2 requests at once).
    maxUploadsPerClient: read.int('KLASSIFY_MAX_UPLOADS_PER_CLIENT', Math.max(1, Math.floor(queueSize / 4)), 1, 10_000),
    trustedProxies: readTrustedProxies(read, 'KLASSIFY_TRUSTED_PROXIES'),
    // On CPU a batch of 4 costs 4x one image (docs/performance.md), so merging only adds
    // waiting; a GPU amortises launches and copies over the batch.
    batchMaxSize: read.int('KLASSIFY_BATCH_MAX', gpu ? 32 : 1, 1, 256),
    batchMaxDelayMs: read.number('KLASSIFY_BATCH_DELAY_MS', gpu ? 2 : 0, 0, 100),
    // A batch of N costs N images of decoding and inference while holding one admission
    // place. On 2 cores images/s stop growing past 4, and 8 keeps a request near 0.2 s
    // (docs/inference-protocol.md); 8 raw UINT8 images fit the body limit 8 times over.
    v2MaxBatchSize: read.int('KLASSIFY_V2_MAX_BATCH', 8, 1, 256),
    bodyLimitBytes: read.int('KLASSIFY_BODY_LIMIT', 10 * 1024 * 1024, 1024, 1024 ** 3),
    // A trickle of a few bytes per second is refused after the grace period; a phone on a
    // poor link (tens of KiB/s) is far above the minimum rate (docs/reliability.md).
    bodyIdleTimeoutMs: read.int('KLASSIFY_BODY_IDLE_TIMEOUT_MS', 10_000, 100, 600_000),
    bodyGraceMs: read.int('KLASSIFY_BODY_GRACE_MS', 10_000, 0, 600_000),
    bodyMinRate: read.int('KLASSIFY_BODY_MIN_RATE', 4096, 1, 1024 ** 3),
    bodyTimeoutMs: read.int('KLASSIFY_BODY_TIMEOUT_MS', 120_000, 100, 3_600_000),
    inferTimeoutMs: read.int('KLASSIFY_INFER_TIMEOUT_MS', 30_000, 100, 3_600_000),
    maxPixels: read.int('KLASSIFY_MAX_PIXELS', DEFAULT_DECODE_LIMITS.maxPixels, 1, 1_000_000_000),
    maxDecodedBytes: read.int('KLASSIFY_MAX_DECODED_BYTES', DEFAULT_DECODE_LIMITS.maxDecodedBytes, MiB, 64 * 1024 * MiB),
    maxDimension: read.int('KLASSIFY_MAX_DIMENSION', DEFAULT_DECODE_LIMITS.maxDimension, 1, 1_000_000),
    maxJpegScans: read.int('KLASSIFY_MAX_JPEG_SCANS', DEFAULT_DECODE_LIMITS.maxJpegScans, 1, 100_000),
    maxFrames: read.int('KLASSIFY_MAX_FRAMES', DEFAULT_DECODE_LIMITS.maxFrames, 1, 1_000_000),
    decodeTimeoutSeconds: read.int('KLASSIFY_DECODE_TIMEOUT_S', DEFAULT_DECODE_TIMEOUT_SECONDS, 1, 600),
    // Sized with the pod: the server and two warm workers hold about 290 MB, so 512 Mi
    // leaves room for one decode at the per-image limit plus a few photos.
    decodeMemoryBytes: read.int('KLASSIFY_DECODE_MEMORY', 192 * MiB, MiB, 64 * 1024 * MiB),
    decoders,
    // One step per decoder process. Without them, sharp runs each decode on a thread of
    // libuv's pool, two of which are left for file I/O: libuv reads UV_THREADPOOL_SIZE once,
    // when its pool first starts, so it is set in the process environment (Dockerfile,
    // Knative manifest, scripts/start.ts), to 6.
    decodeConcurrency: read.int('KLASSIFY_DECODE_CONCURRENCY', decoders || Math.max(1, read.int('UV_THREADPOOL_SIZE', 4, 1, 1024) - 2), 1, 1024),
    topkDefault: read.int('KLASSIFY_TOPK', 5, 1, MAX_TOPK),
    resize: read.oneOf('KLASSIFY_RESIZE', RESIZE_POLICIES, 'stretch'),
    modelCacheDir: path.resolve(read.string('KLASSIFY_MODEL_CACHE', '.cache/model')),
    // KLASSIFY_MODEL_MIRROR, else KLASSIFY_MIRROR's models/ (model/mirror.ts).
    modelMirror: mirrorDir(MODEL_MIRROR, env),
    modelFetch: read.oneOf('KLASSIFY_MODEL_FETCH', MODEL_FETCH, 'auto'),
    modelPrecision: read.oneOf('KLASSIFY_MODEL_PRECISION', MODEL_PRECISIONS, 'fp32'),
    ...readModels(read, engine),
    shutdownTimeoutMs: read.int('KLASSIFY_SHUTDOWN_TIMEOUT_MS', 25_000, 0, 600_000),
    dedupeTtlMs: read.int('KLASSIFY_DEDUPE_TTL_MS', 10 * 60_000, 0, 24 * 3600_000),
    dedupeMaxEntries: read.int('KLASSIFY_DEDUPE_MAX', 1000, 0, 1_000_000),
    dedupeMaxBytes: read.int('KLASSIFY_DEDUPE_MAX_BYTES', 4 * 1024 * 1024, 0, 1024 ** 3),
    // It goes into response headers as is (ce-source).
    eventSource: read.string('KLASSIFY_EVENT_SOURCE', `/klassify/classify${revision ? `/${revision}` : ''}`, {
      pattern: /^[\x21-\x7e]{1,1024}$/,
      valid: 'up to 1024 printable ASCII characters, no spaces',
    }),
    pod: read.string('HOSTNAME', os.hostname()),
    revision,
  };
  if (config.modelPrecision === 'int8' && config.engine !== 'onnx') {
    read.problem('KLASSIFY_MODEL_PRECISION=int8 needs KLASSIFY_ENGINE=onnx: the tfjs engine runs the fp32 reference model.');
  }
  if (config.decodeMemoryBytes < config.maxDecodedBytes) {
    read.problem(
      `KLASSIFY_DECODE_MEMORY=${config.decodeMemoryBytes} is below KLASSIFY_MAX_DECODED_BYTES=${config.maxDecodedBytes}; valid values: at least the largest decode allowed.`,
    );
  }
  read.done();
  return Object.freeze(config);
}
