import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { IMAGE_VALUES } from '../src/engines/engine.ts';
import { prepareModel } from '../src/model/prepare.ts';
import { batchShapes, InferencePool } from '../src/pool.ts';
import { testConfig } from '../../../test/support.ts';

async function startPool(opts: { workers?: number; batchMaxSize?: number; batchMaxDelayMs?: number; provider?: 'cpu' | 'webgpu' } = {}) {
  const files = await prepareModel(testConfig());
  return InferencePool.start({
    workers: opts.workers ?? 1,
    engine: { ...files, engine: 'onnx', provider: opts.provider ?? 'cpu', providerFallback: true, intraOpThreads: 1 },
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
  const r = await p.infer(image(100));
  assert.is(r.batchSize, 1);
  assert.ok(r.queueMs < 5, `queued ${r.queueMs} ms`);
  assert.equal(batches, [1]);
  await p.close();
});
batching('requests that wait while the worker is busy are merged, up to the max', async () => {
  const { p, batches } = await pool(4, 0);
  const results = await Promise.all(Array.from({ length: 9 }, (_, i) => p.infer(image(i * 20))));
  assert.equal(batches, [1, 4, 4], `batches ${batches}`);
  // Each request gets its own row back: different inputs, different outputs.
  assert.not.equal(Array.from(results[1].probabilities.slice(0, 5)), Array.from(results[8].probabilities.slice(0, 5)));
  for (const r of results) assert.ok(Math.abs(r.probabilities.reduce((a, b) => a + b, 0) - 1) < 1e-3);
  await p.close();
});
batching('a max delay lets a partial batch fill', async () => {
  const { p, batches } = await pool(4, 30);
  const first = p.infer(image(1));
  await new Promise((r) => setTimeout(r, 5));
  await Promise.all([first, p.infer(image(2)), p.infer(image(3))]);
  assert.equal(batches, [3]);
  await p.close();
});
batching('batches are padded to warmed-up shapes: powers of two and the max', async () => {
  assert.equal(batchShapes(1), [1]);
  assert.equal(batchShapes(8), [1, 2, 4, 8]);
  assert.equal(batchShapes(12), [1, 2, 4, 8, 12]);
  const { p, batches } = await pool(4, 30);
  const results = await Promise.all([p.infer(image(10)), p.infer(image(200)), p.infer(image(90))]);
  assert.equal(batches, [3], 'the metric counts real images');
  const single = await p.infer(image(200));
  for (let i = 0; i < 1000; i++) assert.ok(Math.abs(results[1].probabilities[i] - single.probabilities[i]) < 1e-5, 'padding does not change a row');
  await p.close();
});
batching('batch size 1 never merges', async () => {
  const { p, batches } = await pool(1, 0);
  await Promise.all(Array.from({ length: 5 }, (_, i) => p.infer(image(i))));
  assert.equal(batches, [1, 1, 1, 1, 1]);
  await p.close();
});
batching.run();

const providers = suite('execution provider selection');
providers('webgpu without an adapter fails start-up clearly, or falls back to cpu when allowed', async () => {
  const files = await prepareModel(testConfig());
  const { createEngine } = await import('../src/engines/engine.ts');
  const opts = { ...files, engine: 'onnx' as const, provider: 'webgpu' as const, intraOpThreads: 1 };
  let engine;
  try {
    engine = await createEngine({ ...opts, providerFallback: false });
  } catch (err) {
    assert.is((err as Error).name, 'ConfigError');
    assert.match((err as Error).message, /webgpu execution provider could not start \(Failed to get a WebGPU adapter/);
    assert.match((err as Error).message, /KLASSIFY_PROVIDER=cpu, or KLASSIFY_PROVIDER_FALLBACK=true/);
    const logs: string[] = [];
    engine = await createEngine({ ...opts, providerFallback: true, log: (m) => logs.push(m) });
    assert.is(engine.provider, 'cpu');
    assert.match(logs.join('\n'), /falling back to the cpu provider/);
  }
  // On a machine with a GPU the first call succeeds and reports the GPU provider.
  assert.ok(['webgpu', 'cpu'].includes(engine.provider));
  await engine.dispose();
});
providers('the pool reports the provider its workers actually use', async () => {
  const p = await startPool({ provider: 'webgpu', batchMaxSize: 2 });
  assert.ok(['webgpu', 'cpu'].includes(p.provider));
  const r = await p.infer(new Uint8Array(IMAGE_VALUES));
  assert.is(r.probabilities.length, 1000);
  await p.close();
});
providers.run();

const startup = suite('start-up');
startup('the pool is usable once one worker is warm; the others join after', async () => {
  const p = await startPool({ workers: 2 });
  assert.is(p.readyWorkers, 1);
  assert.is((await p.infer(new Uint8Array(IMAGE_VALUES))).probabilities.length, 1000);
  await p.allReady();
  assert.is(p.readyWorkers, 2);
  await p.close();
});
startup('close() during start-up stops the workers that are still loading', async () => {
  const p = await startPool({ workers: 2 });
  await p.close();
  assert.is(p.readyWorkers, 0);
});
startup.run();
