// The local relay of `npm start`: broker semantics (202, retries like a Trigger, dead letters
// with Knative's extensions) between a function and the real UI server. The "function" here
// is a scripted loopback server, so that failures happen on cue.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CloudEvent, HTTP } from 'cloudevents';
import { CLASSIFIED, DELIVERY_FAILED, SUBMITTED } from '../../contracts/events.ts';
import { createRelay, type Relay } from '../relay.ts';
import { uploadsWhileAnswered } from '../../test/uploader.ts';
import { createUiServer, type UiServer } from '../../ui/server/app.ts';
import { raw, silentLogger, testConfig } from '../../ui/test/support.ts';
import { openSse, type SseStream } from '../../ui/test/sse.ts';

const TOKEN = 'relay-test-token-0123456789';
/** Short, so retried deliveries do not wait out the real 250 ms backoff. */
const RETRY_DELAY_MS = 40;

interface Ctx {
  ui: UiServer;
  uiBase: string;
  fn: http.Server;
  relay: Relay;
  relayUrl: string;
  stream: SseStream;
  /** How the scripted function answers; counts calls. */
  answer: (res: http.ServerResponse) => void;
  calls: number;
  callTimes: number[];
}

async function nextData(stream: SseStream) {
  for (;;) {
    const frame = await stream.next(10_000);
    if (frame.data !== undefined) return JSON.parse(frame.data);
  }
}

function submit(relayUrl: string, id: string, { type = SUBMITTED, headers = {} }: { type?: string; headers?: Record<string, string> } = {}) {
  const message = HTTP.binary(new CloudEvent({ id, type, source: '/test', subject: `${id}.jpg`, datacontenttype: 'image/jpeg', data: Buffer.alloc(2000, 1) }));
  return raw(relayUrl, { method: 'POST', headers: { ...(message.headers as Record<string, string>), ...headers }, body: message.body as Buffer });
}

const relay = suite<Ctx>('local relay: broker semantics between function and UI');
relay.before(async (ctx) => {
  ctx.ui = createUiServer(await testConfig({ UI_EVENTS_TOKEN: TOKEN }), silentLogger);
  ctx.uiBase = `http://127.0.0.1:${(await ctx.ui.listen()).port}`;
  ctx.fn = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      ctx.calls += 1;
      ctx.callTimes.push(performance.now());
      ctx.answer(res);
    });
  });
  await new Promise<void>((resolve) => ctx.fn.listen(0, '127.0.0.1', resolve));
  ctx.relay = createRelay({ functionUrl: `http://127.0.0.1:${(ctx.fn.address() as AddressInfo).port}`, uiUrl: ctx.uiBase, token: TOKEN, port: 0, retryDelayMs: RETRY_DELAY_MS });
  await ctx.relay.listen();
  ctx.relayUrl = ctx.relay.url;
  ctx.stream = await openSse(`${ctx.uiBase}/events/stream`);
});
relay.before.each((ctx) => {
  ctx.calls = 0;
  ctx.callTimes = [];
});
relay.after(async (ctx) => {
  ctx.stream?.close();
  await ctx.relay?.close();
  ctx.fn?.closeAllConnections();
  await new Promise((resolve) => ctx.fn?.close(resolve));
  await ctx.ui?.close();
});

relay('202 at once; the reply event goes on to the feed', async (ctx) => {
  ctx.answer = (res) => {
    const reply = HTTP.binary(new CloudEvent({ id: 'r1', type: CLASSIFIED, source: '/fn', subject: 'ok.jpg', datacontenttype: 'application/json', data: { predictions: [] } }));
    res.writeHead(200, reply.headers as Record<string, string>).end(reply.body as string);
  };
  const accepted = await submit(ctx.relayUrl, 'ok');
  assert.is(accepted.status, 202);
  await ctx.relay.idle();
  const data = await nextData(ctx.stream);
  assert.is(data.type, CLASSIFIED);
  assert.is(data.id, 'r1');
  assert.is(ctx.calls, 1);
});

relay('a function that stays at 503 is retried, then dead-lettered into a "failed" row', async (ctx) => {
  ctx.answer = (res) => {
    res.writeHead(503, { 'Content-Type': 'application/problem+json', 'Retry-After': '1' }).end(JSON.stringify({ title: 'Queue full', status: 503 }));
  };
  assert.is((await submit(ctx.relayUrl, 'busy')).status, 202);
  await ctx.relay.idle();
  assert.is(ctx.calls, 3, 'three attempts, as configured');
  const data = await nextData(ctx.stream);
  assert.is(data.type, DELIVERY_FAILED);
  assert.is(data.id, 'busy');
  assert.is(data.subject, 'busy.jpg');
  assert.is(data.data.reason, 'Queue full');
  assert.is(data.data.code, 503);
  assert.is(data.data.eventType, SUBMITTED);
  const [first, second, third] = ctx.callTimes;
  // Timers may fire a millisecond early: a quarter of slack, far from the doubling checked.
  assert.ok(second - first >= 0.75 * RETRY_DELAY_MS && third - second >= 1.5 * RETRY_DELAY_MS, `the backoff doubles: attempts at ${ctx.callTimes.map((t) => Math.round(t - first))} ms`);
});

relay('a 400 is final: no retries, straight to a dead letter', async (ctx) => {
  ctx.answer = (res) => {
    res.writeHead(400, { 'Content-Type': 'application/problem+json' }).end(JSON.stringify({ title: 'Not a CloudEvent', status: 400 }));
  };
  assert.is((await submit(ctx.relayUrl, 'bad')).status, 202);
  await ctx.relay.idle();
  assert.is(ctx.calls, 1);
  assert.is((await nextData(ctx.stream)).data.reason, 'Not a CloudEvent');
});

relay('what is not a CloudEvent is refused at the relay', async (ctx) => {
  const res = await raw(ctx.relayUrl, { method: 'POST', headers: { 'Content-Type': 'image/jpeg' }, body: 'x' });
  assert.is(res.status, 400);
  assert.is((await raw(`${ctx.relayUrl}/other`, { method: 'POST', body: 'x' })).status, 404);
  assert.is(ctx.calls, 0);
});

relay('without its token nothing reaches the function or the feed', async (ctx) => {
  const base = ctx.relayUrl.slice(0, ctx.relayUrl.lastIndexOf('/'));
  for (const path of ['/', '/events', `/${ctx.relay.ingressToken.slice(1)}`, `/${ctx.relay.ingressToken}x`, `/${TOKEN}`]) {
    const res = await submit(`${base}${path}`, 'forged');
    assert.is(res.status, 404, path);
    assert.is(res.headers.connection, 'close', 'the body is not read');
    assert.not.match(res.text, new RegExp(ctx.relay.ingressToken), 'the token is never echoed');
  }
  assert.is((await raw(ctx.relayUrl)).status, 405);
  await ctx.relay.idle();
  assert.is(ctx.calls, 0);
});

relay('a dead letter carries the function\'s answer, never the sender\'s text', async (ctx) => {
  // The function's detail quotes the event, as a real one does for a bad specversion.
  ctx.answer = (res) => {
    res.writeHead(400, { 'Content-Type': 'application/problem+json' }).end(JSON.stringify({ type: 'https://klassify.dev/problems/malformed-cloudevent', title: 'Invalid CloudEvent', status: 400, detail: 'specversion VISIT-EVIL-EXAMPLE is not supported' }));
  };
  const forged = {
    'ce-knativeerrorcode': '200',
    'ce-knativeerrordata': Buffer.from('{"title":"Sender text"}').toString('base64'),
    'ce-knativeerrordest': 'http://evil.example/',
  };
  assert.is((await submit(ctx.relayUrl, 'sender', { headers: forged })).status, 202);
  await ctx.relay.idle();
  const data = await nextData(ctx.stream);
  assert.is(data.type, DELIVERY_FAILED);
  assert.is(data.data.reason, 'Invalid CloudEvent');
  assert.is(data.data.code, 400);
  assert.match(data.data.destination, /^http:\/\/127\.0\.0\.1:/);
  assert.not.match(JSON.stringify(data), /EVIL|Sender text|evil\.example/);
});

relay('an unreachable function is dead-lettered with the relay\'s own words', async (ctx) => {
  const gone = createRelay({ functionUrl: 'http://127.0.0.1:1', uiUrl: ctx.uiBase, token: TOKEN, port: 0, attempts: 2, retryDelayMs: RETRY_DELAY_MS });
  try {
    await gone.listen();
    const res = await submit(`${gone.url}?wait`, 'nobody');
    assert.is(res.status, 202);
    const outcome = JSON.parse(res.text);
    assert.is(outcome.outcome, 'dead-lettered');
    assert.is(outcome.error, 'ECONNREFUSED');
    assert.is(outcome.attempts, 2);
    const data = await nextData(ctx.stream);
    assert.is(data.data.reason, 'The classify function did not answer');
    assert.is(data.data.code, undefined);
  } finally {
    await gone.close();
  }
});

relay('?wait answers with the outcome; a type no Trigger takes is dropped', async (ctx) => {
  ctx.answer = (res) => {
    const reply = HTTP.binary(new CloudEvent({ id: 'r2', type: CLASSIFIED, source: '/fn', subject: 'ok.jpg', datacontenttype: 'application/json', data: { predictions: [{ label: 'tabby', probability: 0.5 }] } }));
    res.writeHead(200, reply.headers as Record<string, string>).end(reply.body as string);
  };
  const delivered = JSON.parse((await submit(`${ctx.relayUrl}?wait`, 'waited')).text);
  assert.equal(delivered, { outcome: 'delivered', status: 200, reply: { type: CLASSIFIED, data: { predictions: [{ label: 'tabby', probability: 0.5 }] } }, feed: 202 });
  assert.is((await nextData(ctx.stream)).id, 'r2');
  const dropped = JSON.parse((await submit(`${ctx.relayUrl}?wait`, 'other', { type: CLASSIFIED })).text);
  assert.is(dropped.outcome, 'dropped');
  assert.is(ctx.calls, 1, 'the other type never reached the function');
});
relay.run();

// ---------------------------------------------------------------------------------------
// Bodies sent from a child process (test/uploader.ts), so the sender's buffers are not in
// this process's RSS.
const budget = suite<{ fn: http.Server; relay: Relay; released: boolean; release: () => void }>('local relay: bounded in bytes while bodies are read');
budget.before(async (ctx) => {
  // A function that holds every delivery until released, so accepted events stay held.
  // Deliveries still on their way at the release are answered at once.
  let held: http.ServerResponse[] = [];
  ctx.release = () => {
    ctx.released = true;
    for (const res of held.splice(0)) res.writeHead(200).end();
  };
  ctx.fn = http.createServer((req, res) => {
    req.resume();
    if (ctx.released) res.writeHead(200).end();
    else held.push(res);
  });
  await new Promise<void>((resolve) => ctx.fn.listen(0, '127.0.0.1', resolve));
  // More events allowed than the bytes allow: the byte budget is what binds.
  ctx.relay = createRelay({ functionUrl: `http://127.0.0.1:${(ctx.fn.address() as AddressInfo).port}`, uiUrl: 'http://127.0.0.1:1', token: TOKEN, port: 0, maxInFlight: 64, attempts: 1 });
  await ctx.relay.listen();
  held = [];
});
budget.before.each((ctx) => {
  ctx.released = false;
});
budget.after(async (ctx) => {
  ctx.release?.();
  // Refused senders' sockets linger half-closed (server-kit/linger.ts); no need to wait for them.
  ctx.relay?.server.closeAllConnections();
  await ctx.relay?.close();
  ctx.fn?.closeAllConnections();
  await new Promise((resolve) => ctx.fn?.close(resolve));
});

for (const chunked of [false, true]) {
  budget(`16 events of 15 MiB at once (${chunked ? 'chunked' : 'declared'}): at most the 48 MiB budget is held`, async (ctx) => {
    const { port, pathname } = new URL(ctx.relay.url);
    const rss0 = process.memoryUsage().rss;
    const started = performance.now();
    const headers = { 'ce-specversion': '1.0', 'ce-id': 'big', 'ce-source': '/t', 'ce-type': SUBMITTED };
    const statuses = await uploadsWhileAnswered({ port, path: pathname, bytes: 15 * 1024 * 1024, chunked, count: 16, parallel: true, headers });
    const took = performance.now() - started;
    const accepted = statuses.filter((status) => status === 202).length;
    assert.ok(accepted >= 1 && accepted <= 3, `accepted ${accepted}: ${statuses.join(',')}`);
    assert.is(statuses.filter((status) => status === 429).length, 16 - accepted, statuses.join(','));
    assert.ok(ctx.relay.held.peakBytes <= 48 * 1024 * 1024, `peak ${ctx.relay.held.peakBytes} bytes held`);
    assert.ok(took < 30_000, `took ${took} ms`);
    const grown = (process.memoryUsage().rss - rss0) / 1024 / 1024;
    assert.ok(grown < 150, `RSS grew by ${Math.round(grown)} MB`);
    ctx.release();
    await ctx.relay.idle();
    assert.equal({ events: ctx.relay.held.events, bytes: ctx.relay.held.bytes }, { events: 0, bytes: 0 }, 'everything is released');
  });
}
budget.run();
