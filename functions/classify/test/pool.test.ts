import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { MODEL_NAMES } from '../../../contracts/models.ts';
import { IMAGE_VALUES } from '../src/model/mobilenet.ts';
import { prepareModel } from '../src/model/prepare.ts';
import { batchShapes, InferencePool, type PoolLog } from '../src/pool.ts';
import { pollUntil, testConfig, within } from '../../../test/support.ts';

/** The default model: the pool's behaviour does not depend on which. */
const MODEL = testConfig().model;

async function startPool(opts: { workers?: number; batchMaxSize?: number; batchMaxDelayMs?: number; provider?: 'cpu' | 'webgpu' } = {}) {
  const files = await prepareModel(MODEL, testConfig());
  return InferencePool.start({
    workers: opts.workers ?? 1,
    engines: { [MODEL]: { ...files, engine: 'onnx', provider: opts.provider ?? 'cpu', providerFallback: true, intraOpThreads: 1 } },
    batchMaxSize: opts.batchMaxSize ?? 1,
    batchMaxDelayMs: opts.batchMaxDelayMs ?? 0,
  });
}

async function pool(batchMaxSize: number, batchMaxDelayMs = 0) {
  const p = await startPool({ batchMaxSize, batchMaxDelayMs });
  const batches: number[] = [];
  p.onBatch = (n) => batches.push(n);
  return { p, batches };
}

const image = (value: number) => new Uint8Array(IMAGE_VALUES).fill(value);

const batching = suite('micro-batching');
batching('a lone request is dispatched at once, as a batch of one', async () => {
  const { p, batches } = await pool(8, 0);
  const r = await p.infer(MODEL, image(100));
  assert.is(r.batchSize, 1);
  assert.ok(r.queueMs < 5, `queued ${r.queueMs} ms`);
  assert.equal(batches, [1]);
  await p.close();
});
batching('requests that wait while the worker is busy are merged, up to the max', async () => {
  const { p, batches } = await pool(4, 0);
  const results = await Promise.all(Array.from({ length: 9 }, (_, i) => p.infer(MODEL, image(i * 20))));
  assert.equal(batches, [1, 4, 4], `batches ${batches}`);
  // Each request gets its own row back: different inputs, different outputs.
  assert.not.equal(Array.from(results[1].probabilities.slice(0, 5)), Array.from(results[8].probabilities.slice(0, 5)));
  for (const r of results) assert.ok(Math.abs(r.probabilities.reduce((a, b) => a + b, 0) - 1) < 1e-3);
  await p.close();
});
batching('a max delay holds a partial batch until it fills', async () => {
  // A window far longer than the test: only a full batch can be dispatched.
  const { p, batches } = await pool(4, 60_000);
  const waiting = [p.infer(MODEL, image(1)), p.infer(MODEL, image(2))];
  await new Promise((r) => setImmediate(r));
  waiting.push(p.infer(MODEL, image(3)));
  await new Promise((r) => setImmediate(r));
  assert.equal(batches, [], 'nothing dispatched while the batch is partial');
  waiting.push(p.infer(MODEL, image(4)));
  await Promise.all(waiting);
  assert.equal(batches, [4]);
  await p.close();
});
batching('a partial batch goes once its max delay has passed', async () => {
  const { p, batches } = await pool(4, 50);
  const r = await p.infer(MODEL, image(1));
  assert.equal(batches, [1]);
  assert.ok(r.queueMs >= 45, `dispatched after ${r.queueMs} ms`);
  await p.close();
});
batching('batches are padded to warmed-up shapes: powers of two and the max', async () => {
  assert.equal(batchShapes(1), [1]);
  assert.equal(batchShapes(8), [1, 2, 4, 8]);
  assert.equal(batchShapes(12), [1, 2, 4, 8, 12]);
  const { p, batches } = await pool(4, 30);
  const results = await Promise.all([p.infer(MODEL, image(10)), p.infer(MODEL, image(200)), p.infer(MODEL, image(90))]);
  assert.equal(batches, [3], 'the metric counts real images');
  const single = await p.infer(MODEL, image(200));
  for (let i = 0; i < 1000; i++) assert.ok(Math.abs(results[1].probabilities[i] - single.probabilities[i]) < 1e-5, 'padding does not change a row');
  await p.close();
});
batching('batch size 1 never merges', async () => {
  const { p, batches } = await pool(1, 0);
  await Promise.all(Array.from({ length: 5 }, (_, i) => p.infer(MODEL, image(i))));
  assert.equal(batches, [1, 1, 1, 1, 1]);
  await p.close();
});
batching.run();

const models = suite('several models in one pool');
models('each worker holds every model; a batch holds one model, and each answer comes from its own', async () => {
  const config = testConfig();
  const names = MODEL_NAMES;
  const engines = Object.fromEntries(await Promise.all(names.map(async (m) => {
    const files = await prepareModel(m, config);
    return [m, { ...files, engine: 'onnx' as const, provider: 'cpu' as const, providerFallback: true, intraOpThreads: 1 }];
  })));
  const p = await InferencePool.start({ workers: 1, engines, batchMaxSize: 4, batchMaxDelayMs: 0 });
  try {
    const seen: string[] = [];
    p.onBatch = (n, model) => seen.push(`${model}×${n}`);
    const [a, b] = names;
    // The first is dispatched alone; the rest wait and are grouped by model, oldest first.
    const jobs = [a, a, b, a, b, b].map((m, i) => p.infer(m, image(40 + i)));
    const results = await Promise.all(jobs);
    assert.equal(seen, [`${a}×1`, `${a}×2`, `${b}×3`]);
    // Each answer is its own model's: the same image through each model alone gives it.
    for (const [i, m] of [a, a, b, a, b, b].entries()) {
      const alone = await p.infer(m, image(40 + i));
      assert.equal(Array.from(results[i].probabilities.slice(0, 50)), Array.from(alone.probabilities.slice(0, 50)), `${m} job ${i}`);
    }
    const [x, y] = [await p.infer(a, image(44)), results[4]];
    assert.ok(x.probabilities.some((v, k) => Math.abs(v - y.probabilities[k]) > 1e-3), 'the two models answer the same image differently');
    assert.match((await rejection(p.infer('no-such-model', image(1)))).message, /does not serve no-such-model/);
  } finally {
    await p.close();
  }
});
models.run();

const providers = suite('execution provider selection');
providers('webgpu without an adapter fails start-up clearly, or falls back to cpu when allowed', async () => {
  const files = await prepareModel(MODEL, testConfig());
  const { createEngine } = await import('../src/engines/create.ts');
  const opts = { ...files, engine: 'onnx' as const, provider: 'webgpu' as const, intraOpThreads: 1 };
  let engine;
  try {
    engine = await createEngine({ ...opts, providerFallback: false });
  } catch (err) {
    assert.is((err as Error).name, 'ConfigError');
    assert.match((err as Error).message, /webgpu execution provider could not start \(Failed to get a WebGPU adapter/);
    assert.match((err as Error).message, /KLASSIFY_PROVIDER=cpu, or KLASSIFY_PROVIDER_FALLBACK=true/);
    const logs: string[] = [];
    const fallback = await createEngine({ ...opts, providerFallback: true, log: (m) => logs.push(m) });
    try {
      assert.is(fallback.provider, 'cpu');
      assert.match(logs.join('\n'), /falling back to the cpu provider/);
    } finally {
      await fallback.dispose();
    }
    return;
  }
  try {
    // On a machine with a GPU the first call succeeds: without a fallback, what started is the GPU provider.
    assert.is(engine.provider, 'webgpu');
  } finally {
    await engine.dispose();
  }
});
providers('the pool reports the provider its workers actually use', async () => {
  const files = await prepareModel(MODEL, testConfig());
  const { createEngine } = await import('../src/engines/create.ts');
  const engine = await createEngine({ ...files, engine: 'onnx', provider: 'webgpu', providerFallback: true, intraOpThreads: 1, log: () => {} });
  const expected = engine.provider;
  await engine.dispose();
  const p = await startPool({ provider: 'webgpu', batchMaxSize: 2 });
  assert.is(p.provider, expected);
  const r = await p.infer(MODEL, new Uint8Array(IMAGE_VALUES));
  assert.is(r.probabilities.length, 1000);
  await p.close();
});
providers.run();

const startup = suite('start-up');
startup('the pool is usable once one worker is warm; the others join after', async () => {
  const p = await startPool({ workers: 2 });
  assert.is(p.readyWorkers, 1);
  assert.is((await p.infer(MODEL, new Uint8Array(IMAGE_VALUES))).probabilities.length, 1000);
  await p.allReady();
  assert.is(p.readyWorkers, 2);
  await p.close();
});
startup('close() during start-up stops the workers that are still loading', async () => {
  const p = await startPool({ workers: 2 });
  assert.is(p.threads, 2, 'one ready, one loading');
  await p.close();
  assert.is(p.threads, 0);
  assert.is(p.readyWorkers, 0);
});
startup('close() asks each worker to dispose its engine and exit', async () => {
  const logs: string[] = [];
  const files = await prepareModel(MODEL, testConfig());
  const p = await InferencePool.start({
    workers: 1,
    engines: { [MODEL]: { ...files, engine: 'onnx', provider: 'cpu', providerFallback: true, intraOpThreads: 1 } },
    batchMaxSize: 1,
    batchMaxDelayMs: 0,
    closeTimeoutMs: 60_000,
    log: { warn: (m) => logs.push(m) },
  });
  await p.infer(MODEL, image(1));
  await p.close(); // would wait the full minute if the worker did not exit on its own
  assert.is(p.threads, 0);
  assert.equal(logs, []);
});
startup.run();

// ---------------------------------------------------------------------------------------
// Failure paths, with a worker that crashes, hangs or exits on purpose (fault-worker.mjs).

const FAULT_WORKER = new URL('./fault-worker.mjs', import.meta.url).pathname;
const CRASH = 1;
const HANG = 2;
const EXIT_0 = 3;
const EXIT_3 = 4;
const SLOW = 5;

let faulty: InferencePool | undefined;
/** What the pool logged: every line is a warning. */
let logs: string[] = [];
let logFields: Record<string, unknown>[] = [];
const recordLog: PoolLog = {
  warn: (msg, fields = {}) => {
    logs.push(msg);
    logFields.push(fields);
  },
};

async function faultPool(opts: { workers?: number; jobTimeoutMs?: number; closeTimeoutMs?: number } = {}) {
  const files = await prepareModel(MODEL, testConfig());
  faulty = await InferencePool.start({
    workers: opts.workers ?? 1,
    engines: { [MODEL]: { ...files, engine: 'onnx', provider: 'cpu', providerFallback: true, intraOpThreads: 1 } },
    batchMaxSize: 1,
    batchMaxDelayMs: 0,
    jobTimeoutMs: opts.jobTimeoutMs ?? 30_000,
    closeTimeoutMs: opts.closeTimeoutMs ?? 5_000,
    respawnDelayMs: { initial: 20, max: 160 },
    workerFile: FAULT_WORKER,
    log: recordLog,
  });
  return faulty;
}

/** Fails the case instead of hanging it when a promise never settles. */
const bounded = <T>(p: Promise<T>) => within(20_000, 'the pool to answer', p);

async function rejection(p: Promise<unknown>): Promise<Error> {
  const err = await bounded(p.then(() => undefined, (e: Error) => e));
  if (!err) throw new Error('expected a rejection');
  return err;
}

const failures = suite('pool failure paths');
failures.before.each(() => {
  logs = [];
  logFields = [];
  delete process.env.KLASSIFY_FAULT_WORKER_START;
  delete process.env.KLASSIFY_FAULT_WORKER_CLOSE;
});
failures.after.each(async () => {
  delete process.env.KLASSIFY_FAULT_WORKER_START;
  delete process.env.KLASSIFY_FAULT_WORKER_CLOSE;
  await faulty?.close(); // bounded by its own timeouts: closeTimeoutMs and the job deadline
  faulty = undefined;
});

for (const [label, fault, reason, cause] of [
  ['crashes', CRASH, /crashed \(fault worker: crashing on purpose\)/, { loss: 'crashed' }],
  ['exits with code 0', EXIT_0, /exited with code 0/, { loss: 'exited', exitCode: 0 }],
  ['exits with code 3', EXIT_3, /exited with code 3/, { loss: 'exited', exitCode: 3 }],
] as const) {
  failures(`a worker that ${label} fails its job with WorkerUnavailable, is logged as a warning with its cause, and is replaced`, async () => {
    const p = await faultPool();
    const err = await rejection(p.infer(MODEL, image(fault)));
    assert.is(err.name, 'WorkerUnavailable');
    assert.is((err as { code?: string }).code, 'worker-unavailable');
    assert.match(err.message, reason);
    assert.match(logs[0], reason);
    assert.match(logs[0], /starting a replacement in 20 ms \(attempt 1\)/);
    assert.equal({ ...logFields[0], error: undefined }, { ...cause, error: undefined, failedJobs: 1, attempt: 1, delayMs: 20 });
    if (fault === CRASH) assert.match((logFields[0].error as Error).message, /crashing on purpose/, 'the error itself, with its stack');
    await pollUntil('a replacement', () => p.readyWorkers === 1);
    assert.is((await bounded(p.infer(MODEL, image(9)))).probabilities.length, 1000);
  });
}
failures('a job past its deadline has its worker terminated and replaced', async () => {
  const p = await faultPool({ jobTimeoutMs: 300 });
  const started = performance.now();
  const err = await rejection(p.infer(MODEL, image(HANG)));
  assert.is(err.name, 'WorkerUnavailable');
  assert.match(err.message, /longer than 300 ms/);
  assert.ok(performance.now() - started < 300 * 20, 'failed within a generous multiple of the deadline');
  assert.match(logs[0], /ran one batch for longer than 300 ms/);
  assert.equal(logFields[0], { loss: 'timed-out', timeoutMs: 300, failedJobs: 1, attempt: 1, delayMs: 20 });
  await pollUntil('a replacement', () => p.readyWorkers === 1);
  assert.is((await bounded(p.infer(MODEL, image(9)))).probabilities.length, 1000);
});
failures('a worker that keeps failing to start is retried with exponential backoff', async () => {
  const p = await faultPool();
  process.env.KLASSIFY_FAULT_WORKER_START = 'fail';
  await rejection(p.infer(MODEL, image(CRASH)));
  await pollUntil('five attempts', () => logs.length >= 5);
  const delays = logs.slice(0, 5).map((l) => Number(/in (\d+) ms/.exec(l)?.[1]));
  assert.equal(delays, [20, 40, 80, 160, 160]);
  assert.match(logs[1], /failing at start on purpose/);
  // No worker is ready: jobs fail at once instead of waiting.
  assert.is(p.readyWorkers, 0);
  assert.is((await rejection(p.infer(MODEL, image(9)))).name, 'WorkerUnavailable');
  process.env.KLASSIFY_FAULT_WORKER_START = 'ok';
  await pollUntil('recovery', () => p.readyWorkers === 1);
  assert.is((await bounded(p.infer(MODEL, image(9)))).probabilities.length, 1000);
});
failures('a first worker that fails to start fails start-up with its error, and nothing is retried', async () => {
  process.env.KLASSIFY_FAULT_WORKER_START = 'fail';
  const err = await rejection(faultPool());
  assert.match(err.message, /failing at start on purpose/);
  assert.equal(logs, [], 'a replacement is logged as it is scheduled: none was');
});
failures('jobs queued behind a dying worker fail when no worker is left', async () => {
  const p = await faultPool();
  const first = p.infer(MODEL, image(CRASH));
  const queued = [p.infer(MODEL, image(9)), p.infer(MODEL, image(9))];
  assert.is((await rejection(first)).name, 'WorkerUnavailable');
  for (const q of queued) assert.is((await rejection(q)).name, 'WorkerUnavailable');
});
failures('close() ends when nothing can finish: a hung batch and jobs queued behind it', async () => {
  const p = await faultPool({ jobTimeoutMs: 300 });
  const hung = p.infer(MODEL, image(HANG));
  const queued = p.infer(MODEL, image(9));
  const started = performance.now();
  await bounded(p.close());
  assert.ok(performance.now() - started < 300 * 20, `close took ${performance.now() - started} ms`);
  assert.is((await rejection(hung)).name, 'WorkerUnavailable');
  assert.is((await rejection(queued)).name, 'WorkerUnavailable');
  assert.is(p.threads, 0);
  assert.not.match(logs.join('\n'), /replacement/, 'nothing is restarted while closing');
});
failures('close() lets running and queued jobs finish first', async () => {
  const p = await faultPool();
  const jobs = [p.infer(MODEL, image(SLOW)), p.infer(MODEL, image(SLOW))];
  await bounded(p.close());
  for (const j of jobs) assert.is((await bounded(j)).probabilities.length, 1000);
});
failures('close() terminates a worker that does not exit when asked', async () => {
  process.env.KLASSIFY_FAULT_WORKER_CLOSE = 'ignore';
  const p = await faultPool({ closeTimeoutMs: 200 });
  await bounded(p.close());
  assert.is(p.threads, 0);
  assert.match(logs.join('\n'), /did not exit within 200 ms of close; terminating it/);
});
failures('a queued job whose caller has gone is dropped, never run', async () => {
  const p = await faultPool();
  const batches: number[] = [];
  p.onBatch = (n) => batches.push(n);
  const gone = new AbortController();
  const running = p.infer(MODEL, image(SLOW));
  const queued = p.infer(MODEL, image(9), gone.signal);
  gone.abort(new Error('client gone'));
  assert.is((await rejection(queued)).message, 'client gone');
  await bounded(running);
  assert.equal(batches, [1], 'only the first job ran');
  assert.is((await rejection(p.infer(MODEL, image(9), gone.signal))).message, 'client gone', 'an aborted caller is refused at once');
});
failures.run();
