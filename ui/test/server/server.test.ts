import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import zlib from 'node:zlib';
import { MODEL_NAMES, MODEL_TITLES } from '../../../contracts/models.ts';
import { problemType } from '../../../contracts/problems.ts';
import { createUiServer, type UiServer } from '../../server/app.ts';
import { builtUi, raw, silentLogger, testConfig } from '../support.ts';

interface Ctx {
  ui: UiServer;
  base: string;
}

async function start(env: Record<string, string> = {}): Promise<Ctx> {
  const ui = createUiServer(await testConfig(env), silentLogger);
  const { port } = await ui.listen();
  return { ui, base: `http://127.0.0.1:${port}` };
}

// ---------------------------------------------------------------------------
const page = suite<Ctx>('ui server: page and security headers');
page.before(async (ctx) => void Object.assign(ctx, await start()));
page.after(async (ctx) => ctx.ui.close());

page('GET / serves index.html with a strict CSP and no-cache', async ({ base }) => {
  const res = await raw(`${base}/`);
  assert.is(res.status, 200);
  assert.match(String(res.headers['content-type']), /text\/html/);
  assert.is(res.headers['cache-control'], 'no-cache');
  const csp = String(res.headers['content-security-policy']);
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'(;|$)/);
  assert.match(csp, /style-src 'self'(;|$)/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.match(csp, /connect-src 'self'/);
  assert.not.match(csp, /unsafe-(eval|inline)/);
  assert.is(res.headers['x-content-type-options'], 'nosniff');
  assert.is(res.headers['referrer-policy'], 'no-referrer');
  assert.is(res.headers['x-frame-options'], 'DENY');
  assert.is(res.headers['cross-origin-opener-policy'], 'same-origin');
  assert.match(res.text, /<script type="module" src="\/assets\/app-[A-Z0-9]+\.js" integrity="sha384-/);
  assert.not.match(res.text, /<script>(?!<\/script>)/, 'no inline script');
});

page('hashed assets are precompressed and immutable', async ({ base }) => {
  const { publicDir, assets } = await builtUi();
  const original = await readFile(path.join(publicDir, assets.js));

  const br = await raw(`${base}${assets.js}`, { headers: { 'Accept-Encoding': 'gzip, deflate, br' } });
  assert.is(br.status, 200);
  assert.is(br.headers['content-encoding'], 'br');
  assert.is(br.headers['cache-control'], 'public, max-age=31536000, immutable');
  assert.match(String(br.headers['content-type']), /javascript/);
  assert.is(br.headers.vary, 'Accept-Encoding');
  assert.ok(br.body.length < original.length / 2, 'brotli is much smaller');
  assert.ok(zlib.brotliDecompressSync(br.body).equals(original));

  const gz = await raw(`${base}${assets.css}`, { headers: { 'Accept-Encoding': 'gzip' } });
  assert.is(gz.headers['content-encoding'], 'gzip');
  assert.match(String(gz.headers['content-type']), /text\/css/);
  assert.ok(zlib.gunzipSync(gz.body).equals(await readFile(path.join(publicDir, assets.css))));

  const plain = await raw(`${base}${assets.js}`);
  assert.is(plain.headers['content-encoding'], undefined);
  assert.ok(plain.body.equals(original));
});

page('ETag revalidation answers 304', async ({ base }) => {
  const first = await raw(`${base}/`);
  const etag = String(first.headers.etag);
  const again = await raw(`${base}/`, { headers: { 'If-None-Match': etag } });
  assert.is(again.status, 304);
  assert.ok(again.headers['content-security-policy']);
});

page('unknown paths and methods are problem+json', async ({ base }) => {
  const missing = await raw(`${base}/nope.js`);
  assert.is(missing.status, 404);
  assert.is(missing.headers['content-type'], 'application/problem+json');
  assert.equal(JSON.parse(missing.text), {
    type: problemType('not-found'),
    title: 'Not found',
    status: 404,
    detail: 'Nothing is served at /nope.js.',
    instance: '/nope.js',
  });
  const wrong = await raw(`${base}/`, { method: 'DELETE' });
  assert.is(wrong.status, 405);
  assert.is(wrong.headers.allow, 'GET, HEAD');
  assert.is(JSON.parse(wrong.text).title, 'Method not allowed');
});

page('Range on a static file: RFC 9110 answers, never a dropped connection', async ({ base }) => {
  const whole = await raw(`${base}/favicon.svg`, { headers: { 'Accept-Encoding': 'identity' } });
  const size = whole.body.length;
  assert.ok(size > 10);

  const part = await raw(`${base}/favicon.svg`, { headers: { Range: 'bytes=2-5' } });
  assert.is(part.status, 206);
  assert.is(part.headers['content-range'], `bytes 2-5/${size}`);
  assert.ok(part.body.equals(whole.body.subarray(2, 6)));

  const suffix = await raw(`${base}/favicon.svg`, { headers: { Range: 'bytes=-4' } });
  assert.is(suffix.status, 206);
  assert.is(suffix.headers['content-range'], `bytes ${size - 4}-${size - 1}/${size}`);
  assert.ok(suffix.body.equals(whole.body.subarray(size - 4)));

  const open = await raw(`${base}/favicon.svg`, { headers: { Range: `bytes=${size - 3}-` } });
  assert.is(open.status, 206);
  assert.is(open.body.length, 3);

  for (const range of ['bytes=5-2', `bytes=${size}-`, `bytes=${size + 10}-${size + 20}`, 'bytes=-0', 'bytes=x-y', 'bytes=', 'garbage']) {
    const res = await raw(`${base}/favicon.svg`, { headers: { Range: range } });
    assert.is(res.status, 416, range);
    assert.is(res.headers['content-range'], `bytes */${size}`, range);
    assert.is(res.headers['content-type'], 'application/problem+json', range);
  }
  // Ignored, as the RFC allows: another unit, several ranges, If-Range.
  for (const headers of [{ Range: 'items=0-1' } as Record<string, string>, { Range: 'bytes=0-1, 4-5' }, { Range: 'bytes=0-1', 'If-Range': '"x"' }]) {
    const res = await raw(`${base}/favicon.svg`, { headers });
    assert.is(res.status, 200, JSON.stringify(headers));
    assert.ok(res.body.equals(whole.body));
  }
  assert.is((await raw(`${base}/`)).status, 200, 'still serving');
});

page('HEAD / has headers and no body', async ({ base }) => {
  const res = await raw(`${base}/`, { method: 'HEAD' });
  assert.is(res.status, 200);
  assert.is(res.body.length, 0);
});
page.run();

// ---------------------------------------------------------------------------
const [V1, V2] = MODEL_NAMES;

const cfg = suite<Ctx>('ui server: /config.json and health');
cfg.before(async (ctx) =>
  void Object.assign(ctx, await start({ UI_TOPK: '3', UI_FEATURE_EVENTS: 'false', UI_MAX_BODY_BYTES: '2048', UI_UPLOAD_CONCURRENCY: '2', KLASSIFY_MODELS: `${V2},${V1}`, KLASSIFY_MODEL: V2 })),
);
cfg.after(async (ctx) => ctx.ui.close());

cfg('config.json comes from the environment and is revalidated', async ({ base }) => {
  const res = await raw(`${base}/config.json`);
  assert.is(res.status, 200);
  assert.is(res.headers['cache-control'], 'no-cache');
  assert.match(String(res.headers['content-type']), /application\/json/);
  assert.equal(JSON.parse(res.text), {
    classifyUrl: '/api/classify',
    readinessUrl: '/api/health/readiness',
    eventsUrl: '/events/stream',
    maxUploadBytes: 2048,
    maxPixels: 50_000_000,
    maxDimension: 32_768,
    topK: 3,
    uploadConcurrency: 2,
    slowAfterMs: 1500,
    maxAttempts: 4,
    features: { events: false, camera: true, prewarm: true },
    eventSource: false,
    models: [{ name: V2, title: MODEL_TITLES[V2] }, { name: V1, title: MODEL_TITLES[V1] }],
    defaultModel: V2,
  });
});

cfg('liveness and readiness', async ({ base }) => {
  assert.is((await raw(`${base}/health/liveness`)).status, 200);
  const ready = await raw(`${base}/health/readiness`);
  assert.is(ready.status, 200);
  assert.equal(JSON.parse(ready.text), { status: 'ok' });
  assert.is((await raw(`${base}/health/readiness`, { method: 'POST' })).status, 405);
});
cfg.run();

// ---------------------------------------------------------------------------
const csp = suite('ui server: CSP with a cross-origin classify URL');
csp('connect-src allows exactly that origin', async () => {
  const { ui, base } = await start({ UI_PUBLIC_CLASSIFY_URL: 'https://classify.example.com/classify' });
  try {
    const res = await raw(`${base}/`);
    assert.match(String(res.headers['content-security-policy']), /connect-src 'self' https:\/\/classify\.example\.com;/);
    const config = JSON.parse((await raw(`${base}/config.json`)).text);
    assert.is(config.classifyUrl, 'https://classify.example.com/classify');
    assert.is(config.readinessUrl, '', 'no proxied readiness probe for a direct URL');
  } finally {
    await ui.close();
  }
});
csp.run();

// ---------------------------------------------------------------------------
const shutdown = suite('ui server: graceful close');
shutdown('close() lets an in-flight request finish, then stops listening', async () => {
  const upstream = http.createServer();
  let answer!: () => void;
  const upstreamGotRequest = new Promise<void>((resolve) => {
    upstream.once('request', (_req, res: http.ServerResponse) => {
      answer = () => res.end('{"late":true}');
      resolve();
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const { port } = upstream.address() as AddressInfo;
  const { ui, base } = await start({ CLASSIFY_URL: `http://127.0.0.1:${port}` });
  try {
    const inflight = raw(`${base}/api/health/readiness`);
    await upstreamGotRequest;
    const closing = ui.close();
    answer(); // only once the UI server is closing: the request is in flight throughout
    await closing;
    const res = await inflight;
    assert.is(res.status, 200);
    assert.is(res.text, '{"late":true}');
    await raw(`${base}/health/liveness`).then(
      () => assert.unreachable('still listening'),
      (error: NodeJS.ErrnoException) => assert.is(error.code, 'ECONNREFUSED'),
    );
  } finally {
    upstream.close();
  }
});
shutdown('refuses to start without a built page, naming the fix', async () => {
  const config = await testConfig({});
  assert.throws(
    () => createUiServer({ ...config, publicDir: '/nonexistent' }, silentLogger),
    /build the UI first/,
  );
});
shutdown.run();
