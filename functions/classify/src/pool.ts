// A pool of inference workers with a dynamic micro-batcher in front. Every worker holds a
// session for each served model, so any idle worker can take any request.
//
// Requests wait in a FIFO. Whenever a worker is idle it takes everything that is already
// waiting for the same model as the oldest request, up to batchMaxSize, as one batch. At concurrency 1 a request is dispatched the
// moment it arrives, so batching adds no latency; under load, requests that queued while
// the workers were busy are merged. batchMaxDelayMs > 0 additionally holds a partial batch
// for up to that long to let it fill (worth it on a GPU, not on a CPU: docs/performance.md).
//
// Failure paths: a worker that dies in any way (error, exit with any code, or a batch past
// its deadline) fails its batch with WorkerUnavailable and is replaced after an
// exponential backoff. With no worker ready, jobs fail at once instead of waiting for one.
import { EventEmitter } from 'node:events';
import { Worker } from 'node:worker_threads';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../../../server-kit/log.ts';
import type { EngineOptions } from './engines/engine.ts';
import { CLASS_COUNT, IMAGE_VALUES } from './model/mobilenet.ts';
import { WorkerUnavailable } from './errors.ts';
import type { FromWorker, ToWorker, WorkerInit } from './worker.ts';

export interface PoolOptions {
  workers: number;
  /** The engine for each served model, by model name; every worker loads them all. */
  engines: Readonly<Record<string, Omit<EngineOptions, 'log'>>>;
  batchMaxSize: number;
  batchMaxDelayMs: number;
  /** A batch running longer than this has its worker terminated and replaced (ms). */
  jobTimeoutMs?: number;
  /** How long close() lets a worker dispose its engine and exit before terminating it (ms). */
  closeTimeoutMs?: number;
  /** Delay before replacing a dead worker: doubles per failure in a row, up to the max (ms). */
  respawnDelayMs?: { initial: number; max: number };
  /** The worker script; defaults to worker.ts. Tests pass one that fails on purpose. */
  workerFile?: string;
  /** A worker lost, or one that would not stop, is a warning, with its cause in the fields. */
  log?: PoolLog;
}

export type PoolLog = Pick<Logger, 'warn'>;

export interface InferenceResult {
  probabilities: Float32Array;
  queueMs: number;
  inferenceMs: number;
  batchSize: number;
}

export type WorkerLoss = 'crashed' | 'exited' | 'timed-out';

interface Job {
  model: string;
  rgb: Uint8Array;
  enqueued: number;
  resolve: (r: InferenceResult) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  state: 'starting' | 'ready' | 'closing';
  busy: Job[] | null;
  started: number;
  deadline?: NodeJS.Timeout;
  exited: Promise<void>;
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
  /** Every worker started: loading, serving, or being stopped. */
  private slots: Slot[] = [];
  private timer: NodeJS.Timeout | null = null;
  private respawns = new Set<NodeJS.Timeout>();
  /** Workers lost in a row without one becoming ready: drives the backoff. */
  private failures = 0;
  private closed = false;
  /** Set once start() has succeeded: before that, a lost worker fails start-up instead. */
  private serving = false;
  private closing: Promise<void> | undefined;
  /** 'change' on every state change; allReady() and close() wait on it. */
  private events = new EventEmitter();
  provider = 'unknown';
  /** Observes each dispatched batch size, by model (metrics). */
  onBatch: (size: number, model: string) => void = () => {};
  /** Observes each worker lost while serving or starting (metrics). */
  onWorkerLost: (reason: WorkerLoss) => void = () => {};

  /** Batch shapes, computed once: every dispatch pads to one of them. */
  private readonly shapes: number[];
  private readonly jobTimeoutMs: number;
  private readonly closeTimeoutMs: number;
  private readonly backoff: { initial: number; max: number };
  private readonly log: PoolLog;

  private constructor(private opts: PoolOptions) {
    this.shapes = batchShapes(opts.batchMaxSize);
    this.jobTimeoutMs = opts.jobTimeoutMs ?? 30_000;
    this.closeTimeoutMs = opts.closeTimeoutMs ?? 5_000;
    this.backoff = opts.respawnDelayMs ?? { initial: 100, max: 30_000 };
    this.log = opts.log ?? { warn: (msg, fields) => console.error(msg, fields) };
  }

  /**
   * Starts one worker and resolves once it has loaded and warmed up its engine; the others
   * start then and join as they finish. Loading the runtime is CPU bound: started together,
   * the workers and the main thread's own start-up compete for the cores and the first
   * request waits for all of them, for capacity a scaled-from-zero pod does not need in
   * its first few hundred milliseconds. A first worker that fails fails start-up.
   */
  static async start(opts: PoolOptions): Promise<InferencePool> {
    const pool = new InferencePool(opts);
    try {
      await pool.spawn();
    } catch (err) {
      await pool.close();
      throw err;
    }
    pool.serving = true;
    for (let i = 1; i < opts.workers; i++) pool.spawn().catch(() => {}); // lost() logs and retries
    return pool;
  }

  /** Resolves when every worker has joined (benchmarks and tests that need them all). */
  allReady(): Promise<void> {
    return this.until(() => this.closed || this.readyWorkers >= this.opts.workers);
  }

  /** Workers loaded and serving; the rest are still starting or being replaced. */
  get readyWorkers(): number {
    return this.slots.filter((s) => s.state === 'ready').length;
  }

  /** Worker threads alive: loading, serving or being stopped. */
  get threads(): number {
    return this.slots.length;
  }

  /** Runs one image on `model`; `signal` drops the job if it fires while the job is still queued. */
  infer(model: string, rgb: Uint8Array, signal?: AbortSignal): Promise<InferenceResult> {
    if (!Object.hasOwn(this.opts.engines, model)) return Promise.reject(new Error(`the pool does not serve ${model}`));
    if (this.closed) return Promise.reject(new WorkerUnavailable('The inference pool is shutting down.'));
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (!this.readyWorkers) return Promise.reject(new WorkerUnavailable('No inference worker is running; one is being restarted.'));
    return new Promise((resolve, reject) => {
      const drop = () => {
        const i = this.queue.indexOf(job);
        if (i < 0) return; // already running: its result is simply not used
        this.queue.splice(i, 1);
        reject(signal!.reason);
        this.changed();
      };
      const done = () => signal?.removeEventListener('abort', drop);
      const job: Job = {
        model,
        rgb,
        enqueued: performance.now(),
        resolve: (r) => (done(), resolve(r)),
        reject: (e) => (done(), reject(e)),
      };
      signal?.addEventListener('abort', drop, { once: true });
      this.queue.push(job);
      this.dispatch();
    });
  }

  /**
   * Lets queued and running jobs finish (a batch past its deadline fails, and queued jobs
   * fail once no worker is left to run them), then asks each worker to dispose its engine
   * and exit, terminating any that has not within closeTimeoutMs.
   */
  close(): Promise<void> {
    return (this.closing ??= this.shutdown());
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    for (const t of this.respawns) clearTimeout(t);
    this.respawns.clear();
    // Workers still loading are asked to stop like the others, not terminated: ending a
    // thread while ONNX Runtime creates its session aborts the whole process. Their 'close'
    // waits in the port until they have loaded (a few hundred ms), then they dispose and exit.
    this.dispatch();
    this.failStranded();
    await this.until(() => !this.queue.length && !this.slots.some((s) => s.busy));
    await Promise.all(this.slots.map((slot) => this.stop(slot)));
  }

  private async stop(slot: Slot): Promise<void> {
    slot.state = 'closing';
    slot.worker.postMessage('close' satisfies ToWorker);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), this.closeTimeoutMs)));
    if (await Promise.race([slot.exited.then(() => false), timedOut])) {
      this.log.warn(`an inference worker did not exit within ${this.closeTimeoutMs} ms of close; terminating it`);
      await slot.worker.terminate();
    }
    clearTimeout(timer);
    this.remove(slot);
  }

  private spawn(): Promise<void> {
    const init: WorkerInit = { engines: this.opts.engines, warmup: this.shapes };
    const worker = new Worker(this.opts.workerFile ?? WORKER_FILE, { workerData: init });
    const slot: Slot = {
      worker,
      state: 'starting',
      busy: null,
      started: 0,
      input: null,
      exited: new Promise((resolve) => worker.once('exit', () => resolve())),
    };
    this.slots.push(slot);
    return new Promise((resolve, reject) => {
      worker.on('message', (msg: FromWorker) => {
        if (msg.type !== 'ready') return this.finish(slot, msg);
        if (slot.state !== 'starting') return;
        slot.state = 'ready';
        this.provider = msg.provider;
        this.failures = 0;
        resolve();
        this.changed();
        this.dispatch();
      });
      worker.on('error', (err) => {
        reject(err);
        this.lost(slot, `crashed (${err.message})`, 'crashed', { error: err });
      });
      worker.on('exit', (code) => {
        reject(new Error(`inference worker exited with code ${code} before it was ready`));
        this.lost(slot, `exited with code ${code}`, 'exited', { exitCode: code });
      });
    });
  }

  private dispatch(): void {
    if (!this.queue.length) return;
    const slot = this.slots.find((s) => s.state === 'ready' && !s.busy);
    if (!slot) return;
    const { batchMaxSize, batchMaxDelayMs } = this.opts;
    const { model, enqueued } = this.queue[0];
    const waiting = this.queue.filter((j) => j.model === model);
    const waited = performance.now() - enqueued;
    if (!this.closed && waiting.length < batchMaxSize && waited < batchMaxDelayMs) {
      this.timer ??= setTimeout(() => {
        this.timer = null;
        this.dispatch();
      }, batchMaxDelayMs - waited);
      return;
    }
    const jobs = waiting.slice(0, batchMaxSize);
    this.queue = this.queue.filter((j) => !jobs.includes(j));
    // The batch filled (or the pool is closing) before its window ended: that window is
    // over; what is left in the queue gets a window of its own.
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    slot.busy = jobs;
    slot.started = performance.now();
    slot.deadline = setTimeout(() => this.lost(slot, `ran one batch for longer than ${this.jobTimeoutMs} ms`, 'timed-out', { timeoutMs: this.jobTimeoutMs }), this.jobTimeoutMs);
    // Pad to a warmed-up shape; the zero rows cost a little compute, a cold shape costs
    // a slow first run (seconds on a GPU) in the middle of live traffic.
    const shape = this.shapes.find((n) => n >= jobs.length)!;
    const input = slot.input ?? new Uint8Array(this.shapes.at(-1)! * IMAGE_VALUES);
    slot.input = null;
    const rgb = input.subarray(0, shape * IMAGE_VALUES);
    jobs.forEach((j, i) => rgb.set(j.rgb, i * IMAGE_VALUES));
    rgb.fill(0, jobs.length * IMAGE_VALUES);
    this.onBatch(jobs.length, model);
    const msg: ToWorker = { model, batch: shape, rgb };
    slot.worker.postMessage(msg, [input.buffer]);
    if (this.queue.length) this.dispatch();
  }

  private finish(slot: Slot, msg: Exclude<FromWorker, { type: 'ready' }>): void {
    if (!this.slots.includes(slot)) return; // a late answer from a worker already given up on
    const jobs = slot.busy ?? [];
    slot.busy = null;
    clearTimeout(slot.deadline);
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
    this.changed();
    this.dispatch();
  }

  /** A worker that died or hung fails its batch and is replaced after a backoff. `cause`: the error, exit code or deadline. */
  private lost(slot: Slot, reason: string, kind: WorkerLoss, cause: Record<string, unknown>): void {
    if (!this.slots.includes(slot)) return; // 'error' is followed by 'exit': handle it once
    const jobs = slot.busy ?? [];
    this.remove(slot);
    jobs.forEach((j) => j.reject(new WorkerUnavailable(`The inference worker ${reason}; retry the request.`)));
    if (this.serving && !this.closed) {
      this.onWorkerLost(kind);
      const delay = Math.min(this.backoff.max, this.backoff.initial * 2 ** this.failures);
      this.failures++;
      this.log.warn(`inference worker ${reason}; starting a replacement in ${delay} ms (attempt ${this.failures})`, {
        loss: kind,
        ...cause,
        failedJobs: jobs.length,
        attempt: this.failures,
        delayMs: delay,
      });
      const timer = setTimeout(() => {
        this.respawns.delete(timer);
        this.spawn().catch(() => {}); // a failed start is lost() again, with a longer delay
      }, delay);
      this.respawns.add(timer);
    }
    this.failStranded();
    this.changed();
  }

  /** Takes a slot out of the pool and stops its thread (a no-op if it has already exited). */
  private remove(slot: Slot): void {
    const i = this.slots.indexOf(slot);
    if (i >= 0) this.slots.splice(i, 1);
    clearTimeout(slot.deadline);
    slot.busy = null;
    void slot.worker.terminate();
  }

  /** Queued jobs fail at once when no worker is ready to run them. */
  private failStranded(): void {
    if (this.readyWorkers || !this.queue.length) return;
    const jobs = this.queue.splice(0);
    jobs.forEach((j) => j.reject(new WorkerUnavailable('No inference worker is running; retry shortly.')));
  }

  private changed(): void {
    this.events.emit('change');
  }

  private until(done: () => boolean): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => {
        if (!done()) return;
        this.events.off('change', check);
        resolve();
      };
      this.events.on('change', check);
    });
  }
}
