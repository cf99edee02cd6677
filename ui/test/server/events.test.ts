import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import net from 'node:net';
import { CloudEvent, HTTP } from 'cloudevents';
import { CLASSIFIED, REJECTED } from '../../../contracts/events.ts';
import { problemType } from '../../../contracts/problems.ts';
import { createUiServer, type UiServer } from '../../server/app.ts';
import { pollUntil, raw, silentLogger, testConfig, within } from '../support.ts';
import { openSse, type SseStream } from '../sse.ts';

interface Ctx {
  ui: UiServer;
  base: string;
  streams: SseStream[];
  sockets: net.Socket[];
}

const TOKEN = 'test-token-0123456789abcdef';

/** Delivers `event` the way a Knative Trigger does: binary mode over HTTP POST. */
async function deliver(base: string, event: CloudEvent<unknown>, { path = `/events/${TOKEN}`, headers = {} }: { path?: string; headers?: Record<string, string> } = {}) {
  const message = HTTP.binary(event);
  return raw(`${base}${path}`, {
    method: 'POST',
    headers: { ...(message.headers as Record<string, string>), ...headers },
    body: message.body as string,
  });
}

function classified(id: string, label = 'Egyptian cat', extra: Record<string, unknown> = {}) {
  return new CloudEvent({
    id,
    type: CLASSIFIED,
    source: '/klassify/classify/classify-00001',
    subject: 'chelsea.png',
    datacontenttype: 'application/json',
    data: { predictions: [{ label, classIndex: 285, probability: 0.54 }], servedBy: { pod: 'classify-pod-a' }, ...extra },
  });
}

async function start(env: Record<string, string> = {}) {
  const ui = createUiServer(await testConfig({ UI_SSE_HEARTBEAT_MS: '50', UI_EVENTS_TOKEN: TOKEN, ...env }), silentLogger);
  return { ui, base: `http://127.0.0.1:${(await ui.listen()).port}` };
}

const until = (check: () => boolean, what: string) => pollUntil(what, check, { timeoutMs: 5000 });

/** Reads frames until one carries data (skipping retry and heartbeat frames). */
async function nextData(stream: SseStream, timeoutMs = 2000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const frame = await stream.next(Math.max(1, deadline - Date.now()));
    if (frame.data !== undefined) return { id: frame.id, data: JSON.parse(frame.data) };
  }
}

/** Every suite registers what it opens here; `after.each` closes it even when a test fails. */
function tracked<T extends Ctx>(name: string, env: Record<string, string> = {}) {
  const s = suite<T>(name);
  s.before(async (ctx) => {
    Object.assign(ctx, await start(env));
    ctx.streams = [];
    ctx.sockets = [];
  });
  s.after.each((ctx) => {
    for (const stream of ctx.streams.splice(0)) stream.close();
    for (const socket of ctx.sockets.splice(0)) socket.destroy();
  });
  s.after(async (ctx) => ctx.ui.close());
  return s;
}

async function open(ctx: Ctx, headers: Record<string, string> = {}) {
  const stream = await openSse(`${ctx.base}/events/stream`, headers);
  ctx.streams.push(stream);
  return stream;
}

// ---------------------------------------------------------------------------
const relay = tracked('ui server: CloudEvents relay to SSE', { UI_EVENT_BUFFER: '2', UI_MAX_SSE_CLIENTS: '2' });

relay('a binary CloudEvent POSTed to /events/<token> reaches an open stream', async (ctx) => {
  const stream = await open(ctx);
  assert.is(stream.status, 200);
  assert.match(String(stream.headers['content-type']), /^text\/event-stream/);
  assert.match(String(stream.headers['cache-control']), /no-cache/);
  assert.is((await stream.next()).retry, 3000);

  const res = await deliver(ctx.base, classified('evt-1'));
  assert.is(res.status, 202);

  const { id, data } = await nextData(stream);
  assert.is(id, '1');
  assert.is(data.seq, 1);
  assert.is(data.id, 'evt-1');
  assert.is(data.type, CLASSIFIED);
  assert.is(data.subject, 'chelsea.png');
  assert.is(data.data.predictions[0].label, 'Egyptian cat');
  assert.is(data.data.servedBy.pod, 'classify-pod-a');
  assert.is(ctx.ui.hub.clients, 1);
});

relay('heartbeat comments keep an idle stream open', async (ctx) => {
  const stream = await open(ctx, { 'Last-Event-ID': '999999' });
  let frame = await stream.next(500);
  while (frame.comment === undefined) frame = await stream.next(500);
  assert.is(frame.comment, 'ping');
});

relay('new subscribers get the last N events; Last-Event-ID skips what they saw', async (ctx) => {
  await deliver(ctx.base, classified('evt-2', 'tabby'));
  await deliver(ctx.base, classified('evt-3', 'tiger cat'));
  const fresh = await open(ctx);
  const resumed = await open(ctx, { 'Last-Event-ID': '2' });
  const replayed = [(await nextData(fresh)).data.id, (await nextData(fresh)).data.id];
  assert.equal(replayed, ['evt-2', 'evt-3'], 'buffer of 2 dropped evt-1');
  assert.is((await nextData(resumed)).data.id, 'evt-3');
});

relay('subscribers are capped; disconnects free their slot', async (ctx) => {
  const a = await open(ctx);
  const b = await open(ctx);
  const third = await raw(`${ctx.base}/events/stream`);
  assert.is(third.status, 503);
  assert.is(third.headers['retry-after'], '30');
  assert.is(JSON.parse(third.text).title, 'Too many event streams');
  a.close();
  b.close();
  await until(() => ctx.ui.hub.clients === 0, 'slots to free');
});

relay('a structured-mode event is accepted too; other types are acknowledged, not relayed', async (ctx) => {
  const stream = await open(ctx, { 'Last-Event-ID': '3' });
  const other = HTTP.binary(new CloudEvent({ id: 'x', type: 'dev.klassify.other', source: '/s', data: {} }));
  const ignored = await raw(`${ctx.base}/events/${TOKEN}`, { method: 'POST', headers: other.headers as Record<string, string>, body: other.body as string });
  assert.is(ignored.status, 202);
  const structured = HTTP.structured(new CloudEvent({
    id: 'rej-1',
    type: REJECTED,
    source: '/s',
    data: { title: 'Unsupported image format', status: 415 },
  }));
  const res = await raw(`${ctx.base}/events/${TOKEN}`, { method: 'POST', headers: structured.headers as Record<string, string>, body: structured.body as string });
  assert.is(res.status, 202);
  const { data } = await nextData(stream);
  assert.is(data.id, 'rej-1', 'the ignored type never reached the stream');
  assert.is(data.data.title, 'Unsupported image format');
});

relay('a POST that is not a CloudEvent is a 400 problem; GET is 405', async (ctx) => {
  const res = await raw(`${ctx.base}/events/${TOKEN}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"hello":1}' });
  assert.is(res.status, 400);
  assert.is(JSON.parse(res.text).title, 'Not a CloudEvent');
  assert.not.match(res.text, new RegExp(TOKEN), 'the token is never echoed');
  assert.is((await raw(`${ctx.base}/events/${TOKEN}`)).status, 405);
});
relay.run();

// ---------------------------------------------------------------------------
const forged = tracked('ui server: only the event source writes to the feed');

forged('without the token, or with a wrong one, any Host: 404 and nothing reaches a browser', async (ctx) => {
  const stream = await open(ctx);
  const hosts = ['ui.klassify.svc.cluster.local', 'ui.klassify.example.com', 'localhost'];
  const paths = ['/events', '/events/', `/events/${TOKEN}x`, `/events/${TOKEN.slice(0, -1)}`, '/events/stream/x', `/dead-letters/wrong-token-0123456789`, '/dead-letters'];
  for (const path of paths) {
    for (const host of hosts) {
      const res = await deliver(ctx.base, classified(`forged ${path} ${host}`, 'forged'), { path, headers: { Host: host } });
      assert.is(res.status, 404, `${path} with Host ${host}`);
      assert.is(res.headers['content-type'], 'application/problem+json');
      assert.is(res.headers.connection, 'close', 'the unread body is not drained');
      assert.not.match(res.text, /test-token/, 'no token in the answer');
    }
  }
  // The real source goes through, and it is the first thing the stream sees.
  assert.is((await deliver(ctx.base, classified('real'))).status, 202);
  const { data } = await nextData(stream);
  assert.is(data.id, 'real');
});

forged('an oversized event is a 413 and a deeply nested one a 422; the feed stays healthy', async (ctx) => {
  const big = await deliver(ctx.base, classified('big', 'x'.repeat(20_000)));
  assert.is(big.status, 413);
  assert.is(JSON.parse(big.text).title, 'Event too large');
  const huge = await raw(`${ctx.base}/events/${TOKEN}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: 'x'.repeat(200_000) });
  assert.is(huge.status, 413);

  const nested = '['.repeat(30_000) + ']'.repeat(30_000);
  const deep = await raw(`${ctx.base}/events/${TOKEN}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'ce-specversion': '1.0', 'ce-id': 'deep', 'ce-type': CLASSIFIED, 'ce-source': '/s' },
    body: nested,
  });
  assert.is(deep.status, 422);
  assert.is(JSON.parse(deep.text).title, 'Event nested too deeply');
  // 33 levels inside the data: still too deep.
  const justOver = await deliver(ctx.base, classified('over', 'ok', { nest: JSON.parse('['.repeat(32) + ']'.repeat(32)) }));
  assert.is(justOver.status, 422);
  const atLimit = await deliver(ctx.base, classified('fits', 'ok', { nest: JSON.parse('['.repeat(28) + ']'.repeat(28)) }));
  assert.is(atLimit.status, 202);

  const stream = await open(ctx);
  assert.is((await stream.next()).retry, 3000);
  const replayed: string[] = [];
  while (replayed.at(-1) !== 'fits') replayed.push((await nextData(stream)).data.id);
  assert.not.ok(replayed.some((id) => ['big', 'deep', 'over'].includes(id)), `replay: ${replayed.join(', ')}`);
  let frame = await stream.next(1000);
  while (frame.comment === undefined) frame = await stream.next(1000);
  assert.is(frame.comment, 'ping', 'heartbeats continue');
});
forged.run();

const stalled = tracked('ui server: a stalled event body', { UI_DEAD_LETTER_TIMEOUT_MS: '100' });

stalled('ends at the deadline with a 408, and the connection closes', async (ctx) => {
  const socket = net.connect(Number(new URL(ctx.base).port), '127.0.0.1');
  ctx.sockets.push(socket);
  socket.on('error', () => {});
  let answer = '';
  socket.on('data', (chunk: Buffer) => (answer += chunk));
  const closed = new Promise((resolve) => socket.once('close', resolve));
  socket.write(`POST /events/${TOKEN} HTTP/1.1\r\nHost: ui\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"id":`);
  // The server ends it; a generous multiple of the deadline bounds the wait.
  await within(10_000, 'the server to end the stalled body', closed);
  const [head, body] = answer.split('\r\n\r\n');
  assert.match(head, /^HTTP\/1\.1 408 /);
  assert.match(head, /connection: close/i);
  assert.match(head, /content-type: application\/problem\+json/i);
  assert.equal(JSON.parse(body), {
    type: problemType('request-timeout'),
    title: 'Event too slow',
    status: 408,
    detail: 'The body did not arrive within 100 ms.',
    instance: '/events/…',
  });
});
stalled.run();

// ---------------------------------------------------------------------------
const slow = tracked('ui server: a stalled reader is dropped at its byte limit', { UI_SSE_MAX_BUFFER_BYTES: '131072', UI_EVENT_BUFFER: '4' });

slow('a client that never reads is cut off; a reading client gets every event', async (ctx) => {
  const port = new URL(ctx.base).port;
  const stalled = net.connect(Number(port), '127.0.0.1');
  ctx.sockets.push(stalled);
  stalled.pause(); // never reads: the server's writes pile up
  stalled.write('GET /events/stream HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n');
  const reader = await open(ctx);
  await until(() => ctx.ui.hub.clients === 2, 'both streams');

  // 12 MB in all, more than loopback's socket buffers hold.
  const padding = 'p'.repeat(12_000);
  for (let i = 0; i < 1000; i += 1) {
    ctx.ui.hub.publish({ id: `bulk-${i}`, type: CLASSIFIED, source: '/s', data: { padding } });
    // Give the reading client turns to read, as a real browser on its own machine has.
    if (i % 4 === 3) await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await until(() => ctx.ui.hub.droppedSlowReaders >= 1, 'the stalled reader to be dropped');
  await until(() => ctx.ui.hub.clients === 1, 'only the reader left');

  let last = '';
  while (last !== 'bulk-999') last = (await nextData(reader, 5000)).data.id;
  let frame = await reader.next(1000);
  while (frame.comment === undefined) frame = await reader.next(1000);
  assert.is(frame.comment, 'ping', 'heartbeats continue after the drop');
});
slow.run();

// ---------------------------------------------------------------------------
const perClient = tracked('ui server: streams per client address', { UI_MAX_SSE_PER_CLIENT: '2' });

perClient('one address may hold only its share; spoofed X-Forwarded-For entries do not help', async (ctx) => {
  await open(ctx, { 'X-Forwarded-For': '203.0.113.9' });
  await open(ctx, { 'X-Forwarded-For': 'spoof-1, 203.0.113.9' });
  const third = await raw(`${ctx.base}/events/stream`, { headers: { 'X-Forwarded-For': 'spoof-2, 203.0.113.9' } });
  assert.is(third.status, 429);
  assert.is(third.headers['retry-after'], '30');
  assert.is(JSON.parse(third.text).title, 'Too many event streams from this address');
  const other = await open(ctx, { 'X-Forwarded-For': '198.51.100.7' });
  assert.is(other.status, 200, 'another address still gets a stream');
});

perClient.run();

const lifetime = tracked('ui server: an event stream\'s lifetime', { UI_SSE_MAX_LIFETIME_MS: '100' });
lifetime('a stream ends after its maximum lifetime and the slot frees', async (ctx) => {
  const stream = await open(ctx, { 'X-Forwarded-For': '192.0.2.1' });
  await within(10_000, 'the server to end the stream', stream.ended);
  await until(() => ctx.ui.hub.clients === 0, 'the slot to free');
});
lifetime.run();

// ---------------------------------------------------------------------------
const noSource = suite('ui server: no event source configured');
noSource('every ingress path is 404 and /config.json says there is no source', async () => {
  const { ui, base } = await start({ UI_EVENTS_TOKEN: '' });
  try {
    for (const path of ['/events', '/events/', '/events/x', '/dead-letters/', '/dead-letters/anything']) {
      assert.is((await deliver(base, classified('e'), { path })).status, 404, path);
    }
    assert.is(JSON.parse((await raw(`${base}/config.json`)).text).eventSource, false);
  } finally {
    await ui.close();
  }
});
noSource.run();

// ---------------------------------------------------------------------------
const closing = suite('ui server: shutdown with open streams');
closing('close() ends every event stream', async () => {
  const { ui, base } = await start();
  const stream = await openSse(`${base}/events/stream`);
  try {
    await stream.next();
    const closed = ui.close();
    await stream.ended;
    await closed;
    assert.is(ui.hub.clients, 0);
  } finally {
    stream.close();
    await ui.close();
  }
});
closing.run();
