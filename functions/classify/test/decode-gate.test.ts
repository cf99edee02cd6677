import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { DecodeGate } from '../src/decode-gate.ts';
import { ClientClosed } from '../src/errors.ts';

/** Whether a promise has settled, after the microtasks queued so far have run. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise((r) => setImmediate(r));
  return done;
}

const gate = suite('decode gate');
gate('admits decodes while their bytes fit, then makes the next wait', async () => {
  const g = new DecodeGate(100, 10);
  const a = await g.acquire(60);
  const b = await g.acquire(40);
  const c = g.acquire(1);
  assert.not.ok(await settled(c), 'the budget is full');
  assert.equal(g.inUse, { bytes: 100, decodes: 2, waiting: 1 });
  a();
  a(); // releasing twice frees once
  assert.ok(await settled(c));
  (await c)();
  b();
  assert.equal(g.inUse, { bytes: 0, decodes: 0, waiting: 0 });
});
gate('a small decode goes ahead of a large one that does not fit yet', async () => {
  const g = new DecodeGate(100, 10);
  const held = await g.acquire(50);
  const large = g.acquire(80);
  const small = g.acquire(10);
  assert.ok(await settled(small), 'the small one fits in what is free');
  assert.not.ok(await settled(large));
  (await small)();
  held();
  assert.ok(await settled(large), 'the large one runs once the budget frees');
  (await large)();
});
gate('one decode larger than the whole budget still runs, alone', async () => {
  const g = new DecodeGate(100, 10);
  const huge = await g.acquire(500);
  assert.equal(g.inUse.bytes, 100);
  const next = g.acquire(1);
  assert.not.ok(await settled(next));
  huge();
  (await next)();
});
gate('caps the number of decodes as well as their bytes', async () => {
  const g = new DecodeGate(1000, 2);
  const releases = [await g.acquire(1), await g.acquire(1)];
  const third = g.acquire(1);
  assert.not.ok(await settled(third));
  releases[0]();
  (await third)();
  releases[1]();
});
gate('a waiter whose client goes is dropped and lets the others through', async () => {
  const g = new DecodeGate(100, 10);
  const held = await g.acquire(50);
  const client = new AbortController();
  const large = g.acquire(80, client.signal);
  const small = g.acquire(40);
  assert.ok(await settled(small));
  client.abort();
  try {
    await large;
    assert.unreachable('an aborted waiter must reject');
  } catch (err) {
    assert.instance(err, ClientClosed);
  }
  assert.equal(g.inUse.waiting, 0);
  (await small)();
  held();
  assert.equal(g.inUse, { bytes: 0, decodes: 0, waiting: 0 });
  const gone = new AbortController();
  gone.abort();
  try {
    await g.acquire(1, gone.signal);
    assert.unreachable('an already aborted signal must reject');
  } catch (err) {
    assert.instance(err, ClientClosed);
  }
  assert.equal(g.inUse.decodes, 0);
});
gate.run();
