// The protocol-free core: image bytes in, predictions out. HTTP and CloudEvents are thin
// adapters around this. It owns the model files, the worker pool and admission control.
import type { Config, ResizePolicy } from './config.ts';
import { Overloaded } from './errors.ts';
import { topK, type Prediction } from './labels.ts';
import type { Metrics } from './metrics.ts';
import type { LoadedModel } from './inference.ts';
import { MODEL_NAME } from './model/prepare.ts';
import type { InferencePool } from './pool.ts';
import { preprocess } from './preprocess.ts';

export interface Classification {
  model: string;
  predictions: Prediction[];
  image: { format: string; width: number; height: number };
  timingMs: { decode: number; queue: number; inference: number; total: number };
  servedBy: { pod: string; revision: string | null; engine: string; provider: string; batchSize: number };
}

export interface ClassifyOptions {
  topk: number;
  resize: ResizePolicy;
  /** Aborted when the caller has gone: work not yet started for it is skipped. */
  signal?: AbortSignal;
}

const round = (ms: number) => Math.round(ms * 100) / 100;

export class Classifier {
  private admitted = 0;

  private constructor(
    private config: Readonly<Config>,
    private metrics: Metrics,
    private pool: InferencePool,
  ) {}

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
    const t0 = performance.now();
    const image = await preprocess(bytes, { resize: opts.resize, maxPixels: this.config.maxPixels });
    const decode = performance.now() - t0;
    const result = await this.pool.infer(image.rgb, opts.signal);
    const total = performance.now() - t0;
    const { stageSeconds } = this.metrics;
    stageSeconds.labels('decode').observe(decode / 1000);
    stageSeconds.labels('queue').observe(result.queueMs / 1000);
    stageSeconds.labels('inference').observe(result.inferenceMs / 1000);
    stageSeconds.labels('total').observe(total / 1000);
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

  close(): Promise<void> {
    return this.pool.close();
  }
}
