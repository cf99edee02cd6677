// A pool of inference workers with a dynamic micro-batcher in front.
//
// Requests wait in a FIFO. Whenever a worker is idle it takes everything that is already
// waiting, up to batchMaxSize, as one batch. At concurrency 1 a request is dispatched the
// moment it arrives, so batching adds no latency; under load, requests that queued while
// the workers were busy are merged. batchMaxDelayMs > 0 additionally holds a partial batch
// for up to that long to let it fill (worth it on a GPU, not on a CPU: docs/performance.md).
import { Worker } from 'node:worker_threads';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLASS_COUNT } from './labels.ts';
import { IMAGE_VALUES, type EngineOptions } from './engines/engine.ts';
import type { FromWorker, ToWorker, WorkerInit } from './worker.ts';

export interface PoolOptions {
  workers: number;
  engine: Omit<EngineOptions, 'log'>;
  batchMaxSize: number;
  batchMaxDelayMs: number;
}

export interface InferenceResult {
  probabilities: Float32Array;
  queueMs: number;
  inferenceMs: number;
  batchSize: number;
}

interface Job {
  rgb: Uint8Array;
  enqueued: number;
  resolve: (r: InferenceResult) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  busy: Job[] | null;
  started: number;
  /**
   * This worker's input buffer, sized for the largest batch. It travels: transferred to
   * the worker with a batch and back with the result, so nothing is allocated per request
   * (fresh 150 KB arrays per request fragmented the allocator: docs/performance.md). Null
   * while the worker holds it; a fresh one replaces a buffer lost with a failed batch. Not
   * a SharedArrayBuffer: onnxruntime-node refuses typed arrays over one as tensor data.
   */
  input: Uint8Array<ArrayBuffer> | null;
}

// In the esbuild bundle, worker.js sits beside main.js; from the .ts sources, a small
// bootstrap registers tsx inside the worker first.
const here = fileURLToPath(import.meta.url);
const WORKER_FILE = path.join(path.dirname(here), here.endsWith('.ts') ? 'worker-tsx.mjs' : 'worker.js');

/**
 * The batch shapes a pool runs: powers of two up to the max, and the max itself. Every one
 * is warmed up before readiness, and each batch is padded up to the nearest.
 */
export function batchShapes(max: number): number[] {
  const shapes: number[] = [];
  for (let n = 1; n < max; n *= 2) shapes.push(n);
  shapes.push(max);
  return shapes;
}

export class InferencePool {
  private queue: Job[] = [];
  private slots: Slot[] = [];
  /** Every worker started, ready or still loading: close() stops them all. */
  private workers: Worker[] = [];
  private nextId = 0;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  provider = 'unknown';
  loadMs = 0;
  /** Observes each dispatched batch size (metrics). */
  onBatch: (size: number) => void = () => {};

  /** Batch shapes, computed once: every dispatch pads to one of them. */
  private readonly shapes: number[];

  private constructor(private opts: PoolOptions) {
    this.shapes = batchShapes(opts.batchMaxSize);
  }

  /**
   * Starts one worker and resolves once it has loaded and warmed up its engine; the others
   * start then and join as they finish. Loading the runtime is CPU bound: started together,
   * the workers and the main thread's own start-up compete for the cores and the first
   * request waits for all of them, for capacity a scaled-from-zero pod does not need in
   * its first few hundred milliseconds.
   */
  static async start(opts: PoolOptions): Promise<InferencePool> {
    const pool = new InferencePool(opts);
    const started = performance.now();
    try {
      await pool.spawn();
    } catch (err) {
      await pool.close();
      throw err;
    }
    pool.loadMs = performance.now() - started;
    for (let i = 1; i < opts.workers; i++) {
      pool.spawn().catch((err) => console.error(`an inference worker failed to start: ${err.message}`));
    }
    return pool;
  }

  /** Resolves when every worker has joined (benchmarks and tests that need them all). */
  async allReady(): Promise<void> {
    while (!this.closed && this.slots.length < this.opts.workers) await new Promise((r) => setTimeout(r, 5));
  }

  /** Workers loaded and serving; the rest are still starting. */
  get readyWorkers(): number {
    return this.slots.length;
  }

  get waiting(): number {
    return this.queue.length;
  }

  infer(rgb: Uint8Array): Promise<InferenceResult> {
    if (this.closed) return Promise.reject(new Error('inference pool is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ rgb, enqueued: performance.now(), resolve, reject });
      this.dispatch();
    });
  }

  /** Lets queued and running jobs finish, then stops the workers. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.queue.length || this.slots.some((s) => s.busy)) await new Promise((r) => setTimeout(r, 5));
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers = [];
    this.slots = [];
  }

  private spawn(): Promise<void> {
    const { engine } = this.opts;
    const init: WorkerInit = { engine, warmup: this.shapes };
    const worker = new Worker(WORKER_FILE, { workerData: init });
    this.workers.push(worker);
    const slot: Slot = { worker, busy: null, started: 0, input: null };
    return new Promise((resolve, reject) => {
      worker.on('message', (msg: FromWorker) => {
        if (msg.type === 'ready') {
          if (this.closed) return resolve();
          this.provider = msg.provider;
          this.slots.push(slot);
          resolve();
          this.dispatch();
        } else this.finish(slot, msg);
      });
      worker.once('error', (err) => {
        reject(err);
        this.fail(slot, new Error(`inference worker crashed: ${err.message}`));
      });
      worker.once('exit', (code) => {
        if (this.closed) resolve(); // stopped by close() while it was still loading
        else if (code !== 0) reject(new Error(`inference worker exited with code ${code}`));
      });
    });
  }

  private dispatch(): void {
    if (!this.queue.length) return;
    const slot = this.slots.find((s) => !s.busy);
    if (!slot) return;
    const { batchMaxSize, batchMaxDelayMs } = this.opts;
    const waited = performance.now() - this.queue[0].enqueued;
    if (this.queue.length < batchMaxSize && waited < batchMaxDelayMs) {
      this.timer ??= setTimeout(() => {
        this.timer = null;
        this.dispatch();
      }, batchMaxDelayMs - waited);
      return;
    }
    const jobs = this.queue.splice(0, batchMaxSize);
    slot.busy = jobs;
    slot.started = performance.now();
    // Pad to a warmed-up shape; the zero rows cost a little compute, a cold shape costs
    // a slow first run (seconds on a GPU) in the middle of live traffic.
    const shape = this.shapes.find((n) => n >= jobs.length)!;
    const input = slot.input ?? new Uint8Array(this.shapes.at(-1)! * IMAGE_VALUES);
    slot.input = null;
    const rgb = input.subarray(0, shape * IMAGE_VALUES);
    jobs.forEach((j, i) => rgb.set(j.rgb, i * IMAGE_VALUES));
    rgb.fill(0, jobs.length * IMAGE_VALUES);
    this.onBatch(jobs.length);
    const msg: ToWorker = { id: this.nextId++, batch: shape, rgb };
    slot.worker.postMessage(msg, [input.buffer]);
    if (this.queue.length) this.dispatch();
  }

  private finish(slot: Slot, msg: Exclude<FromWorker, { type: 'ready' }>): void {
    const jobs = slot.busy ?? [];
    slot.busy = null;
    if (msg.type === 'failed') {
      jobs.forEach((j) => j.reject(new Error(`inference failed: ${msg.message}`)));
    } else {
      slot.input = new Uint8Array(msg.rgb.buffer as ArrayBuffer);
      jobs.forEach((j, i) =>
        j.resolve({
          probabilities: msg.output.subarray(i * CLASS_COUNT, (i + 1) * CLASS_COUNT),
          queueMs: slot.started - j.enqueued,
          inferenceMs: msg.inferenceMs,
          batchSize: jobs.length,
        }),
      );
    }
    this.dispatch();
  }

  /** A crashed worker fails its batch and is replaced, so one bad run cannot stall the pool. */
  private fail(slot: Slot, err: Error): void {
    const jobs = slot.busy ?? [];
    this.slots = this.slots.filter((s) => s !== slot);
    this.workers = this.workers.filter((w) => w !== slot.worker);
    jobs.forEach((j) => j.reject(err));
    if (!this.closed) this.spawn().catch(() => {});
  }
}
