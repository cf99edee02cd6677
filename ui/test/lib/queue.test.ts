import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createQueue } from '../../src/lib/queue.ts';

/** A task whose completion the test controls. */
function deferred() {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

const bounded = suite('queue: bounded concurrency');
bounded('runs at most `concurrency` tasks at once, in FIFO order', async () => {
  const queue = createQueue({ concurrency: 4 });
  const gates = Array.from({ length: 10 }, deferred);
  const started: number[] = [];
  let running = 0;
  let peak = 0;
  gates.forEach((gate, index) =>
    queue.push(async () => {
      started.push(index);
      running += 1;
      peak = Math.max(peak, running);
      await gate.promise;
      running -= 1;
    }),
  );
  assert.is(queue.active, 4);
  assert.is(queue.pending, 6);
  assert.equal(started, [0, 1, 2, 3]);
  gates[2].resolve();
  await tick();
  assert.equal(started, [0, 1, 2, 3, 4]);
  for (const gate of gates) gate.resolve();
  await queue.onIdle();
  assert.is(peak, 4);
  assert.equal(started, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.is(queue.active, 0);
});
bounded('rejects a nonsensical concurrency up front', () => {
  assert.throws(() => createQueue({ concurrency: 0 }), /positive integer/);
  assert.throws(() => createQueue({ concurrency: 1.5 }), /positive integer/);
});
bounded.run();

const failures = suite('queue: failures');
failures('a failing task is reported and does not stall the queue', async () => {
  const errors: unknown[] = [];
  const queue = createQueue({ concurrency: 1, onError: (error) => errors.push(error) });
  const done: string[] = [];
  queue.push(async () => {
    throw new Error('boom');
  });
  queue.push(async () => {
    done.push('second');
  });
  await queue.onIdle();
  assert.equal(done, ['second']);
  assert.is(errors.length, 1);
  assert.is((errors[0] as Error).message, 'boom');
});
failures.run();

const clearing = suite('queue: clear and idle');
clearing('clear drops waiting tasks but lets running ones finish', async () => {
  const queue = createQueue({ concurrency: 1 });
  const gate = deferred();
  const ran: number[] = [];
  queue.push(async () => {
    ran.push(1);
    await gate.promise;
  });
  queue.push(async () => {
    ran.push(2);
  });
  queue.push(async () => {
    ran.push(3);
  });
  assert.is(queue.clear(), 2);
  gate.resolve();
  await queue.onIdle();
  assert.equal(ran, [1]);
});
clearing('onIdle resolves at once when empty, and only once a running task ends', async () => {
  const queue = createQueue({ concurrency: 2 });
  let idle = false;
  void queue.onIdle().then(() => (idle = true));
  await Promise.resolve();
  assert.ok(idle, 'an empty queue is idle without waiting for anything');
  const gate = deferred();
  queue.push(() => gate.promise);
  idle = false;
  const waited = queue.onIdle().then(() => (idle = true));
  await tick();
  assert.not.ok(idle, 'not idle while a task runs');
  gate.resolve();
  await waited;
  assert.is(queue.active, 0);
});
clearing.run();
