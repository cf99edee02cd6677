import FakeTimers from '@sinonjs/fake-timers';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  backoff,
  classifyImage,
  parseResult,
  parseRetryAfter,
  type Progress,
  type Transport,
  type TransportResponse,
} from '../../src/lib/classify.ts';

const RESULT = {
  model: 'mobilenet_v1_0.75_224',
  predictions: [{ label: 'Egyptian cat', classIndex: 285, probability: 0.54 }],
  timingMs: { decode: 7.1, queue: 0.1, inference: 4.2, total: 12 },
  servedBy: { pod: 'classify-abc', revision: 'classify-00001', engine: 'onnx', provider: 'cpu' },
};

function answer(status: number, body: unknown, headers: Record<string, string> = {}): TransportResponse {
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return {
    status,
    header: (name) => lower[name.toLowerCase()] ?? null,
    body: typeof body === 'string' ? body : JSON.stringify(body),
  };
}

/** A transport that replays scripted answers; `null` means a network failure. Each answer waits for `answered`. */
function scripted(answers: Array<TransportResponse | null>, answered: Promise<unknown> = Promise.resolve()) {
  const calls: string[] = [];
  const transport: Transport = async ({ url, onUploadProgress, onUploaded }) => {
    calls.push(url);
    onUploadProgress(0.5);
    onUploaded();
    await answered;
    const next = answers.shift();
    if (next === undefined) throw new Error('no more scripted answers');
    if (next === null) throw new Error('network');
    return next;
  };
  return { transport, calls };
}

const file = new Blob([new Uint8Array([0xff, 0xd8, 0xff])], { type: 'image/jpeg' });
const noSleep = { sleep: async () => {} };

const success = suite('classifyImage: success');
success('returns the parsed result and the measured round trip', async () => {
  const { transport, calls } = scripted([answer(200, RESULT)]);
  let clock = 100;
  const phases: string[] = [];
  const outcome = await classifyImage(file, {
    url: '/api/classify?topk=5',
    transport,
    now: () => (clock += 25),
    onProgress: (p) => phases.push(p.phase),
  });
  assert.ok(outcome.ok);
  if (!outcome.ok) return;
  assert.is(outcome.result.predictions[0].label, 'Egyptian cat');
  assert.is(outcome.result.servedBy.pod, 'classify-abc');
  assert.is(outcome.roundTripMs, 25);
  assert.is(outcome.attempts, 1);
  assert.equal(calls, ['/api/classify?topk=5']);
  assert.equal(phases, ['uploading', 'uploading', 'classifying']);
});
success('a 200 that is not a classification is an error, not a crash', async () => {
  const { transport } = scripted([answer(200, '<html>')]);
  const outcome = await classifyImage(file, { url: '/x', transport });
  assert.not.ok(outcome.ok);
  if (!outcome.ok) assert.is(outcome.error.title, 'Unexpected answer from the server');
});
success.run();

/**
 * Runs `fn` with setTimeout and clearTimeout faked, and restores them however it ends.
 * Installed inside the test, not in a hook: the runner's own deadlines stay real.
 */
async function withFakeClock(fn: (clock: ReturnType<typeof FakeTimers.install>) => Promise<void>) {
  const clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout'] });
  try {
    await fn(clock);
  } finally {
    clock.uninstall();
  }
}

const slow = suite('classifyImage: slow answers');
slow('says "waking" once the answer has taken slowAfterMs, not before', () =>
  withFakeClock(async (clock) => {
    let release: (value?: unknown) => void = () => {};
    const { transport } = scripted([answer(200, RESULT)], new Promise((resolve) => (release = resolve)));
    const phases: string[] = [];
    const outcome = classifyImage(file, { url: '/x', transport, slowAfterMs: 1500, onProgress: (p) => phases.push(p.phase) });
    await clock.tickAsync(1499);
    assert.not.ok(phases.includes('waking'), phases.join());
    await clock.tickAsync(1);
    assert.is(phases.at(-1), 'waking');
    release();
    assert.ok((await outcome).ok);
  }));
slow('does not say "waking" for a quick answer, however long one waits after it', () =>
  withFakeClock(async (clock) => {
    const { transport } = scripted([answer(200, RESULT)]);
    const phases: string[] = [];
    await classifyImage(file, { url: '/x', transport, slowAfterMs: 50, onProgress: (p) => phases.push(p.phase) });
    assert.is(clock.countTimers(), 0, 'the timer was cleared');
    await clock.tickAsync(60_000);
    assert.not.ok(phases.includes('waking'));
  }));
slow.run();

const retries = suite('classifyImage: retries');
retries('retries 503 after Retry-After, then succeeds', async () => {
  const { transport, calls } = scripted([
    answer(503, { title: 'Model not ready', status: 503 }, { 'Content-Type': 'application/problem+json', 'Retry-After': '2' }),
    answer(200, RESULT),
  ]);
  const waits: number[] = [];
  const progress: Progress[] = [];
  const outcome = await classifyImage(file, {
    url: '/x',
    transport,
    sleep: async (ms) => {
      waits.push(ms);
    },
    onProgress: (p) => progress.push(p),
  });
  assert.ok(outcome.ok);
  assert.is(outcome.attempts, 2);
  assert.is(calls.length, 2);
  assert.equal(waits, [2000]);
  const retrying = progress.find((p) => p.phase === 'retrying');
  assert.is(retrying?.reason?.title, 'Model not ready');
  assert.is(retrying?.retryInMs, 2000);
});
retries('Retry-After is clamped so a hostile header cannot stall the page', async () => {
  const { transport } = scripted([answer(429, '', { 'Retry-After': '3600' }), answer(200, RESULT)]);
  const waits: number[] = [];
  await classifyImage(file, { url: '/x', transport, maxRetryDelayMs: 10_000, sleep: async (ms) => void waits.push(ms) });
  assert.equal(waits, [10_000]);
});
retries('gives up after maxAttempts and shows the last problem', async () => {
  const busy = () => answer(503, { title: 'Overloaded', detail: 'Queue full' }, { 'content-type': 'application/problem+json' });
  const { transport, calls } = scripted([busy(), busy(), busy()]);
  const outcome = await classifyImage(file, { url: '/x', transport, maxAttempts: 3, ...noSleep });
  assert.not.ok(outcome.ok);
  assert.is(calls.length, 3);
  if (!outcome.ok) {
    assert.is(outcome.error.title, 'Overloaded');
    assert.is(outcome.error.detail, 'Queue full');
    assert.is(outcome.attempts, 3);
  }
});
retries('network failures back off and retry; offline stops at once', async () => {
  const first = scripted([null, answer(200, RESULT)]);
  const waits: number[] = [];
  const ok = await classifyImage(file, { url: '/x', transport: first.transport, sleep: async (ms) => void waits.push(ms) });
  assert.ok(ok.ok);
  assert.equal(waits, [1000]);

  const offline = scripted([null, answer(200, RESULT)]);
  const failed = await classifyImage(file, { url: '/x', transport: offline.transport, isOnline: () => false, ...noSleep });
  assert.not.ok(failed.ok);
  if (!failed.ok) assert.is(failed.error.title, 'You are offline');
  assert.is(offline.calls.length, 1);
});
retries('client errors are final: no retry on 415', async () => {
  const { transport, calls } = scripted([
    answer(415, { title: 'Unsupported image format', detail: 'SVG is not supported' }, { 'content-type': 'application/problem+json' }),
  ]);
  const outcome = await classifyImage(file, { url: '/x', transport, ...noSleep });
  assert.is(calls.length, 1);
  assert.not.ok(outcome.ok);
  if (!outcome.ok) assert.is(outcome.error.detail, 'SVG is not supported');
});
retries.run();

const headers = suite('parseRetryAfter and backoff');
headers('delay-seconds and HTTP-date', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  assert.is(parseRetryAfter('3', now), 3000);
  assert.is(parseRetryAfter(' 0 ', now), 0);
  assert.is(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', now), 5000);
  assert.is(parseRetryAfter('Wed, 31 Dec 2025 00:00:00 GMT', now), 0);
  assert.is(parseRetryAfter('-1', now), null);
  assert.is(parseRetryAfter('1.5', now), null);
  assert.is(parseRetryAfter('soon', now), null);
  assert.is(parseRetryAfter(null, now), null);
});
headers('exponential backoff within bounds', () => {
  assert.equal([1, 2, 3, 4, 5, 6].map((n) => backoff(n, 250, 10_000)), [1000, 2000, 4000, 8000, 10_000, 10_000]);
});
headers.run();

const results = suite('parseResult');
results('keeps what the card shows and tolerates missing optional parts', () => {
  const parsed = parseResult(JSON.stringify({ predictions: [{ label: 'tabby', probability: 0.3 }] }));
  assert.equal(parsed, {
    model: 'unknown model',
    predictions: [{ label: 'tabby', classIndex: -1, probability: 0.3 }],
    timingMs: {},
    servedBy: { pod: undefined, revision: null, engine: undefined, provider: undefined },
  });
});
results('rejects malformed predictions', () => {
  assert.is(parseResult('{"predictions":[{"label":1}]}'), null);
  assert.is(parseResult('{"predictions":"x"}'), null);
  assert.is(parseResult('nope'), null);
});
results.run();
