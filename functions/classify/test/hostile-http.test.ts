// Hostile HTTP clients against the real server on loopback: truncated and malformed
// multipart, aborted and trickling bodies on every body path. Each case asserts the status,
// that the process still serves, that admission is released (in-flight back to 0), and
// generous bounds on time and RSS.
import http from 'node:http';
import net from 'node:net';
import zlib from 'node:zlib';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import sharp from 'sharp';
import { pngBomb } from './bomb-images.ts';
import { bytesTensor } from './v2-wire.ts';
import { prepareModel } from '../src/model/prepare.ts';
import { InferencePool } from '../src/pool.ts';
import { startService, type RunningService } from '../src/server.ts';
import { silentLogger } from '../../../server-kit/log.ts';
import { fixture, pollUntil, scrapeMetrics, startTestService, testConfig, within } from '../../../test/support.ts';
import { uploadsWhileAnswered } from '../../../test/uploader.ts';

let svc: RunningService;
const sockets = new Set<net.Socket>();
/** RSS when the current case began: each case may add at most RSS_BOUND_MB. */
let rssAtStart = 0;
const RSS_BOUND_MB = 300;

interface RawReply {
  status: number | null;
  head: string;
  body: string;
  ms: number;
}

/**
 * Sends a request on a raw socket: `head` (request line and headers), then each body part,
 * waiting `gapMs` between parts. `end`: 'half-close' ends our side, 'destroy' resets the
 * connection after the last part, 'keep' leaves it open. Resolves with what came back once
 * the server closes, or after `maxMs` (the socket is then destroyed).
 */
function rawRequest(
  head: string,
  parts: Array<string | Buffer>,
  opts: { gapMs?: number; end?: 'half-close' | 'destroy' | 'keep'; maxMs?: number } = {},
): Promise<RawReply> {
  const { gapMs = 0, end = 'keep', maxMs = 20_000 } = opts;
  const { port } = new URL(svc.url);
  const started = performance.now();
  return new Promise((resolve) => {
    const socket = net.connect(Number(port), '127.0.0.1');
    sockets.add(socket);
    let received = '';
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearTimeout(deadline);
      socket.destroy();
      sockets.delete(socket);
      const [headText, ...rest] = received.split('\r\n\r\n');
      const status = /^HTTP\/1\.1 (\d{3})/.exec(headText)?.[1];
      resolve({ status: status ? Number(status) : null, head: headText, body: rest.join('\r\n\r\n'), ms: performance.now() - started });
    };
    const deadline = setTimeout(finish, maxMs);
    socket.on('data', (d) => {
      received += d.toString('latin1');
      // A complete reply (Content-Length known) ends the wait even on a kept-alive socket.
      const [h, ...b] = received.split('\r\n\r\n');
      const length = /content-length: (\d+)/i.exec(h ?? '')?.[1];
      if (length !== undefined && b.join('\r\n\r\n').length >= Number(length)) finish();
    });
    socket.on('error', () => {});
    socket.on('close', finish);
    let i = 0;
    const next = () => {
      if (done) return;
      if (i < parts.length) {
        socket.write(parts[i++]);
        timer = setTimeout(next, gapMs);
      } else if (end === 'half-close') socket.end();
      else if (end === 'destroy') setTimeout(finish, 20); // let the bytes leave, then reset
    };
    socket.once('connect', () => {
      socket.write(head);
      next();
    });
  });
}

function requestHead(path: string, headers: Record<string, string | number>): string {
  const lines = [`POST ${path} HTTP/1.1`, 'Host: 127.0.0.1', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  return lines.join('\r\n') + '\r\n\r\n';
}

/** Every request in this suite has a deadline: a wedged server fails the case, never hangs it. */
const bounded = (init: RequestInit = {}): RequestInit => ({ ...init, signal: AbortSignal.timeout(30_000) });

const metric = async (name: string, labels?: Record<string, string>) => (await scrapeMetrics(svc.url)).value(name, labels);
const inFlight = () => metric('klassify_in_flight_requests');

/**
 * Sends a normal photo (as `client`, when given) one request after another until one is
 * served, within `ms` of `since`: the statuses refused before it, and when it was served.
 */
async function photoUntilServed(since: number, ms: number, client?: string): Promise<{ refused: number[]; servedAfter: number }> {
  const body = await fixture('coffee.png');
  const headers: Record<string, string> = { 'content-type': 'image/png', ...(client ? { 'x-forwarded-for': client } : {}) };
  const refused: number[] = [];
  const served = async () => {
    const res = await fetch(svc.url + '/classify', bounded({ method: 'POST', body, headers }));
    await res.arrayBuffer();
    if (res.status !== 200) refused.push(res.status);
    return res.status === 200;
  };
  await pollUntil('a normal photo to be served', served, { timeoutMs: Math.max(0, since + ms - performance.now()), intervalMs: 100 });
  return { refused, servedAfter: performance.now() - since };
}

/** Waits until the in-flight gauge satisfies `done`; resolves with its reading then. */
async function inFlightWhen(what: string, done: (n: number) => boolean, timeoutMs = 5_000): Promise<number> {
  let n = NaN;
  await pollUntil(what, async () => done((n = await inFlight())), { timeoutMs, intervalMs: 25 });
  return n;
}

/** The process still serves, and every admission has been released (within a deadline). */
async function assertHealthy(label: string): Promise<void> {
  assert.is((await fetch(svc.url + '/health/liveness', bounded())).status, 200, `${label}: liveness`);
  assert.is((await fetch(svc.url + '/health/readiness', bounded())).status, 200, `${label}: readiness`);
  await pollUntil(`${label}: in-flight to return to 0`, async () => (await inFlight()) === 0, { timeoutMs: 5_000 });
  const grown = rssMb() - rssAtStart;
  assert.ok(grown < RSS_BOUND_MB, `${label}: RSS grew by ${Math.round(grown)} MB`);
}

async function classifiesNormally(label: string): Promise<void> {
  const res = await fetch(svc.url + '/classify?topk=1', bounded({ method: 'POST', body: await fixture('coffee.png'), headers: { 'content-type': 'image/png' } }));
  assert.is(res.status, 200, `${label}: a normal request is served`);
  assert.is((await res.json()).predictions[0].label, 'espresso');
}

const rssMb = () => process.memoryUsage().rss / 1024 / 1024;
const partHeader = (field: string, filename = 'a.jpg') =>
  `--b\r\nContent-Disposition: form-data; name="${field}"; filename="${filename}"\r\nContent-Type: image/jpeg\r\n\r\n`;
const MULTIPART = { 'content-type': 'multipart/form-data; boundary=b' };

function startCase() {
  rssAtStart = rssMb();
}

function closeSockets() {
  for (const s of sockets) s.destroy();
  sockets.clear();
}

// ---------------------------------------------------------------------------------------

const malformed = suite('malformed multipart is a 400, never a crash');
malformed.before(async () => {
  svc = await startTestService({ KLASSIFY_QUEUE_SIZE: '4' });
});
malformed.after.each(closeSockets);
malformed.before.each(startCase);
malformed.after(() => svc?.shutdown());

/** Bodies a broken or hostile client may send as multipart/form-data; boundary "b". */
function malformedForms(): Array<[string, string | Buffer]> {
  return [
    ['ends inside the image file', partHeader('image') + 'xx'],
    ['ends inside another file field', partHeader('other') + 'xx'],
    ['ends inside a file, after a field', '--b\r\nContent-Disposition: form-data; name="topk"\r\n\r\n3\r\n' + partHeader('file') + 'xx'],
    ['ends inside part headers', '--b\r\nContent-Disposition: form-da'],
    ['ends right after a boundary', '--b\r\n'],
    ['has no boundary at all', 'just some bytes'],
    ['has a part without headers', '--b\r\n\r\nxx\r\n--b--\r\n'],
    ['has oversized part headers', '--b\r\nX-Pad: ' + 'a'.repeat(100_000) + '\r\n\r\nxx'],
    ['has binary garbage', Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 131 + 7) & 0xff))],
  ];
}

malformed('every truncated or malformed form gets a 400 problem and the process keeps serving', async () => {
  const rss0 = rssMb();
  for (const [label, body] of malformedForms()) {
    const length = Buffer.byteLength(body);
    const reply = await rawRequest(requestHead('/classify', { ...MULTIPART, 'content-length': length }), [body]);
    assert.is(reply.status, 400, `${label}: ${reply.head}`);
    assert.match(reply.body, /malformed-multipart|missing-image-field/, label);
    assert.ok(reply.ms < 10_000, `${label}: answered in ${reply.ms} ms`);
    await assertHealthy(label);
  }
  assert.ok(rssMb() - rss0 < 200, `RSS grew by ${rssMb() - rss0} MB`);
  await classifiesNormally('after malformed forms');
});
malformed('a truncated form sent chunked, ending with the last chunk, is a 400', async () => {
  const body = partHeader('image') + 'xx';
  const chunked = `${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n0\r\n\r\n`;
  const reply = await rawRequest(requestHead('/classify', { ...MULTIPART, 'transfer-encoding': 'chunked' }), [chunked]);
  assert.is(reply.status, 400, reply.head);
  assert.match(reply.body, /malformed-multipart/);
  await assertHealthy('chunked truncated form');
});
malformed('a multipart Content-Type without a boundary is a 400', async () => {
  const reply = await rawRequest(requestHead('/classify', { 'content-type': 'multipart/form-data', 'content-length': 2 }), ['xx']);
  assert.is(reply.status, 400, reply.head);
  assert.match(reply.body, /malformed-multipart/);
  await assertHealthy('no boundary');
});
malformed.run();

// ---------------------------------------------------------------------------------------

const aborts = suite('aborted uploads release admission on every body path');
aborts.before(async () => {
  svc = await startTestService({ KLASSIFY_QUEUE_SIZE: '4' });
});
aborts.after.each(closeSockets);
aborts.before.each(startCase);
aborts.after(() => svc?.shutdown());

const ABORTS = 12; // three times the admission limit: a leak would show as 503s

const cloudEventHeaders = {
  'ce-specversion': '1.0',
  'ce-id': 'abort-1',
  'ce-source': '/hostile',
  'ce-type': 'dev.klassify.image.submitted',
  'content-type': 'image/jpeg',
};

const bodyPaths: Array<[string, string, Record<string, string | number>, string]> = [
  ['multipart', '/classify', MULTIPART, partHeader('image') + 'x'.repeat(1000)],
  ['multipart, other field', '/classify', MULTIPART, partHeader('other') + 'x'.repeat(1000)],
  ['raw', '/classify', { 'content-type': 'image/jpeg' }, 'x'.repeat(1000)],
  ['CloudEvent (binary)', '/', cloudEventHeaders, 'x'.repeat(1000)],
];

for (const [label, path, headers, partial] of bodyPaths) {
  aborts(`${label}: uploads reset mid-body release admission`, async () => {
    for (let i = 0; i < ABORTS; i++) {
      const reply = await rawRequest(requestHead(path, { ...headers, 'content-length': 1_000_000 }), [partial], { end: 'destroy' });
      assert.is(reply.status, null, `no reply to a reset connection: ${reply.head}`);
    }
    await assertHealthy(label);
    await classifiesNormally(label);
  });
  aborts(`${label}: uploads half-closed mid-body release admission`, async () => {
    for (let i = 0; i < ABORTS; i++) {
      await rawRequest(requestHead(path, { ...headers, 'content-length': 1_000_000 }), [partial], { end: 'half-close' });
    }
    await assertHealthy(label);
  });
}
aborts('with 4 places (as on Knative), one client with slow uploads keeps 1 and another client is served', async () => {
  const started = performance.now();
  // 1 KiB every 250 ms, above the minimum rate; each ends when this test resets it (maxMs).
  const steady = Array.from({ length: 40 }, () => 'x'.repeat(1024));
  const uploads = Array.from({ length: 4 }, (_, i) => {
    const [, path, headers, partial] = bodyPaths[i];
    return rawRequest(requestHead(path, { ...headers, 'content-length': 1_000_000, 'x-forwarded-for': '203.0.113.66' }), [partial.slice(0, 120), ...steady], { gapMs: 250, maxMs: 8_000 });
  });
  // The four hold every place before the other client asks: sent at the same moment, a photo
  // admitted first would leave the fourth upload a 503 instead of a cut.
  await inFlightWhen('the four uploads to be admitted', (n) => n === 4);
  const { refused, servedAfter } = await photoUntilServed(started, 8_000);
  assert.ok(servedAfter < 8_000, `another client is served (refused before: ${refused.join(',')})`);
  assert.is(await inFlightWhen('the cut to leave one place', (n) => n <= 1), 1, 'the slow client keeps one place');
  const statuses = (await Promise.all(uploads)).map((r) => r.status);
  // Three are cut as the client's extra uploads; one kept its place until this test reset it.
  assert.is(statuses.filter((status) => status === 429).length, 3, `cut: ${statuses.join(',')}`);
  assert.is(statuses.filter((status) => status === null).length, 1, `kept: ${statuses.join(',')}`);
  await assertHealthy('one slow client, 4 places');
});
aborts('client aborts are counted as 499, without a stack trace', async () => {
  const closed = { route: '/classify', status: '499' };
  const before = await metric('klassify_requests_total', closed);
  const logged: unknown[] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => logged.push(args);
  try {
    for (let i = 0; i < 3; i++) {
      await rawRequest(requestHead('/classify', { ...MULTIPART, 'content-length': 100_000 }), [partHeader('image') + 'x'], { end: 'destroy' });
    }
    await assertHealthy('499');
  } finally {
    console.error = original;
  }
  assert.is((await metric('klassify_requests_total', closed)) - before, 3);
  assert.is(await metric('klassify_requests_total', { status: '500' }), 0);
  assert.equal(logged, []);
});
aborts.run();

// ---------------------------------------------------------------------------------------

const slow = suite('slow bodies are cut with 408 and cannot hold the service');
// Scaled-down timings: a trickle of 1 byte per 200 ms passes the idle timeout but not the
// minimum rate once the grace period is spent.
const TIMING = { idle: 1000, grace: 3000, minRate: 1024, total: 6000 };
slow.before(async () => {
  svc = await startTestService({
    KLASSIFY_BODY_IDLE_TIMEOUT_MS: String(TIMING.idle),
    KLASSIFY_BODY_GRACE_MS: String(TIMING.grace),
    KLASSIFY_BODY_MIN_RATE: String(TIMING.minRate),
    KLASSIFY_BODY_TIMEOUT_MS: String(TIMING.total),
  });
});
slow.after.each(closeSockets);
slow.before.each(startCase);
slow.after(() => svc?.shutdown());

const trickle = (n: number, byte = 'x') => Array.from({ length: n }, () => byte);

slow('a body that stalls is a 408 after the idle timeout', async () => {
  for (const [label, path, headers, partial] of bodyPaths) {
    const reply = await rawRequest(requestHead(path, { ...headers, 'content-length': 100_000 }), [partial]);
    assert.is(reply.status, 408, `${label}: ${reply.head}`);
    assert.match(reply.body, /request-timeout/);
    assert.match(reply.body, /No body data arrived for 1000 ms/);
    assert.ok(reply.ms < TIMING.idle * 20, `${label}: cut after ${reply.ms} ms`);
  }
  await assertHealthy('stalled bodies');
});
slow('a trickling body is a 408 once its grace period is spent', async () => {
  const reply = await rawRequest(requestHead('/classify', { 'content-type': 'image/jpeg', 'content-length': 100_000 }), trickle(200), { gapMs: 200 });
  assert.is(reply.status, 408, reply.head);
  assert.match(reply.body, /slower than 1024 bytes\/s/);
  assert.ok(reply.ms >= TIMING.grace && reply.ms < TIMING.grace * 10, `cut after ${reply.ms} ms`);
  await assertHealthy('trickle');
});
slow('a body above the minimum rate is still cut at the body deadline', async () => {
  const chunk = 'x'.repeat(2048);
  const reply = await rawRequest(requestHead('/classify', { 'content-type': 'image/jpeg', 'content-length': 10_000_000 }), trickle(100, chunk), { gapMs: 250 });
  assert.is(reply.status, 408, reply.head);
  assert.match(reply.body, /longer than 6000 ms/);
  assert.ok(reply.ms < TIMING.total * 5, `cut after ${reply.ms} ms`);
  await assertHealthy('deadline');
});
slow('32 trickling uploads from 32 clients hold admission only until their grace period is spent', async () => {
  const started = performance.now();
  const paths = bodyPaths.filter(([label]) => label !== 'CloudEvent (binary)');
  // Each from its own client behind the (trusted, loopback) proxy: per-client shares do not
  // apply, only the minimum rate does.
  const tricklers = Array.from({ length: 32 }, (_, i) => {
    const [, path, headers, partial] = paths[i % paths.length];
    const head = requestHead(path, { ...headers, 'content-length': 100_000, 'x-forwarded-for': `198.51.100.${i + 1}` });
    return rawRequest(head, [partial.slice(0, 120), ...trickle(100)], { gapMs: 200 });
  });
  // Every slot is taken: a normal request is refused for now.
  assert.is(await inFlightWhen('the tricklers to hold every slot', (n) => n >= 32), 32);
  const { refused, servedAfter } = await photoUntilServed(started, TIMING.grace * 10);
  assert.is(refused[0], 503, `refused while the slots are held: ${refused}`);
  assert.ok(servedAfter < TIMING.grace * 5, `a normal request was served ${servedAfter} ms after the trickle began`);
  const replies = await Promise.all(tricklers);
  assert.equal([...new Set(replies.map((r) => r.status))], [408]);
  await assertHealthy('32 tricklers');
});
slow('one client sending 32 photos at once is never held to a share', async () => {
  const body = await fixture('coffee.png');
  const statuses = await Promise.all(
    Array.from({ length: 32 }, async () => {
      const res = await fetch(svc.url + '/classify', bounded({ method: 'POST', body, headers: { 'content-type': 'image/png' } }));
      await res.arrayBuffer();
      return res.status;
    }),
  );
  assert.equal([...new Set(statuses)], [200]);
  await assertHealthy('32 photos at once');
});
slow('32 uploads at the minimum rate from one client: its share is kept, the rest cut; another client is served', async () => {
  const rss0 = rssMb();
  const started = performance.now();
  const attacker = '203.0.113.66';
  // 1 KiB every 500 ms: twice the minimum rate, and never idle for the idle timeout, so only
  // the body deadline (6 s here, 120 s by default) would end these.
  const atMinRate = Array.from({ length: 40 }, () => 'x'.repeat(1024));
  const uploads = Array.from({ length: 32 }, (_, i) => {
    const [, path, headers, partial] = bodyPaths[i % bodyPaths.length];
    const head = requestHead(path, { ...headers, 'content-length': 100_000, 'x-forwarded-for': `10.9.8.7, ${attacker}` });
    return rawRequest(head, [partial.slice(0, 120), ...atMinRate], { gapMs: 500 });
  });
  assert.is(await inFlightWhen('the uploads to hold every place', (n) => n >= 32), 32);
  // A normal photo from another client, one request after another, until one is served.
  const { refused, servedAfter } = await photoUntilServed(started, 30_000, '192.0.2.10');
  assert.ok(servedAfter < 15_000, `another client's photo was first served ${Math.round(servedAfter)} ms after the flood began (${refused.join(',')})`);
  assert.ok(refused.length > 0 && refused.every((status) => status === 503), `503 until then: ${refused.join(',')}`);
  // The photo got a place because uploads past the share were cut, once the client's oldest
  // had been arriving for 1 s: soon only the share of 8 remains.
  assert.is(await inFlightWhen('the cut down to the share', (n) => n <= 8, 10_000), 8, 'the attacker keeps its share of 8 places');
  // From then on, the other client is served every time while the share is still held.
  const body = await fixture('coffee.png');
  for (let i = 0; i < 3; i++) {
    const res = await fetch(svc.url + '/classify', bounded({ method: 'POST', body, headers: { 'content-type': 'image/png', 'x-forwarded-for': '192.0.2.10' } }));
    await res.arrayBuffer();
    assert.is(res.status, 200, 'served while the attacker holds its share');
  }
  // The attacker's next upload is refused at once.
  const again = await rawRequest(requestHead('/classify', { 'content-type': 'image/jpeg', 'content-length': 100_000, 'x-forwarded-for': attacker }), ['x']);
  assert.is(again.status, 429, again.head);
  assert.match(again.head, /retry-after: 5/i);
  assert.match(again.body, /too-many-uploads/);
  assert.ok(again.ms < 5_000, `refused in ${again.ms} ms`);
  const replies = await Promise.all(uploads);
  const counts: Record<string, number> = {};
  for (const reply of replies) counts[String(reply.status)] = (counts[String(reply.status)] ?? 0) + 1;
  assert.equal(counts, { 408: 8, 429: 24 }, 'the share ends at the body deadline; the rest was cut');
  for (const reply of replies.filter((r) => r.status === 429)) {
    assert.ok(reply.ms < 15_000, `cut after ${Math.round(reply.ms)} ms`);
  }
  await assertHealthy('one client at the minimum rate');
  assert.ok(rssMb() - rss0 < 100, `RSS grew by ${Math.round(rssMb() - rss0)} MB`);
});
slow.run();

// ---------------------------------------------------------------------------------------

const engines = suite('a crashing, hanging or exiting inference worker');
// fault-worker.mjs picks its fault from the first byte of the batch, so a solid image of
// that grey level reaches it through the whole pipeline.
const solid = (level: number) => sharp({ create: { width: 64, height: 64, channels: 3, background: { r: level, g: level, b: level } } }).png().toBuffer();
const CRASH = 1;
const HANG = 2;
const EXIT_0 = 3;
engines.before(async () => {
  const config = testConfig();
  const files = await prepareModel(config.model, config);
  const inference = InferencePool.start({
    workers: 1,
    engines: Object.fromEntries(config.models.map((m) => [m, { ...files, engine: 'onnx', provider: 'cpu', providerFallback: true, intraOpThreads: 1 }])),
    batchMaxSize: 1,
    batchMaxDelayMs: 0,
    jobTimeoutMs: 1500,
    respawnDelayMs: { initial: 20, max: 200 },
    workerFile: new URL('./fault-worker.mjs', import.meta.url).pathname,
    log: silentLogger,
  }).then((pool) => ({ pool, loadMs: 0 }));
  svc = await startService(config, silentLogger, inference);
  await svc.ready;
});
engines.after.each(() => {
  delete process.env.KLASSIFY_FAULT_WORKER_START;
});
engines.before.each(startCase);
engines.after(() => svc?.shutdown());

async function classifySolid(level: number) {
  const res = await fetch(svc.url + '/classify', bounded({ method: 'POST', body: await solid(level), headers: { 'content-type': 'image/png' } }));
  return { status: res.status, retryAfter: res.headers.get('retry-after'), json: await res.json() };
}

async function waitForReadiness(status: number): Promise<void> {
  await pollUntil(`readiness to become ${status}`, async () => (await fetch(svc.url + '/health/readiness', bounded())).status === status);
}

for (const [label, level] of [['crashes', CRASH], ['hangs past the inference deadline', HANG], ['exits with code 0', EXIT_0]] as const) {
  engines(`a worker that ${label} is a 503 worker-unavailable with Retry-After, then is replaced`, async () => {
    const rss0 = rssMb();
    const res = await classifySolid(level);
    assert.is(res.status, 503);
    assert.is(res.json.type, 'https://klassify.dev/problems/worker-unavailable');
    assert.is(res.retryAfter, '1');
    await waitForReadiness(200);
    assert.is((await classifySolid(200)).status, 200);
    const reason = { [CRASH]: 'crashed', [HANG]: 'timed-out', [EXIT_0]: 'exited' }[level];
    assert.is(await metric('klassify_worker_losses_total', { reason }), 1);
    await assertHealthy(label);
    assert.ok(rssMb() - rss0 < 200, `RSS grew by ${rssMb() - rss0} MB`);
  });
}
engines('a request whose client has gone while it waited for a worker is never run', async () => {
  const batches = () => metric('klassify_batch_size_count');
  const before = await batches();
  const busy = classifySolid(6); // holds the only worker for 1 s
  await pollUntil('the slow job to be running', async () => (await batches()) === before + 1);
  const png = await solid(200);
  const gone = await rawRequest(requestHead('/classify', { 'content-type': 'image/png', 'content-length': png.length }), [png], { end: 'destroy' });
  assert.is(gone.status, null);
  assert.is((await busy).status, 200);
  // FIFO: had the abandoned job stayed queued, it would run before this one.
  assert.is((await classifySolid(200)).status, 200);
  assert.is(await batches(), before + 2, 'the abandoned job never reached a worker');
  assert.is(await metric('klassify_requests_total', { route: '/classify', status: '499' }), 1);
  await assertHealthy('abandoned job');
});
engines('readiness is 503 while no worker is ready, and recovers', async () => {
  process.env.KLASSIFY_FAULT_WORKER_START = 'fail'; // replacements fail to start
  assert.is((await classifySolid(CRASH)).status, 503);
  await waitForReadiness(503);
  assert.is((await fetch(svc.url + '/health/liveness', bounded())).status, 200);
  const refused = await classifySolid(200);
  assert.is(refused.status, 503, 'refused at once, not queued');
  assert.is(refused.json.type, 'https://klassify.dev/problems/worker-unavailable');
  process.env.KLASSIFY_FAULT_WORKER_START = 'ok';
  await waitForReadiness(200);
  assert.is((await classifySolid(200)).status, 200);
  await assertHealthy('after recovery');
});
engines.run();

// ---------------------------------------------------------------------------------------

const staged = suite('an error answer reaches a client that is still sending');
staged.before(async () => {
  svc = await startTestService({ KLASSIFY_BODY_LIMIT: String(1024 * 1024) });
});
staged.after.each(closeSockets);
staged.before.each(startCase);
staged.after(() => svc?.shutdown());

const uploads = (chunked: boolean, count: number) =>
  uploadsWhileAnswered({ port: new URL(svc.url).port, path: '/classify', bytes: 8 * 1024 * 1024, chunked, count });

staged('a 413 is read by a client still uploading, every time, declared or chunked', async () => {
  // Closed at once, the kernel resets a connection with unread data and may drop the
  // answer: most of these saw no status before the close was staged.
  for (const chunked of [false, true]) {
    const statuses = await uploads(chunked, 15);
    assert.equal([...new Set(statuses)], [413], `${chunked ? 'chunked' : 'declared'}: ${statuses.join(',')}`);
  }
  await assertHealthy('uploads over the limit');
});
staged.run();

// ---------------------------------------------------------------------------------------

const stopping = suite('shutdown with kept-alive connections');
stopping.before(async () => {
  svc = await startTestService();
});
stopping.after.each(closeSockets);
stopping.after(() => svc?.shutdown());

stopping('shutdown answers what is in flight and then ends, though the client keeps its connections', async () => {
  // An agent that keeps idle connections as long as the server lets it, as proxies do: the
  // server must close each one once its answer is written, or shutdown waits for them.
  const agent = new http.Agent({ keepAlive: true });
  try {
    const png = Buffer.from(await fixture('coffee.png'));
    // Half the body now, the rest once shutdown has begun: admitted, and in flight throughout.
    const uploads = Array.from({ length: 3 }, () => {
      const req = http.request(svc.url + '/classify', { method: 'POST', agent, headers: { 'content-type': 'image/png', 'content-length': png.length } });
      const status = new Promise<number | string>((resolve) => {
        req.on('response', (res) => res.resume().on('end', () => resolve(res.statusCode ?? 0)));
        req.on('error', (err) => resolve(err.message));
      });
      req.write(png.subarray(0, 1000));
      return { req, status };
    });
    await pollUntil('three uploads to be admitted', async () => (await inFlight()) === 3);
    const closing = svc.shutdown();
    for (const { req } of uploads) req.end(png.subarray(1000));
    assert.equal(await Promise.all(uploads.map((u) => u.status)), [200, 200, 200]);
    // Far below the keep-alive timeout (65 s), which is what shutdown would otherwise wait for.
    await within(20_000, 'shutdown', closing);
  } finally {
    agent.destroy();
  }
});
stopping.run();

// ---------------------------------------------------------------------------------------

const v2 = suite('Open Inference Protocol: hostile requests get a 4xx {"error"}, never a 5xx');
const V2_INFER = '/v2/models/mobilenet_v1_0.75_224/infer';
v2.before(async () => {
  // A batch of 2 makes the JSON bounds small enough to pass within the body limit.
  svc = await startTestService({ KLASSIFY_QUEUE_SIZE: '4', KLASSIFY_BODY_LIMIT: String(2 * 1024 * 1024), KLASSIFY_V2_MAX_BATCH: '2' });
});
v2.after.each(closeSockets);
v2.before.each(startCase);
v2.after(() => svc?.shutdown());

/** The body and headers of a request with a JSON header and binary data after it. */
function v2Binary(header: object, tail: Buffer, headerLength?: string) {
  const json = Buffer.from(JSON.stringify(header));
  return { body: Buffer.concat([json, tail]), headers: { 'inference-header-content-length': headerLength ?? String(json.length) } };
}
const pixelsIn = (shape: unknown, data: unknown, datatype = 'UINT8') => ({ inputs: [{ name: 'pixels', datatype, shape, data }] });
const imageIn = (shape: unknown, data: unknown, datatype = 'BYTES') => ({ inputs: [{ name: 'image', datatype, shape, data }] });

type V2Case = [string, string | Buffer | object, Record<string, string>, number, RegExp];

async function v2Cases(): Promise<V2Case[]> {
  const png = Buffer.from(await fixture('coffee.png'));
  const tiny = (await solid(100)).toString('base64');
  const b64 = png.toString('base64');
  const bytesHeader = (size: number, shape = [1]) => ({ inputs: [{ name: 'image', datatype: 'BYTES', shape, parameters: { binary_data_size: size } }] });
  const binary = (header: object, tail: Buffer, length?: string) => {
    const r = v2Binary(header, tail, length);
    return [r.body, r.headers] as const;
  };
  const bomb = await pngBomb({ width: 20_000, height: 20_000, data: 'few-rows' });
  return [
    ['malformed JSON', '{"inputs": [', {}, 400, /not valid JSON/],
    ['JSON that is not an object', '[1, 2]', {}, 400, /must be a JSON object/],
    ['an empty body', '', {}, 400, /body is empty/],
    ['no inputs', {}, {}, 400, /"inputs" must be an array/],
    ['two inputs', { inputs: [...imageIn([1], [b64]).inputs, ...pixelsIn([1, 224, 224, 3], []).inputs] }, {}, 400, /exactly one/],
    ['an unknown input', { inputs: [{ name: 'input0', datatype: 'UINT32', shape: [1], data: [1] }] }, {}, 400, /Unknown input "input0"/],
    ['FP32 pixels', pixelsIn([1, 224, 224, 3], [0.5], 'FP32'), {}, 400, /datatype "FP32"; it must be UINT8/],
    ['UINT8 images', imageIn([1], [1], 'UINT8'), {}, 400, /it must be BYTES/],
    ['pixels as NCHW', pixelsIn([1, 3, 224, 224], []), {}, 400, /shape \[1,3,224,224\]; it must be \[N,224,224,3\]/],
    ['a negative dimension', pixelsIn([-1, 224, 224, 3], []), {}, 400, /it must be/],
    ['a fractional dimension', imageIn([1.5], [b64]), {}, 400, /it must be \[N\]/],
    ['a dimension as a string', imageIn(['1'], [b64]), {}, 400, /it must be \[N\]/],
    ['an empty batch', imageIn([0], []), {}, 400, /N = 0/],
    ['a batch over max_batch_size', imageIn([3], Array(3).fill(tiny)), {}, 400, /3 images; a batch may hold at most 2/],
    ['fewer values than the shape', pixelsIn([1, 224, 224, 3], [1, 2, 3]), {}, 400, /holds 3 values; its shape says 150528/],
    ['more values than the shape', pixelsIn([1, 224, 224, 3], Array(150_529).fill(0)), {}, 400, /more than the 150528 values/],
    ['a value over 255', pixelsIn([1, 224, 224, 3], [256]), {}, 400, /integers from 0 to 255/],
    ['a value that is a string', pixelsIn([1, 224, 224, 3], ['7']), {}, 400, /integers from 0 to 255/],
    ['more images than the shape', imageIn([1], [b64, b64]), {}, 400, /array of 1 base64 strings/],
    ['an image that is not base64', imageIn([1], ['not base64!']), {}, 400, /base64 string/],
    ['an element that is no image', imageIn([1], [Buffer.from('hello').toString('base64')]), {}, 400, /element 0: The body is not a recognised image/],
    ['an SVG element', imageIn([1], [Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>').toString('base64')]), {}, 400, /SVG is not supported/],
    ['a truncated PNG element', imageIn([2], [b64, png.subarray(0, 2000).toString('base64')]), {}, 400, /element 1: The PNG data is corrupt or truncated/],
    ['a decompression bomb in a batch', imageIn([2], [b64, bomb.toString('base64')]), {}, 400, /element 1: .*20000×20000/],
    ['an unknown output', { ...imageIn([1], [b64]), outputs: [{ name: 'output0' }] }, {}, 400, /Unknown output "output0"/],
    ['two outputs', { ...imageIn([1], [b64]), outputs: [{ name: 'probabilities' }, { name: 'probabilities' }] }, {}, 400, /at most the one output/],
    ...[0, -1, 1001, 2.5, '3', true].map(
      (k): V2Case => [`classification ${JSON.stringify(k)}`, { ...imageIn([1], [b64]), outputs: [{ name: 'probabilities', parameters: { classification: k } }] }, {}, 400, /"classification" must be an integer from 1 to 1000/],
    ),
    ['binary_data_output that is not a boolean', { ...imageIn([1], [b64]), parameters: { binary_data_output: 'yes' } }, {}, 400, /must be true or false/],
    ['an id that is not a string', { ...imageIn([1], [b64]), id: 42 }, {}, 400, /"id" must be a string/],
    ['both data and binary_data_size', { inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], data: [b64], parameters: { binary_data_size: 4 } }] }, {}, 400, /both "data" and "binary_data_size"/],
    ['a header length that is not a number', ...binary(bytesHeader(4), bytesTensor([Buffer.alloc(0)]), 'abc'), 400, /must be a byte count/],
    ['a header length of 0 (raw binary)', ...binary(bytesHeader(4), bytesTensor([Buffer.alloc(0)]), '0'), 400, /has two \(image, pixels\)/],
    ['a header length past the end of the body', ...binary(bytesHeader(4), Buffer.alloc(4), '100000'), 400, /past the end of the \d+-byte body/],
    ['a binary_data_size past the end of the body', ...binary(bytesHeader(1000), bytesTensor([png.subarray(0, 10)])), 400, /"binary_data_size" is 1000, but 14 bytes follow/],
    ['bytes after the JSON with no binary input', ...binary(imageIn([1], [b64]), Buffer.alloc(8)), 400, /8 bytes follow the JSON/],
    ['an element length past the end', ...binary(bytesHeader(8), Buffer.from([0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4])), 400, /declares 2147483647 bytes, past the end/],
    ['an element length cut short', ...binary(bytesHeader(2), Buffer.from([1, 0])), 400, /has no 4-byte length/],
    ['bytes after the last element', ...binary(bytesHeader(png.length + 7), Buffer.concat([bytesTensor([png]), Buffer.alloc(3)])), 400, /3 bytes follow the last of its 1 elements/],
    ['binary pixels of the wrong size', ...binary({ inputs: [{ name: 'pixels', datatype: 'UINT8', shape: [1, 224, 224, 3], parameters: { binary_data_size: 1000 } }] }, Buffer.alloc(1000)), 400, /is 150528 bytes; "binary_data_size" is 1000/],
    ['brackets nested a million deep', '['.repeat(1_000_000), {}, 400, /deeper than 12 levels/],
    ['600,000 empty arrays', `[${'[],'.repeat(600_000)}[]]`, {}, 400, /more than 100867 arrays and objects/],
    ['900,000 values', `[${'0,'.repeat(900_000)}0]`, {}, 400, /more than 402115 values/],
    ['a gzip body that inflates past the body limit', zlib.gzipSync(Buffer.alloc(50 * 1024 * 1024)), { 'content-encoding': 'gzip' }, 413, /exceeds the limit of 2097152 bytes/],
    ['a corrupt gzip body', Buffer.from('not gzip at all'), { 'content-encoding': 'gzip' }, 400, /cannot be decompressed/],
    ['an unknown Content-Encoding', '{}', { 'content-encoding': 'br' }, 400, /"br" is not supported/],
  ];
}

v2('each malformed, inconsistent or hostile request is a 4xx {"error"} that says why, and the server keeps serving', async () => {
  for (const [label, body, headers, status, message] of await v2Cases()) {
    const payload = Buffer.isBuffer(body) ? Uint8Array.from(body) : typeof body === 'string' ? body : JSON.stringify(body);
    const t0 = performance.now();
    const res = await fetch(svc.url + V2_INFER, bounded({ method: 'POST', body: payload, headers }));
    const text = await res.text();
    assert.is(res.status, status, `${label}: ${text.slice(0, 200)}`);
    assert.is(res.headers.get('content-type'), 'application/json', label);
    const json = JSON.parse(text);
    assert.equal(Object.keys(json), ['error'], label);
    assert.match(json.error, message, label);
    assert.ok(performance.now() - t0 < 10_000, `${label}: answered in ${Math.round(performance.now() - t0)} ms`);
  }
  await assertHealthy('after hostile V2 requests');
  assert.not.match((await scrapeMetrics(svc.url)).text, /status="5\d\d"/);
  await classifiesNormally('after hostile V2 requests');
});
v2('a declared body over the limit is a 413 {"error"} before it is read, and the connection closes', async () => {
  const reply = await rawRequest(requestHead(V2_INFER, { 'content-type': 'application/json', 'content-length': 3 * 1024 * 1024 }), ['{"inputs"']);
  assert.is(reply.status, 413, reply.head);
  assert.match(reply.head, /connection: close/i);
  assert.match(JSON.parse(reply.body).error, /exceeds the limit/);
  await assertHealthy('413');
});
v2('uploads reset or half-closed mid-body release admission', async () => {
  for (const end of ['destroy', 'half-close'] as const) {
    for (let i = 0; i < ABORTS; i++) {
      await rawRequest(requestHead(V2_INFER, { 'content-type': 'application/json', 'content-length': 1_000_000 }), ['{"inputs": [{"name": "image"'], { end });
    }
    await assertHealthy(`V2 ${end}`);
  }
});
v2('a full queue refuses V2 as it refuses /classify: 503 {"error"} with Retry-After', async () => {
  const holders = Array.from({ length: 4 }, () =>
    rawRequest(requestHead(V2_INFER, { 'content-type': 'application/json', 'content-length': 1000 }), ['{"inputs": ['], { maxMs: 3000 }),
  );
  await inFlightWhen('four uploads to be admitted', (n) => n >= 4);
  assert.is(await inFlight(), 4, 'four uploads hold the four places');
  const refused = await fetch(svc.url + V2_INFER, bounded({ method: 'POST', body: '{}' }));
  assert.is(refused.status, 503);
  assert.ok(Number(refused.headers.get('retry-after')) >= 1);
  assert.match((await refused.json()).error, /queue is full/);
  const classify = await fetch(svc.url + '/classify', bounded({ method: 'POST', body: await fixture('coffee.png'), headers: { 'content-type': 'image/png' } }));
  await classify.arrayBuffer();
  assert.is(classify.status, 503, 'V2 and /classify share the places');
  await Promise.all(holders);
  await assertHealthy('after the queue drained');
});
v2.run();

const v2slow = suite('Open Inference Protocol: slow bodies are cut with 408 {"error"}');
v2slow.before(async () => {
  svc = await startTestService({ KLASSIFY_BODY_IDLE_TIMEOUT_MS: '1000', KLASSIFY_BODY_GRACE_MS: '3000', KLASSIFY_BODY_MIN_RATE: '1024', KLASSIFY_BODY_TIMEOUT_MS: '6000' });
});
v2slow.after.each(closeSockets);
v2slow.before.each(startCase);
v2slow.after(() => svc?.shutdown());
v2slow('a stalled body is a 408 after the idle timeout; a trickle, once its grace is spent', async () => {
  const stalled = await rawRequest(requestHead(V2_INFER, { 'content-type': 'application/json', 'content-length': 100_000 }), ['{"inputs": [']);
  assert.is(stalled.status, 408, stalled.head);
  assert.match(JSON.parse(stalled.body).error, /No body data arrived for 1000 ms/);
  const trickled = await rawRequest(requestHead(V2_INFER, { 'content-type': 'application/json', 'content-length': 100_000 }), trickle(200, ' '), { gapMs: 200 });
  assert.is(trickled.status, 408, trickled.head);
  assert.match(JSON.parse(trickled.body).error, /slower than 1024 bytes\/s/);
  await assertHealthy('V2 slow bodies');
});
v2slow.run();
