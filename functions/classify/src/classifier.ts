// The protocol-free core: image bytes in, predictions out. HTTP and CloudEvents are thin
// adapters around this. It owns the model files, the worker pool and admission control
// (admission.ts).
import type { Classification } from '../../../contracts/classification.ts';
import type { Config, ResizePolicy } from './config.ts';
import { DecodeGate } from './decode-gate.ts';
import type { DecodeLimits } from './decode-budget.ts';
import { Admission, type Ticket } from './admission.ts';
import { ClientClosed, type TooManyUploads } from './errors.ts';
import { topK } from './labels.ts';
import type { Metrics } from './metrics.ts';
import type { LoadedModel } from './inference.ts';
import { MODEL_NAME } from './model/mobilenet.ts';
import type { InferencePool, InferenceResult } from './pool.ts';
import { decode, inspect, withDeadline, type Preprocessed } from './preprocess.ts';

export interface ClassifyOptions {
  topk: number;
  resize: ResizePolicy;
  /** Aborts when the client has gone: work not yet started for it is skipped. */
  signal?: AbortSignal;
}

const round = (ms: number) => Math.round(ms * 100) / 100;

function throwIfGone(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new ClientClosed();
}

export class Classifier {
  private readonly admission: Admission;
  private readonly decodeGate: DecodeGate;
  private readonly limits: DecodeLimits;

  private constructor(
    private config: Readonly<Config>,
    private metrics: Metrics,
    private pool: InferencePool,
  ) {
    this.admission = new Admission({ queueSize: config.queueSize, maxUploadsPerClient: config.maxUploadsPerClient, workers: config.workers });
    this.decodeGate = new DecodeGate(config.decodeMemoryBytes, config.decodeConcurrency);
    const { maxPixels, maxDecodedBytes, maxDimension, maxJpegScans } = config;
    this.limits = { maxPixels, maxDecodedBytes, maxDimension, maxJpegScans };
  }

  /** Wraps a pool started by startInference(), once its workers are warm. */
  static async create(config: Readonly<Config>, metrics: Metrics, inference: Promise<LoadedModel>): Promise<Classifier> {
    const { pool, loadMs } = await inference;
    pool.onBatch = (n) => metrics.batchSize.observe(n);
    pool.onWorkerLost = (reason) => metrics.workerLosses.labels(reason).inc();
    metrics.modelLoadSeconds.set(loadMs / 1000);
    metrics.info.labels(config.engine, pool.provider, MODEL_NAME).set(1);
    return new Classifier(config, metrics, pool);
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
    const t0 = performance.now();
    const image = await this.decodeImage(bytes, opts);
    const decode = performance.now() - t0;
    throwIfGone(opts.signal);
    const result = await this.infer(image.rgb, opts.signal);
    const total = performance.now() - t0;
    this.metrics.stageSeconds.labels('total').observe(total / 1000);
    return {
      model: MODEL_NAME,
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
   * Encoded image bytes to the model's input, 224×224 RGB: header checks, then a place in
   * the decode gate for the estimated bytes, then the decode within its time budget. The
   * place is held until libvips has really stopped, even when the client was already
   * answered with decode-timeout, because the memory is still held.
   */
  async decodeImage(bytes: Uint8Array, opts: Pick<ClassifyOptions, 'resize' | 'signal'>): Promise<Preprocessed> {
    const t0 = performance.now();
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
    const image = await withDeadline(decoding, decodeTimeoutSeconds);
    this.metrics.stageSeconds.labels('decode').observe((performance.now() - t0) / 1000);
    return image;
  }

  /**
   * Runs the model on one image's input pixels (INPUT_SIZE² RGB bytes, row-major, as the
   * decoder writes them) and gives its class probabilities. Work not yet started is
   * skipped once `signal` aborts.
   */
  async infer(rgb: Uint8Array, signal?: AbortSignal): Promise<InferenceResult> {
    const result = await this.pool.infer(rgb, signal);
    const { stageSeconds } = this.metrics;
    stageSeconds.labels('queue').observe(result.queueMs / 1000);
    stageSeconds.labels('inference').observe(result.inferenceMs / 1000);
    return result;
  }

  close(): Promise<void> {
    this.admission.close();
    return this.pool.close();
  }
}
