// A worker thread that owns one inference engine per served model. ONNX Runtime's
// session.run blocks its thread, so inference lives here and the main thread stays free for
// HTTP and health checks.
import { parentPort, workerData } from 'node:worker_threads';
import { createEngine } from './engines/create.ts';
import type { Engine, EngineOptions } from './engines/engine.ts';
import { IMAGE_VALUES } from './model/mobilenet.ts';
import { log } from './log.ts';

export interface WorkerInit {
  /** The engine for each served model, by name. */
  engines: Record<string, EngineOptions>;
  /** Batch sizes to run once before reporting ready: each new size is slow the first time. */
  warmup: number[];
}

/** One batch at a time, so no ids are needed; 'close' disposes the engines and ends the thread. */
export type ToWorker = { model: string; batch: number; rgb: Uint8Array } | 'close';
export type FromWorker =
  | { type: 'ready'; provider: string }
  /** rgb: the batch's input buffer, handed back for the pool to reuse. */
  | { type: 'result'; output: Float32Array; inferenceMs: number; rgb: Uint8Array }
  | { type: 'failed'; message: string };

const port = parentPort!;
const init = workerData as WorkerInit;
const engines = new Map<string, Engine>();
for (const [model, opts] of Object.entries(init.engines)) {
  const engine = await createEngine({ ...opts, log: log.warn });
  engines.set(model, engine);
  for (const size of init.warmup) await engine.run(new Uint8Array(size * IMAGE_VALUES), size);
}
post({ type: 'ready', provider: [...engines.values()][0].provider });

port.on('message', async (job: ToWorker) => {
  if (job === 'close') {
    for (const engine of engines.values()) await engine.dispose();
    port.close(); // nothing else keeps the thread alive: it exits with code 0
    return;
  }
  try {
    const t0 = performance.now();
    // The bytes go straight in: the engine scales them to the model's range.
    const engine = engines.get(job.model);
    if (!engine) throw new Error(`this worker has no engine for ${job.model}`);
    const output = await engine.run(job.rgb, job.batch);
    post({ type: 'result', output, inferenceMs: performance.now() - t0, rgb: job.rgb }, [output.buffer as ArrayBuffer, job.rgb.buffer as ArrayBuffer]);
  } catch (err) {
    post({ type: 'failed', message: (err as Error).message });
  }
});

function post(msg: FromWorker, transfer: ArrayBuffer[] = []) {
  port.postMessage(msg, transfer);
}
