// The protocol-free core: image bytes in, predictions out. HTTP and CloudEvents are thin
// adapters around this. It owns the inference pool, the decoders and admission control
// (admission.ts).
import type { Classification } from '../../../contracts/classification.ts';
import type { Logger } from '../../../server-kit/log.ts';
import type { Config, ResizePolicy } from './config.ts';
import { DecodeGate } from './decode-gate.ts';
import type { DecodeLimits } from './decode-budget.ts';
import { decodeImage, type DecodeContext, type DecodeRequest, type DecodeSteps, type Preprocessed } from './decode-image.ts';
import { DecoderPool } from './decoder-pool.ts';
import { Admission, type Ticket } from './admission.ts';
import { ClientClosed, type TooManyUploads } from './errors.ts';
import { topK } from './labels.ts';
import { log as defaultLog } from './log.ts';
import type { Metrics } from './metrics.ts';
import type { LoadedModel } from './inference.ts';
import { INPUT_SIZE, MODEL_NAME } from './model/mobilenet.ts';
import type { InferencePool, InferenceResult } from './pool.ts';

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

/** Where the sharp calls run: decoder processes, or this process (KLASSIFY_DECODERS=0). */
type Decoders = DecodeSteps & { close?(): Promise<void>; processes?: { ready: number; total: number } };

export class Classifier {
  private readonly admission: Admission;
  private readonly decodeGate: DecodeGate;
  private readonly decodeContext: DecodeContext;

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
    this.decodeContext = { steps: decoders, limits, side: INPUT_SIZE, timeoutSeconds: config.decodeTimeoutSeconds, gate: this.decodeGate };
  }

  /**
   * Wraps a pool started by startInference(), once its workers are warm, and starts the
   * decoder processes meanwhile (or, with KLASSIFY_DECODERS=0, loads sharp here).
   */
  static async create(config: Readonly<Config>, metrics: Metrics, inference: Promise<LoadedModel>, log: Pick<Logger, 'warn'> = defaultLog): Promise<Classifier> {
    const starting: Promise<Decoders> = config.decoders
      ? DecoderPool.start({ processes: config.decoders, log, onLoss: (reason) => metrics.decoderLosses.labels(reason).inc() })
      : import('./preprocess.ts').then((m) => m.IN_PROCESS);
    const [model, decoders] = await Promise.allSettled([inference, starting]);
    if (model.status === 'rejected' || decoders.status === 'rejected') {
      if (decoders.status === 'fulfilled') await decoders.value.close?.();
      throw model.status === 'rejected' ? model.reason : (decoders as PromiseRejectedResult).reason;
    }
    const { pool, loadMs } = model.value;
    pool.onBatch = (n) => metrics.batchSize.observe(n);
    pool.onWorkerLost = (reason) => metrics.workerLosses.labels(reason).inc();
    metrics.modelLoadSeconds.set(loadMs / 1000);
    metrics.info.labels(config.engine, pool.provider, MODEL_NAME).set(1);
    return new Classifier(config, metrics, pool, decoders.value);
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
   * Encoded image bytes to the model's input, 224×224 RGB (decode-image.ts): the checks on
   * the raw bytes, then the header read and the decode, each in a decoder process within its
   * deadline and memory allowance, holding a place in the decode gate until its memory is
   * really back. For every transport.
   */
  async decodeImage(bytes: Uint8Array, req: DecodeRequest): Promise<Preprocessed> {
    const t0 = performance.now();
    const image = await decodeImage(bytes, req, this.decodeContext);
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

  async close(): Promise<void> {
    this.admission.close();
    await Promise.all([this.pool.close(), this.decoders.close?.()]);
  }
}
