// A worker thread that owns one inference engine. ONNX Runtime's session.run blocks its
// thread, so inference lives here and the main thread stays free for HTTP and health checks.
import { parentPort, workerData } from 'node:worker_threads';
import { createEngine, IMAGE_VALUES, normalize, type EngineOptions } from './engines/engine.ts';

export interface WorkerInit {
  engine: EngineOptions;
  /** Batch sizes to run once before reporting ready: each new size is slow the first time. */
  warmup: number[];
}

export type ToWorker = { id: number; batch: number; rgb: Uint8Array };
export type FromWorker =
  | { type: 'ready'; provider: string; loadMs: number }
  /** rgb: the batch's input buffer, handed back for the pool to reuse. */
  | { type: 'result'; id: number; output: Float32Array; inferenceMs: number; rgb: Uint8Array }
  | { type: 'failed'; id: number; message: string };

const port = parentPort!;
const init = workerData as WorkerInit;
const started = performance.now();
const engine = await createEngine({ ...init.engine, log: (msg) => console.error(msg) });
for (const size of init.warmup) await engine.run(new Float32Array(size * IMAGE_VALUES), size);
post({ type: 'ready', provider: engine.provider, loadMs: performance.now() - started });

// One input array, reused and grown to the largest batch seen: a fresh 600 KB array per
// request left glibc's per-thread arenas fragmented, ~35 MB more RSS under load
// (docs/performance.md). The pool sends a worker one batch at a time, so it is never in
// use twice.
let inputBuffer = new Float32Array(0);
const inputFor = (batch: number) => {
  if (inputBuffer.length < batch * IMAGE_VALUES) inputBuffer = new Float32Array(batch * IMAGE_VALUES);
  return inputBuffer.subarray(0, batch * IMAGE_VALUES);
};

port.on('message', async (job: ToWorker | 'close') => {
  if (job === 'close') {
    await engine.dispose();
    port.close();
    return;
  }
  try {
    const input = inputFor(job.batch);
    normalize(job.rgb, input);
    const t0 = performance.now();
    const output = await engine.run(input, job.batch);
    post({ type: 'result', id: job.id, output, inferenceMs: performance.now() - t0, rgb: job.rgb }, [output.buffer as ArrayBuffer, job.rgb.buffer as ArrayBuffer]);
  } catch (err) {
    post({ type: 'failed', id: job.id, message: (err as Error).message });
  }
});

function post(msg: FromWorker, transfer: ArrayBuffer[] = []) {
  port.postMessage(msg, transfer);
}
