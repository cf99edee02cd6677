// The protocol-free core: image bytes in, predictions out, by any served model. HTTP,
// CloudEvents and the Open Inference Protocol routes are thin adapters around this. It owns
// the worker pool, the catalogue of served models and admission control.
import type { Classification } from '../../../contracts/classification.ts';
import type { Config, ResizePolicy } from './config.ts';
import { DecodeGate } from './decode-gate.ts';
import type { DecodeLimits } from './decode-budget.ts';
import { ClientClosed, InvalidInput, Overloaded, UnknownModel } from './errors.ts';
import { topK } from './labels.ts';
import type { Metrics } from './metrics.ts';
import type { LoadedModel } from './inference.ts';
import { modelInfo, type ModelInfo } from './model/catalog.ts';
import { IMAGE_VALUES } from './model/mobilenet.ts';
import type { InferencePool, InferenceResult } from './pool.ts';
import { decode, inspect, withDeadline, type Preprocessed } from './preprocess.ts';

export interface ClassifyOptions {
  topk: number;
  resize: ResizePolicy;
  /** A served model's name; the default model when absent. */
  model?: string;
  /** Aborts when the client has gone: work not yet started for it is skipped. */
  signal?: AbortSignal;
}

const round = (ms: number) => Math.round(ms * 100) / 100;

function throwIfGone(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new ClientClosed();
}

export interface InferOptions {
  /** A served model's name; the default model when absent. */
  model?: string;
  /** Drops the job if it fires while the image is still queued. */
  signal?: AbortSignal;
}

export class Classifier {
  private admitted = 0;
  private readonly decodeGate: DecodeGate;
  private readonly limits: DecodeLimits;
  /** The served models, the default first. */
  readonly models: readonly ModelInfo[];

  private constructor(
    private config: Readonly<Config>,
    private metrics: Metrics,
    private pool: InferencePool,
  ) {
    this.decodeGate = new DecodeGate(config.decodeMemoryBytes, config.decodeConcurrency);
    const { maxPixels, maxDecodedBytes, maxDimension, maxJpegScans } = config;
    this.limits = { maxPixels, maxDecodedBytes, maxDimension, maxJpegScans };
    const names = [config.model, ...config.models.filter((m) => m !== config.model)];
    this.models = Object.freeze(names.map((m) => modelInfo(m, config.modelPrecision)));
  }

  /** Wraps a pool started by startInference(), once its workers are warm. */
  static async create(config: Readonly<Config>, metrics: Metrics, inference: Promise<LoadedModel>): Promise<Classifier> {
    const { pool, loadMs } = await inference;
    pool.onBatch = (n, model) => metrics.batchSize.labels(model).observe(n);
    pool.onWorkerLost = (reason) => metrics.workerLosses.labels(reason).inc();
    metrics.modelLoadSeconds.set(loadMs / 1000);
    for (const model of config.models) metrics.info.labels(config.engine, pool.provider, model, String(model === config.model)).set(1);
    return new Classifier(config, metrics, pool);
  }

  /** The model that answers a request that names none. */
  get defaultModel(): ModelInfo {
    return this.models[0];
  }

  /** A served model by name (the default when absent), or UnknownModel listing the served ones. */
  model(name?: string): ModelInfo {
    if (name === undefined) return this.models[0];
    const found = this.models.find((m) => m.name === name);
    if (!found) throw new UnknownModel(name, this.config.models);
    return found;
  }

  get provider(): string {
    return this.pool.provider;
  }

  /** Decodes holding a place in the decode gate, their estimated bytes, and waiters. */
  get decoding(): { bytes: number; decodes: number; waiting: number } {
    return this.decodeGate.inUse;
  }

  get workers(): { ready: number; total: number } {
    return { ready: this.pool.readyWorkers, total: this.config.workers };
  }

  /**
   * Reserves a place for one request, or throws Overloaded. Callers take it before reading
   * the body, so a flood is refused before it costs memory; release() when done.
   */
  admit(): () => void {
    if (this.admitted >= this.config.queueSize) {
      // A rough drain estimate: what is admitted, spread over the workers, at ~50 ms each.
      throw new Overloaded(Math.max(1, Math.ceil((this.admitted / this.config.workers) * 0.05)));
    }
    this.admitted++;
    this.metrics.inFlight.inc();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.admitted--;
      this.metrics.inFlight.dec();
    };
  }

  async classify(bytes: Uint8Array, opts: ClassifyOptions): Promise<Classification> {
    const { name: model } = this.model(opts.model);
    const t0 = performance.now();
    const image = await this.decode(bytes, opts);
    const decode = performance.now() - t0;
    throwIfGone(opts.signal);
    const result = await this.pool.infer(model, image.rgb, opts.signal);
    const total = performance.now() - t0;
    this.observe(model, result, { decode, total });
    return {
      model,
      predictions: topK(result.probabilities, opts.topk),
      image: { format: image.format, width: image.width, height: image.height },
      timingMs: { decode: round(decode), queue: round(result.queueMs), inference: round(result.inferenceMs), total: round(total) },
      servedBy: {
        pod: this.config.pod,
        revision: this.config.revision,
        engine: this.config.engine,
        provider: this.pool.provider,
        batchSize: result.batchSize,
      },
    };
  }

  /**
   * Runs a served model on one image that is already the model's input: 224×224 RGB bytes,
   * row by row (NHWC uint8, model/mobilenet.ts). Returns the 1000 class probabilities in the
   * order of labels.ts. For protocols that carry tensors rather than image files.
   */
  async infer(rgb: Uint8Array, opts: InferOptions = {}): Promise<InferenceResult & { model: string }> {
    const { name: model } = this.model(opts.model);
    if (rgb.length !== IMAGE_VALUES) {
      throw new InvalidInput(`An image tensor holds ${IMAGE_VALUES} bytes (224 × 224 × 3, uint8, RGB, row by row); got ${rgb.length}.`);
    }
    throwIfGone(opts.signal);
    const t0 = performance.now();
    const result = await this.pool.infer(model, rgb, opts.signal);
    this.observe(model, result, { total: performance.now() - t0 });
    return { ...result, model };
  }

  private observe(model: string, result: InferenceResult, ms: { decode?: number; total: number }): void {
    const { stageSeconds } = this.metrics;
    if (ms.decode !== undefined) stageSeconds.labels('decode', model).observe(ms.decode / 1000);
    stageSeconds.labels('queue', model).observe(result.queueMs / 1000);
    stageSeconds.labels('inference', model).observe(result.inferenceMs / 1000);
    stageSeconds.labels('total', model).observe(ms.total / 1000);
  }

  /**
   * Header checks, then a place in the decode gate for the estimated bytes, then the decode
   * within its time budget. The place is held until libvips has really stopped, even when
   * the client was already answered with decode-timeout, because the memory is still held.
   */
  private async decode(bytes: Uint8Array, opts: ClassifyOptions): Promise<Preprocessed> {
    throwIfGone(opts.signal);
    const inspected = await inspect(bytes, this.limits);
    const release = await this.decodeGate.acquire(inspected.cost.bytes, opts.signal);
    try {
      throwIfGone(opts.signal);
    } catch (err) {
      release();
      throw err;
    }
    const { decodeTimeoutSeconds } = this.config;
    const decoding = decode(inspected, { resize: opts.resize, timeoutSeconds: decodeTimeoutSeconds });
    decoding.then(release, release);
    return withDeadline(decoding, decodeTimeoutSeconds);
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
