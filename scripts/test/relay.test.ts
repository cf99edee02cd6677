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
import { createUiServer, type UiServer } from '../../ui/server/app.ts';
import { raw, silentLogger, testConfig } from '../../ui/test/support.ts';
import { openSse, type SseStream } from '../../ui/test/sse.ts';

const TOKEN = 'relay-test-token-0123456789';

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
}

async function nextData(stream: SseStream) {
  for (;;) {
    const frame = await stream.next(10_000);
    if (frame.data !== undefined) return JSON.parse(frame.data);
  }
}

function submit(relayUrl: string, id: string) {
  const message = HTTP.binary(new CloudEvent({ id, type: SUBMITTED, source: '/test', subject: `${id}.jpg`, datacontenttype: 'image/jpeg', data: Buffer.alloc(2000, 1) }));
  return raw(relayUrl, { method: 'POST', headers: message.headers as Record<string, string>, body: message.body as Buffer });
}

const relay = suite<Ctx>('local relay: broker semantics between function and UI');
relay.before(async (ctx) => {
  ctx.ui = createUiServer(await testConfig({ UI_EVENTS_TOKEN: TOKEN }), silentLogger);
  ctx.uiBase = `http://127.0.0.1:${(await ctx.ui.listen()).port}`;
  ctx.fn = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      ctx.calls += 1;
      ctx.answer(res);
    });
  });
  await new Promise<void>((resolve) => ctx.fn.listen(0, '127.0.0.1', resolve));
  ctx.relay = createRelay({ functionUrl: `http://127.0.0.1:${(ctx.fn.address() as AddressInfo).port}`, uiUrl: ctx.uiBase, token: TOKEN, port: 0 });
  ctx.relayUrl = `http://127.0.0.1:${(await ctx.relay.listen()).port}/`;
  ctx.stream = await openSse(`${ctx.uiBase}/events/stream`);
});
relay.before.each((ctx) => {
  ctx.calls = 0;
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
  assert.is((await raw(`${ctx.relayUrl}other`, { method: 'POST', body: 'x' })).status, 404);
  assert.is(ctx.calls, 0);
});
relay.run();
