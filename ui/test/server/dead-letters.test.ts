import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import http from 'node:http';
import { DELIVERY_FAILED, SUBMITTED } from '../../../contracts/events.ts';
import { createUiServer, type UiServer } from '../../server/app.ts';
import { raw, silentLogger, testConfig } from '../support.ts';
import { openSse, type SseStream } from '../sse.ts';

const TOKEN = 'dead-letter-token-0123456789';

interface Ctx {
  ui: UiServer;
  base: string;
  /** The same server with a short body deadline, for the stalled upload. */
  quick: UiServer;
  quickBase: string;
  streams: SseStream[];
  requests: http.ClientRequest[];
}

/** The headers Knative adds to a dead letter in binary mode, around the original event's. */
function deadLetterHeaders(extra: Record<string, string> = {}) {
  return {
    'ce-specversion': '1.0',
    'ce-id': 'upload-42',
    'ce-source': '/klassify/emit',
    'ce-type': SUBMITTED,
    'ce-subject': 'big-photo.jpg',
    'ce-knativeerrorcode': '503',
    'ce-knativeerrordest': 'http://classify.klassify.svc.cluster.local/',
    'ce-knativeerrordata': Buffer.from(JSON.stringify({ title: 'Queue full', detail: 'try again', status: 503 })).toString('base64'),
    'content-type': 'image/jpeg',
    ...extra,
  };
}

async function firstData(stream: SseStream) {
  for (;;) {
    const frame = await stream.next(5000);
    if (frame.data !== undefined) return { frame, data: JSON.parse(frame.data) };
  }
}

const dead = suite<Ctx>('ui server: dead letters');
dead.before(async (ctx) => {
  ctx.ui = createUiServer(await testConfig({ UI_EVENTS_TOKEN: TOKEN }), silentLogger);
  ctx.base = `http://127.0.0.1:${(await ctx.ui.listen()).port}`;
  ctx.quick = createUiServer(await testConfig({ UI_EVENTS_TOKEN: TOKEN, UI_DEAD_LETTER_TIMEOUT_MS: '100' }), silentLogger);
  ctx.quickBase = `http://127.0.0.1:${(await ctx.quick.listen()).port}`;
  ctx.streams = [];
  ctx.requests = [];
});
dead.after.each((ctx) => {
  for (const stream of ctx.streams.splice(0)) stream.close();
  for (const req of ctx.requests.splice(0)) req.destroy();
});
dead.after(async (ctx) => {
  await ctx.ui?.close();
  await ctx.quick?.close();
});

dead('a 13 MB submitted event is read and dropped; the feed gets a small failed entry', async (ctx) => {
  const stream = await openSse(`${ctx.base}/events/stream`);
  ctx.streams.push(stream);
  const image = Buffer.alloc(13 * 1024 * 1024, 0xab);
  const res = await raw(`${ctx.base}/dead-letters/${TOKEN}`, { method: 'POST', headers: deadLetterHeaders(), body: image });
  assert.is(res.status, 202);
  const { frame, data } = await firstData(stream);
  assert.ok(String(frame.data).length < 1024, `small entry: ${String(frame.data).length} bytes`);
  assert.is(data.type, DELIVERY_FAILED);
  assert.is(data.id, 'upload-42');
  assert.is(data.subject, 'big-photo.jpg');
  assert.ok(!Number.isNaN(Date.parse(data.time)));
  assert.equal(data.data, {
    eventType: SUBMITTED,
    reason: 'Queue full: try again',
    code: 503,
    destination: 'http://classify.klassify.svc.cluster.local/',
  });
});

dead('without error data the reason is the status; without a token it is a 404', async (ctx) => {
  const stream = await openSse(`${ctx.base}/events/stream`, { 'Last-Event-ID': '1' });
  ctx.streams.push(stream);
  const headers = deadLetterHeaders({ 'ce-id': 'upload-43', 'ce-knativeerrorcode': '500' });
  delete (headers as Record<string, string>)['ce-knativeerrordata'];
  const forged = await raw(`${ctx.base}/dead-letters/not-the-token-000000`, { method: 'POST', headers, body: 'x' });
  assert.is(forged.status, 404);
  const res = await raw(`${ctx.base}/dead-letters/${TOKEN}`, { method: 'POST', headers, body: Buffer.alloc(1000) });
  assert.is(res.status, 202);
  const { data } = await firstData(stream);
  assert.is(data.id, 'upload-43');
  assert.is(data.data.reason, 'Delivery failed with HTTP 500');
});

dead('a body over the limit is a 413 before reading it; a stalled one ends at the deadline', async (ctx) => {
  const over = await raw(`${ctx.base}/dead-letters/${TOKEN}`, { method: 'POST', headers: deadLetterHeaders({ 'content-length': String(40 * 1024 * 1024) }) })
    .catch((error: Error) => ({ status: -1, text: error.message }));
  assert.is(over.status, 413);

  const status = await new Promise<number>((resolve, reject) => {
    const req = http.request(`${ctx.quickBase}/dead-letters/${TOKEN}`, { method: 'POST', headers: deadLetterHeaders({ 'content-length': '100000' }) }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    ctx.requests.push(req);
    req.on('error', reject);
    req.write(Buffer.alloc(1000)); // then nothing more
  });
  assert.is(status, 408);
});
dead.run();
