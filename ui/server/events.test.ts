import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CloudEvent, HTTP } from 'cloudevents';
import { createUiServer, type UiServer } from './app.ts';
import { raw, silentLogger, testConfig } from '../test/support.ts';
import { openSse } from '../test/sse.ts';

interface Ctx {
  ui: UiServer;
  base: string;
}

const CLASSIFIED = 'dev.klassify.image.classified';

/** Delivers `event` the way a Knative Trigger does: binary mode over HTTP POST. */
async function deliver(base: string, event: CloudEvent<unknown>, headers: Record<string, string> = {}) {
  const message = HTTP.binary(event);
  return raw(`${base}/events`, {
    method: 'POST',
    headers: { ...(message.headers as Record<string, string>), ...headers },
    body: message.body as string,
  });
}

function classified(id: string, label = 'Egyptian cat') {
  return new CloudEvent({
    id,
    type: CLASSIFIED,
    source: '/klassify/classify/classify-00001',
    subject: 'chelsea.png',
    datacontenttype: 'application/json',
    data: { predictions: [{ label, classIndex: 285, probability: 0.54 }], servedBy: { pod: 'classify-pod-a' } },
  });
}

async function start(env: Record<string, string> = {}): Promise<Ctx> {
  const ui = createUiServer(await testConfig({ UI_SSE_HEARTBEAT_MS: '50', ...env }), silentLogger);
  return { ui, base: `http://127.0.0.1:${(await ui.listen()).port}` };
}

// ---------------------------------------------------------------------------
const relay = suite<Ctx>('ui server: CloudEvents relay to SSE');
relay.before(async (ctx) => void Object.assign(ctx, await start({ UI_EVENT_BUFFER: '2', UI_MAX_SSE_CLIENTS: '2' })));
relay.after(async (ctx) => ctx.ui.close());

relay('a binary CloudEvent POSTed to /events reaches an open stream', async ({ base, ui }) => {
  const stream = await openSse(`${base}/events/stream`);
  try {
    assert.is(stream.status, 200);
    assert.match(String(stream.headers['content-type']), /^text\/event-stream/);
    assert.match(String(stream.headers['cache-control']), /no-cache/);
    assert.is((await stream.next()).retry, 3000);

    const res = await deliver(base, classified('evt-1'));
    assert.is(res.status, 202);

    const frame = await stream.next();
    assert.is(frame.id, '1');
    const data = JSON.parse(String(frame.data));
    assert.is(data.seq, 1);
    assert.is(data.id, 'evt-1');
    assert.is(data.type, CLASSIFIED);
    assert.is(data.subject, 'chelsea.png');
    assert.is(data.data.predictions[0].label, 'Egyptian cat');
    assert.is(data.data.servedBy.pod, 'classify-pod-a');
    assert.is(ui.hub.clients, 1);
  } finally {
    stream.close();
  }
});

relay('heartbeat comments keep an idle stream open', async ({ base }) => {
  const stream = await openSse(`${base}/events/stream`, { 'Last-Event-ID': '999999' });
  try {
    await stream.next(); // retry
    await stream.next(); // replayed buffer: Last-Event-ID from another run → everything
    let frame = await stream.next(500);
    while (frame.comment === undefined) frame = await stream.next(500);
    assert.is(frame.comment, 'ping');
  } finally {
    stream.close();
  }
});

relay('new subscribers get the last N events; Last-Event-ID skips what they saw', async ({ base }) => {
  await deliver(base, classified('evt-2', 'tabby'));
  await deliver(base, classified('evt-3', 'tiger cat'));
  const fresh = await openSse(`${base}/events/stream`);
  const resumed = await openSse(`${base}/events/stream`, { 'Last-Event-ID': '2' });
  try {
    await fresh.next();
    const replayed = [JSON.parse(String((await fresh.next()).data)).id, JSON.parse(String((await fresh.next()).data)).id];
    assert.equal(replayed, ['evt-2', 'evt-3'], 'buffer of 2 dropped evt-1');
    await resumed.next();
    assert.is(JSON.parse(String((await resumed.next()).data)).id, 'evt-3');
  } finally {
    fresh.close();
    resumed.close();
  }
});

relay('subscribers are capped; disconnects free their slot', async ({ base, ui }) => {
  const a = await openSse(`${base}/events/stream`);
  const b = await openSse(`${base}/events/stream`);
  try {
    const third = await raw(`${base}/events/stream`);
    assert.is(third.status, 503);
    assert.is(third.headers['retry-after'], '30');
    assert.is(JSON.parse(third.text).title, 'Too many event streams');
  } finally {
    a.close();
    b.close();
  }
  for (let i = 0; i < 50 && ui.hub.clients > 0; i += 1) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.is(ui.hub.clients, 0);
});

relay('a structured-mode event is accepted too; other types are acknowledged, not relayed', async ({ base }) => {
  const stream = await openSse(`${base}/events/stream`, { 'Last-Event-ID': '3' });
  try {
    await stream.next();
    const other = HTTP.binary(new CloudEvent({ id: 'x', type: 'dev.klassify.other', source: '/s', data: {} }));
    const ignored = await raw(`${base}/events`, { method: 'POST', headers: other.headers as Record<string, string>, body: other.body as string });
    assert.is(ignored.status, 202);
    const structured = HTTP.structured(new CloudEvent({
      id: 'rej-1',
      type: 'dev.klassify.image.rejected',
      source: '/s',
      data: { title: 'Unsupported image format', status: 415 },
    }));
    const res = await raw(`${base}/events`, { method: 'POST', headers: structured.headers as Record<string, string>, body: structured.body as string });
    assert.is(res.status, 202);
    const data = JSON.parse(String((await stream.next()).data));
    assert.is(data.id, 'rej-1', 'the ignored type never reached the stream');
    assert.is(data.data.title, 'Unsupported image format');
  } finally {
    stream.close();
  }
});

relay('a POST that is not a CloudEvent is a 400 problem', async ({ base }) => {
  const res = await raw(`${base}/events`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"hello":1}' });
  assert.is(res.status, 400);
  assert.is(JSON.parse(res.text).title, 'Not a CloudEvent');
  assert.is((await raw(`${base}/events`)).status, 405);
});
relay.run();

// ---------------------------------------------------------------------------
const hosts = suite('ui server: event senders');
hosts('with UI_EVENTS_ALLOWED_HOSTS, only the cluster-local host may POST /events', async () => {
  const { ui, base } = await start({ UI_EVENTS_ALLOWED_HOSTS: 'ui.klassify.svc.cluster.local' });
  try {
    const outside = await deliver(base, classified('e1'), { Host: 'ui.klassify.example.com' });
    assert.is(outside.status, 403);
    const inside = await deliver(base, classified('e2'), { Host: 'ui.klassify.svc.cluster.local' });
    assert.is(inside.status, 202);
  } finally {
    await ui.close();
  }
});
hosts.run();

// ---------------------------------------------------------------------------
const closing = suite('ui server: shutdown with open streams');
closing('close() ends every event stream', async () => {
  const { ui, base } = await start();
  const stream = await openSse(`${base}/events/stream`);
  await stream.next();
  const closed = ui.close();
  await stream.ended;
  await closed;
  assert.is(ui.hub.clients, 0);
});
closing.run();
