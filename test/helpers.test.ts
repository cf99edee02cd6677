// The shared test helpers fail when they should: a helper that cannot fail hides every test
// built on it.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseMetrics } from './metrics.ts';
import { pollUntil, waitForPort, within } from './wait.ts';

async function failure(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected a failure');
}

const poll = suite('pollUntil, waitForPort and within');
poll('pollUntil returns the first truthy value', async () => {
  let n = 0;
  assert.is(await pollUntil('n to reach 3', () => ++n >= 3 && n, { intervalMs: 1 }), 3);
});
poll('pollUntil fails after its timeout, naming what it waited for and the last value', async () => {
  assert.match(await failure(pollUntil('a miracle', () => 0, { timeoutMs: 30, intervalMs: 5 })), /timed out after 30 ms waiting for a miracle \(last: 0\)/);
});
poll('an error in the check fails at once', async () => {
  const started = performance.now();
  assert.match(await failure(pollUntil('x', () => Promise.reject(new Error('broken')), { timeoutMs: 10_000 })), /broken/);
  assert.ok(performance.now() - started < 5_000);
});
poll('waitForPort resolves once a server listens, and fails when nothing does', async () => {
  const server = createServer();
  try {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    await waitForPort(port, { timeoutMs: 5_000 });
    await new Promise((resolve) => server.close(resolve));
    assert.match(await failure(waitForPort(port, { timeoutMs: 100 })), /timed out after 100 ms waiting for 127\.0\.0\.1:\d+ to accept/);
  } finally {
    server.close();
  }
});
poll('waitForPort fails at once when the process that should listen has exited', async () => {
  const child = spawn(process.execPath, ['-e', 'process.exit(3)'], { stdio: 'ignore' });
  await new Promise((resolve) => child.once('exit', resolve));
  assert.match(await failure(waitForPort(1, { timeoutMs: 30_000, child })), /exited \(3\) before listening/);
});
poll('within passes a settled promise through, and fails one that does not settle in time', async () => {
  assert.is(await within(1000, 'a quick answer', Promise.resolve(7)), 7);
  assert.match(await failure(within(1000, 'a failing answer', Promise.reject(new Error('no')))), /^no$/);
  assert.match(await failure(within(20, 'an answer', new Promise(() => {}))), /an answer: not within 20 ms/);
});
poll.run();

const metrics = suite('parseMetrics');
metrics('sums the samples whose labels include the ones asked for; 0 when none', () => {
  const m = parseMetrics([
    '# HELP klassify_requests_total Requests.',
    '# TYPE klassify_requests_total counter',
    'klassify_requests_total{route="/classify",status="200"} 7',
    'klassify_requests_total{route="/classify",status="415"} 2',
    'klassify_requests_total{route="/",status="200"} 1',
    'klassify_in_flight_requests 3',
    'odd{path="a\\"b,c=\\\\d"} 5',
    'klassify_stage_seconds_sum{stage="decode"} 0.25',
  ].join('\n'));
  assert.is(m.value('klassify_requests_total', { route: '/classify', status: '415' }), 2);
  assert.is(m.value('klassify_requests_total', { route: '/classify' }), 9);
  assert.is(m.value('klassify_requests_total'), 10);
  assert.is(m.value('klassify_requests_total', { status: '500' }), 0);
  assert.is(m.value('klassify_in_flight_requests'), 3);
  assert.is(m.value('klassify_in_flight'), 0, 'a prefix is another name');
  assert.is(m.value('odd', { path: 'a"b,c=\\d' }), 5, 'escaped label values');
  assert.is(m.value('klassify_stage_seconds_sum', { stage: 'decode' }), 0.25);
});
metrics.run();
