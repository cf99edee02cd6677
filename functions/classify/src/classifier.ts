// The protocol-free core: image bytes in, predictions out, by any served model. HTTP,
// CloudEvents and the Open Inference Protocol routes are thin adapters around this. It owns
// the worker pool, the decoders, the catalogue of served models and admission control
// (admission.ts).
import type { Classification } from '../../../contracts/classification.ts';
import type { Logger } from '../../../server-kit/log.ts';
import type { Config, ResizePolicy } from './config.ts';
import { DecodeGate } from './decode-gate.ts';
import type { DecodeLimits } from './decode-budget.ts';
import { decodeImage, type DecodeContext, type Preprocessed } from './decode-image.ts';
import { DecoderPool } from './decoder-pool.ts';
import { startDecoders, type Decoders } from './decoders.ts';
import { Admission, type Ticket } from './admission.ts';
import { ClientClosed, InvalidInput, UnknownModel, type TooManyUploads } from './errors.ts';
import { topK } from './labels.ts';
import { log as defaultLog } from './log.ts';
import type { Metrics } from './metrics.ts';
import type { LoadedModel } from './inference.ts';
import { modelInfo, type ModelInfo } from './model/catalog.ts';
import { IMAGE_VALUES, INPUT_SIZE } from './model/mobilenet.ts';
import type { InferencePool, InferenceResult } from './pool.ts';

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
  private readonly admission: Admission;
  private readonly decodeGate: DecodeGate;
  private readonly decodeContext: DecodeContext;
  /** The served models, the default first: the catalogue every transport answers from. */
  readonly models: readonly ModelInfo[];

  private constructor(
    private config: Readonly<Config>,
    private metrics: Metrics,
    private pool: InferencePool,
    private decoders: Decoders,
  ) {
    this.admission = new Admission({ queueSize: config.queueSize, maxUploadsPerClient: config.maxUploadsPerClient, workers: config.workers });
    this.decodeGate = new DecodeGate(config.decodeMemoryBytes, config.decodeConcurrency);
    const { maxPixels, maxDecodedBytes, maxDimension, maxJpegScans, maxFrames } = config;
    const limits: DecodeLimits = { maxPixels, maxDecodedBytes, maxDimension, maxJpegScans, maxFrames };
    // Every served model takes the same input, INPUT_SIZE² RGB.
    this.decodeContext = { steps: decoders, limits, side: INPUT_SIZE, timeoutSeconds: config.decodeTimeoutSeconds, gate: this.decodeGate };
    const names = [config.model, ...config.models.filter((m) => m !== config.model)];
    this.models = Object.freeze(names.map((m) => modelInfo(m, config.modelPrecision)));
  }

  /**
   * Wraps a pool started by startInference() and the decoders started by startDecoders()
   * (both by main.ts before the HTTP stack loads; here when not given), once the pool's
   * workers are warm and a decoder process is ready.
   */
  static async create(
    config: Readonly<Config>,
    metrics: Metrics,
    inference: Promise<LoadedModel>,
    log: Pick<Logger, 'warn'> = defaultLog,
    starting: Promise<Decoders> = startDecoders(config, log),
  ): Promise<Classifier> {
    const [model, decoders] = await Promise.allSettled([inference, starting]);
    if (model.status === 'rejected' || decoders.status === 'rejected') {
      if (decoders.status === 'fulfilled') await decoders.value.close?.();
      throw model.status === 'rejected' ? model.reason : (decoders as PromiseRejectedResult).reason;
    }
    if (decoders.value instanceof DecoderPool) decoders.value.onLoss = (reason) => metrics.decoderLosses.labels(reason).inc();
    const { pool, loadMs } = model.value;
    pool.onBatch = (n, name) => metrics.batchSize.labels(name).observe(n);
    pool.onWorkerLost = (reason) => metrics.workerLosses.labels(reason).inc();
    metrics.modelLoadSeconds.set(loadMs / 1000);
    for (const name of config.models) metrics.info.labels(config.engine, pool.provider, name, String(name === config.model)).set(1);
    return new Classifier(config, metrics, pool, decoders.value);
  }

  /** The model that answers a request that names none. */
  get defaultModel(): ModelInfo {
    return this.models[0];
  }

  /** A served model by name (the default when absent), or UnknownModel listing the served ones. */
  model(name?: string): ModelInfo {
    if (name === undefined) return this.models[0];
    const found = this.models.find((m) => m.name === name);
    if (!found) throw new UnknownModel(`Unknown model ${JSON.stringify(name.slice(0, 100))}; this server serves ${this.config.models.join(', ')}.`, this.config.models);
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

  /** Decoder processes ready and running; none when decoding in this process. */
  get decoderProcesses(): { ready: number; total: number } {
    return this.decoders.processes ?? { ready: 0, total: 0 };
  }

  /**
   * Reserves a place for one request from `client` (a key from server-kit/client-address.ts),
   * or throws Overloaded or TooManyUploads (admission.ts). Callers take it before reading
   * the body, so a flood is refused before it costs memory; bodyRead() once the body is in,
   * release() when done. `cut` stops the body read if the client's slow uploads must be cut.
   */
  admit(client: string, cut: (err: TooManyUploads) => void): Ticket {
    const ticket = this.admission.admit(client, cut);
    this.metrics.inFlight.inc();
    let released = false;
    return {
      bodyRead: ticket.bodyRead,
      release: () => {
        if (released) return;
        released = true;
        ticket.release();
        this.metrics.inFlight.dec();
      },
    };
  }

  async classify(bytes: Uint8Array, opts: ClassifyOptions): Promise<Classification> {
    const { name: model } = this.model(opts.model);
    const t0 = performance.now();
    const image = await this.decodeImage(bytes, { ...opts, model });
    const decode = performance.now() - t0;
    throwIfGone(opts.signal);
    const result = await this.infer(image.rgb, { model, signal: opts.signal });
    const total = performance.now() - t0;
    this.metrics.stageSeconds.labels('total', model).observe(total / 1000);
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
   * Encoded image bytes to the model's input, 224×224 RGB (decode-image.ts): the checks on
   * the raw bytes, then the header read and the decode, each in a decoder process within its
   * deadline and memory allowance, holding a place in the decode gate until its memory is
   * really back. For every transport. Every served model takes the same input; `model` only
   * labels the decode time in the metrics.
   */
  async decodeImage(bytes: Uint8Array, opts: Pick<ClassifyOptions, 'resize' | 'signal' | 'model'>): Promise<Preprocessed> {
    const { name: model } = this.model(opts.model);
    const t0 = performance.now();
    const image = await decodeImage(bytes, { resize: opts.resize, signal: opts.signal }, this.decodeContext);
    this.metrics.stageSeconds.labels('decode', model).observe((performance.now() - t0) / 1000);
    return image;
  }

  /**
   * Runs a served model (the default when none is named) on one image's input pixels:
   * INPUT_SIZE² RGB bytes, row-major, as the decoder writes them (model/mobilenet.ts). Gives
   * the 1000 class probabilities in the order of labels.ts. Work not yet started is skipped
   * once `signal` aborts.
   */
  async infer(rgb: Uint8Array, opts: InferOptions = {}): Promise<InferenceResult & { model: string }> {
    const { name: model } = this.model(opts.model);
    if (rgb.length !== IMAGE_VALUES) {
      throw new InvalidInput(`An image's pixels are ${IMAGE_VALUES} bytes (224 × 224 × 3, uint8, RGB, row by row); got ${rgb.length}.`);
    }
    throwIfGone(opts.signal);
    const result = await this.pool.infer(model, rgb, opts.signal);
    const { stageSeconds } = this.metrics;
    stageSeconds.labels('queue', model).observe(result.queueMs / 1000);
    stageSeconds.labels('inference', model).observe(result.inferenceMs / 1000);
    return { ...result, model };
  }

  async close(): Promise<void> {
    this.admission.close();
    await Promise.all([this.pool.close(), this.decoders.close?.()]);
  }
}
