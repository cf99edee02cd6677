import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import http, { type IncomingMessage, type Server } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { problemType } from '../../../contracts/problems.ts';
import { createUiServer, type UiServer } from '../../server/app.ts';
import { freePort, raw, silentLogger, testConfig, within } from '../support.ts';
import { uploadsWhileAnswered } from '../../../test/uploader.ts';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

interface Ctx {
  ui: UiServer;
  base: string;
  upstream: Server;
  seen: Seen[];
  /** How the fake function answers the next request. */
  reply: (req: IncomingMessage, res: http.ServerResponse, body: Buffer) => void;
}

const LIMIT = 4096;

const proxy = suite<Ctx>('ui server: /api proxy to the classify function');
proxy.before(async (ctx) => {
  ctx.seen = [];
  ctx.upstream = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      ctx.seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      ctx.reply(req, res, body);
    });
  });
  await new Promise<void>((resolve) => ctx.upstream.listen(0, '127.0.0.1', resolve));
  const { port } = ctx.upstream.address() as AddressInfo;
  ctx.ui = createUiServer(
    await testConfig({ CLASSIFY_URL: `http://127.0.0.1:${port}`, UI_MAX_BODY_BYTES: String(LIMIT), UI_PROXY_TIMEOUT_MS: '300' }),
    silentLogger,
  );
  ctx.base = `http://127.0.0.1:${(await ctx.ui.listen()).port}`;
});
proxy.before.each((ctx) => {
  ctx.seen.length = 0;
  ctx.reply = (_req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end('{"ok":true}');
  };
});
proxy.after(async (ctx) => {
  await ctx.ui.close();
  ctx.upstream.closeAllConnections();
  await new Promise((resolve) => ctx.upstream.close(resolve));
});

proxy('POST /api/classify streams the body to /classify with the query', async (ctx) => {
  const image = Buffer.alloc(3000, 7);
  const res = await raw(`${ctx.base}/api/classify?topk=3`, {
    method: 'POST',
    headers: { 'Content-Type': 'image/png', 'Content-Length': image.length, Cookie: 'session=secret', 'X-Request-Id': 'req-1' },
    body: image,
  });
  assert.is(res.status, 200);
  assert.equal(JSON.parse(res.text), { ok: true });
  assert.is(ctx.seen.length, 1);
  const [seen] = ctx.seen;
  assert.is(seen.method, 'POST');
  assert.is(seen.url, '/classify?topk=3');
  assert.ok(seen.body.equals(image));
  assert.is(seen.headers['content-type'], 'image/png');
  assert.is(seen.headers['x-request-id'], 'req-1');
  assert.is(seen.headers.cookie, undefined, 'cookies stay at the UI');
  assert.is(seen.headers['x-forwarded-for'], '127.0.0.1');
  assert.match(String(seen.headers['x-forwarded-host']), /^127\.0\.0\.1:\d+$/);
  assert.match(String(seen.headers.host), /^127\.0\.0\.1:\d+$/);
});

proxy('chunked uploads under the limit pass through', async (ctx) => {
  const res = await new Promise<number>((resolve, reject) => {
    const req = http.request(`${ctx.base}/api/classify`, { method: 'POST', headers: { 'Content-Type': 'image/jpeg' } }, (r) => {
      r.resume();
      r.on('end', () => resolve(r.statusCode ?? 0));
    });
    req.on('error', reject);
    req.write(Buffer.alloc(1000, 1));
    setTimeout(() => req.end(Buffer.alloc(1000, 2)), 10);
  });
  assert.is(res, 200);
  assert.is(ctx.seen[0].body.length, 2000);
  assert.ok(ctx.seen[0].headers['x-request-id'], 'a request id is added when missing');
});

proxy('the function\'s problem+json, status and Retry-After come back unchanged', async (ctx) => {
  ctx.reply = (_req, res) => {
    res.writeHead(503, { 'Content-Type': 'application/problem+json', 'Retry-After': '3', Connection: 'keep-alive' });
    res.end(JSON.stringify({ title: 'Overloaded', status: 503 }));
  };
  const res = await raw(`${ctx.base}/api/classify`, { method: 'POST', headers: { 'Content-Type': 'image/png' }, body: 'x' });
  assert.is(res.status, 503);
  assert.is(res.headers['retry-after'], '3');
  assert.is(res.headers['content-type'], 'application/problem+json');
  assert.is(JSON.parse(res.text).title, 'Overloaded');
  assert.ok(res.headers['content-security-policy'], 'UI security headers still apply');
});

proxy('413 before contacting the function when Content-Length is over the limit', async (ctx) => {
  const res = await raw(`${ctx.base}/api/classify`, {
    method: 'POST',
    headers: { 'Content-Type': 'image/png', 'Content-Length': LIMIT + 1 },
    body: Buffer.alloc(LIMIT + 1),
  });
  assert.is(res.status, 413);
  assert.is(res.headers['content-type'], 'application/problem+json');
  assert.is(JSON.parse(res.text).title, 'Image too large');
  assert.is(ctx.seen.length, 0);
});

proxy('413 when a chunked body grows past the limit', async (ctx) => {
  // The function's side of the request: forwarded, then cut by the proxy.
  let forwarded: () => void = () => {};
  const upstreamClosed = new Promise<boolean>((resolve) => {
    ctx.upstream.once('request', (req: IncomingMessage) => {
      forwarded();
      req.once('close', () => resolve(req.complete));
    });
  });
  const status = await new Promise<number>((resolve, reject) => {
    const req = http.request(`${ctx.base}/api/classify`, { method: 'POST', headers: { 'Content-Type': 'image/png' } }, (r) => {
      r.resume();
      resolve(r.statusCode ?? 0);
    });
    req.on('error', reject);
    req.write(Buffer.alloc(LIMIT));
    forwarded = () => req.end(Buffer.alloc(LIMIT)); // past the limit once the first part has reached the function
  });
  assert.is(status, 413);
  assert.is(await within(10_000, 'the proxy to close the forwarded request', upstreamClosed), false, 'the function never got a complete request');
  assert.is(ctx.seen.length, 0);
});

proxy('only the routes the page uses are forwarded', async (ctx) => {
  const metrics = await raw(`${ctx.base}/api/metrics`);
  assert.is(metrics.status, 404);
  const wrong = await raw(`${ctx.base}/api/classify`);
  assert.is(wrong.status, 405);
  assert.is(wrong.headers.allow, 'POST');
  const ready = await raw(`${ctx.base}/api/health/readiness`);
  assert.is(ready.status, 200);
  assert.is(ctx.seen.map((s) => s.url).join(), '/health/readiness');
});

proxy('504 with Retry-After when the function does not answer in time', async (ctx) => {
  ctx.reply = () => {}; // never answers
  const res = await raw(`${ctx.base}/api/classify`, { method: 'POST', headers: { 'Content-Type': 'image/png' }, body: 'x' });
  assert.is(res.status, 504);
  assert.is(res.headers['retry-after'], '5');
  assert.is(JSON.parse(res.text).title, 'Classify function timed out');
});
proxy.run();

const down = suite('ui server: classify function down');
down('502 problem+json with a clear title when nothing listens', async () => {
  const port = await freePort();
  const ui = createUiServer(await testConfig({ CLASSIFY_URL: `http://127.0.0.1:${port}` }), silentLogger);
  const base = `http://127.0.0.1:${(await ui.listen()).port}`;
  try {
    const res = await raw(`${base}/api/classify`, { method: 'POST', headers: { 'Content-Type': 'image/png' }, body: 'x' });
    assert.is(res.status, 502);
    assert.is(res.headers['content-type'], 'application/problem+json');
    assert.is(res.headers['retry-after'], '2');
    const problem = JSON.parse(res.text);
    assert.is(problem.title, 'Classify function unreachable');
    assert.is(problem.type, problemType('upstream-unreachable'));
    assert.not.match(res.text, /127\.0\.0\.1|ECONNREFUSED/, 'no internals leak');
  } finally {
    await ui.close();
  }
});
down.run();

const large = suite('ui server: large uploads');
large('a 6 MB photo streams through without buffering or listener leaks', async () => {
  const warnings: string[] = [];
  const onWarning = (warning: Error) => warnings.push(warning.message);
  process.on('warning', onWarning);
  const upstream = http.createServer((req, res) => {
    let size = 0;
    req.on('data', (chunk: Buffer) => (size += chunk.length));
    req.on('end', () => res.end(JSON.stringify({ size })));
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const { port } = upstream.address() as AddressInfo;
  const ui = createUiServer(await testConfig({ CLASSIFY_URL: `http://127.0.0.1:${port}`, UI_MAX_BODY_BYTES: String(8 * 1024 * 1024) }), silentLogger);
  const base = `http://127.0.0.1:${(await ui.listen()).port}`;
  try {
    const body = Buffer.alloc(6 * 1024 * 1024, 3);
    const res = await raw(`${base}/api/classify`, { method: 'POST', headers: { 'Content-Type': 'image/jpeg' }, body });
    assert.is(res.status, 200);
    assert.equal(JSON.parse(res.text), { size: body.length });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(warnings, []);
  } finally {
    process.off('warning', onWarning);
    await ui.close();
    await new Promise((resolve) => upstream.close(resolve));
  }
});
large.run();

// ---------------------------------------------------------------------------
const early = suite('ui server: a function that answers 503 and closes under the upload');
early('every overloaded upload comes back 503 with Retry-After, never 502', async () => {
  // As the function does when its queue is full: answer before reading the body,
  // then drop the socket while the proxy is still sending.
  const upstream = http.createServer((req, res) => {
    res.writeHead(503, { 'Content-Type': 'application/problem+json', 'Retry-After': '3', Connection: 'close' });
    res.end(JSON.stringify({ title: 'Queue full', status: 503 }), () => req.socket.destroy());
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const { port } = upstream.address() as AddressInfo;
  const ui = createUiServer(await testConfig({ CLASSIFY_URL: `http://127.0.0.1:${port}`, UI_MAX_BODY_BYTES: String(8 * 1024 * 1024) }), silentLogger);
  const base = `http://127.0.0.1:${(await ui.listen()).port}`;
  try {
    const body = Buffer.alloc(4 * 1024 * 1024, 9);
    const statuses: number[] = [];
    const retryAfters: string[] = [];
    for (let round = 0; round < 4; round += 1) {
      const answers = await Promise.all(Array.from({ length: 6 }, () =>
        raw(`${base}/api/classify`, { method: 'POST', headers: { 'Content-Type': 'image/jpeg' }, body }).catch((error: Error) => ({ status: -1, headers: {} as Record<string, string>, text: error.message }))));
      for (const answer of answers) {
        statuses.push(answer.status);
        retryAfters.push(String(answer.headers['retry-after']));
      }
    }
    assert.equal([...new Set(statuses)], [503], `statuses: ${statuses.join(',')}`);
    assert.ok(retryAfters.every((value) => value === '3' || value === '1'), retryAfters.join(','));
  } finally {
    await ui.close();
    upstream.closeAllConnections();
    await new Promise((resolve) => upstream.close(resolve));
  }
});
early.run();

// ---------------------------------------------------------------------------
const headers = suite('ui server: request headers by allowlist');
headers('1,100 junk headers before Content-Type: the function gets the right ones only', async () => {
  let seen: IncomingMessage['headers'] = {};
  let seenBody = Buffer.alloc(0);
  const upstream = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      seen = req.headers;
      seenBody = Buffer.concat(chunks);
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const { port } = upstream.address() as AddressInfo;
  const ui = createUiServer(await testConfig({ CLASSIFY_URL: `http://127.0.0.1:${port}` }), silentLogger);
  const base = `http://127.0.0.1:${(await ui.listen()).port}`;
  try {
    const junk: Record<string, string> = {};
    for (let i = 0; i < 1100; i += 1) junk[`x-j${i}`] = '1';
    const body = Buffer.from('image bytes');
    const res = await raw(`${base}/api/classify`, {
      method: 'POST',
      headers: { ...junk, 'Content-Type': 'image/png', 'Content-Length': body.length, Authorization: 'Bearer secret', 'X-Request-Id': 'r-9' },
      body,
    });
    assert.is(res.status, 200);
    assert.is(seen['content-type'], 'image/png');
    assert.is(seen['content-length'], String(body.length));
    assert.is(seen.host, `127.0.0.1:${port}`);
    assert.is(seen['x-request-id'], 'r-9');
    assert.is(seen.authorization, undefined);
    assert.is(seen['x-j0'], undefined);
    assert.ok(seenBody.equals(body));
  } finally {
    await ui.close();
    await new Promise((resolve) => upstream.close(resolve));
  }
});
headers.run();

// ---------------------------------------------------------------------------
const answered = suite('ui server: the function answers before the upload ends');
answered('the answer reaches the client and the connection closes, not drained while the client trickles', async () => {
  // As the function does with a body that arrives too slowly: answer 408 and close, with
  // the rest of the upload unread.
  const upstream = http.createServer((req, res) => {
    req.once('data', () => {
      res.writeHead(408, { 'Content-Type': 'application/problem+json', Connection: 'close' });
      res.end(JSON.stringify({ title: 'Request body too slow', status: 408 }), () => req.socket.destroy());
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const { port } = upstream.address() as AddressInfo;
  const ui = createUiServer(await testConfig({ CLASSIFY_URL: `http://127.0.0.1:${port}` }), silentLogger);
  const uiPort = (await ui.listen()).port;
  const socket = net.connect(uiPort, '127.0.0.1');
  const trickle = setInterval(() => socket.writable && socket.write('x'), 100);
  try {
    socket.on('error', () => {});
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now())));
    const t0 = performance.now();
    socket.write('POST /api/classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\nContent-Length: 1000000\r\n\r\nxx');
    // The client would go on for 300 s (Node's request timeout); 10 s is far past the close.
    const ended = await within(10_000, 'the UI server to close the connection', closed);
    assert.match(received, /^HTTP\/1\.1 408 /, received);
    assert.match(received, /Request body too slow/);
    assert.ok(ended - t0 < 10_000);
  } finally {
    clearInterval(trickle);
    socket.destroy();
    await ui.close();
    upstream.closeAllConnections();
    await new Promise((resolve) => upstream.close(resolve));
  }
});
answered.run();

// ---------------------------------------------------------------------------
const staged = suite('ui server: an error answer reaches a client that is still sending');
staged('a 413 is read by a client still uploading, every time, declared or chunked', async () => {
  // A function that reads whatever it gets: the only answer left is the proxy's own 413.
  const upstream = http.createServer((req, res) => req.resume().on('end', () => res.end('{}')));
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const upstreamPort = (upstream.address() as AddressInfo).port;
  const ui = createUiServer(await testConfig({ CLASSIFY_URL: `http://127.0.0.1:${upstreamPort}`, UI_MAX_BODY_BYTES: String(LIMIT) }), silentLogger);
  const { port } = await ui.listen();
  try {
    for (const chunked of [false, true]) {
      const statuses = await uploadsWhileAnswered({ port, path: '/api/classify', bytes: 1024 * 1024, chunked, count: 15 });
      assert.equal([...new Set(statuses)], [413], `${chunked ? 'chunked' : 'declared'}: ${statuses.join(',')}`);
    }
  } finally {
    await ui.close();
    upstream.closeAllConnections();
    await new Promise((resolve) => upstream.close(resolve));
  }
});
staged.run();
