// Hostile CloudEvents against a real service on loopback: malformed attributes of every kind
// (and a property-based sweep over attribute values in both modes), oversize bodies in both
// modes, de-duplication flooding and collisions. Each case asserts the status, that no
// inference ran for a refused event, and that the service keeps serving.
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { HTTP } from 'cloudevents';
import fc from 'fast-check';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { structuredLimit } from '../src/http/events.ts';
import { CLASSIFIED, REJECTED, SUBMITTED } from '../../../contracts/events.ts';
import { problemType } from '../../../contracts/problems.ts';
import { startService, type RunningService } from '../src/server.ts';
import { silentLogger } from '../../../server-kit/log.ts';
import { CAT_LABELS, fixture, pollUntil, scrapeMetrics, startTestService, testConfig } from '../../../test/support.ts';

const BODY_LIMIT = 1024 * 1024;
const DEDUPE_BYTES = 256 * 1024;
const STRUCTURED = { 'content-type': 'application/cloudevents+json' };

let svc: RunningService;
const port = () => Number(new URL(svc.url).port);

const start = async () => {
  svc = await startTestService({
    KLASSIFY_BODY_LIMIT: String(BODY_LIMIT),
    KLASSIFY_DEDUPE_MAX: '1000000',
    KLASSIFY_DEDUPE_MAX_BYTES: String(DEDUPE_BYTES),
  });
};
const stop = () => svc?.shutdown();

interface Answer {
  status: number;
  headers: Record<string, string>;
  text: string;
}

async function post(headers: Record<string, string>, body: string | Uint8Array<ArrayBuffer>): Promise<Answer> {
  const res = await fetch(svc.url + '/', { method: 'POST', headers, body, signal: AbortSignal.timeout(30_000) });
  return { status: res.status, headers: Object.fromEntries(res.headers), text: await res.text() };
}

const binaryHeaders = (id: string, extra: Record<string, string> = {}) => ({
  'ce-specversion': '1.0',
  'ce-id': id,
  'ce-source': '/tests/hostile',
  'ce-type': SUBMITTED,
  'content-type': 'image/png',
  ...extra,
});

const structured = (fields: Record<string, unknown>) =>
  JSON.stringify({ specversion: '1.0', id: 'hostile', source: '/tests/hostile', type: SUBMITTED, data_base64: 'iVBORw0KGgo=', ...fields });

/**
 * A request written byte for byte, for what fetch refuses to send (non-Latin-1 header
 * bytes). The server closes the connection after answering; the deadline bounds the wait.
 */
function rawRequest(head: string, body: Buffer = Buffer.alloc(0), encoding: BufferEncoding = 'utf8'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port(), '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => (socket.destroy(), reject(new Error('no answer within 10 s'))), 10_000);
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', () => {}); // a reset after the answer is fine; 'close' settles
    socket.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      const [headText, ...rest] = text.split('\r\n\r\n');
      const [statusLine, ...lines] = headText.split('\r\n');
      const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      resolve({ status: Number(statusLine.split(' ')[1]), headers, text: rest.join('\r\n\r\n') });
    });
    socket.write(Buffer.concat([Buffer.from(head.replace(/\n/g, '\r\n') + '\r\n', encoding), body]));
  });
}

/**
 * Streams a chunked body of `chunk`-sized pieces until the server answers or closes, or
 * `max` bytes are written. Returns the status (0 if none came) and the bytes written.
 */
function streamBody(headers: Record<string, string>, max: number, chunk = 64 * 1024): Promise<{ status: number; written: number }> {
  return new Promise((resolve) => {
    const socket = connect(port(), '127.0.0.1');
    let written = 0;
    let answer = '';
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(answer)?.[1] ?? 0), written });
    };
    const timer = setTimeout(finish, 30_000);
    socket.on('data', (c) => {
      answer += c.toString('latin1');
      if (answer.includes('\r\n\r\n')) finish();
    });
    socket.on('error', finish);
    socket.on('close', finish);
    const piece = Buffer.concat([Buffer.from(`${chunk.toString(16)}\r\n`), randomBytes(chunk), Buffer.from('\r\n')]);
    const head = Object.entries({ ...headers, 'transfer-encoding': 'chunked' }).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    socket.write(`POST / HTTP/1.1\r\nhost: 127.0.0.1\r\n${head}\r\n`);
    const pump = () => {
      while (!done && written < max) {
        written += chunk;
        if (!socket.write(piece)) return void socket.once('drain', pump);
      }
    };
    pump();
  });
}

const metric = async (name: string, labels?: Record<string, string>) => (await scrapeMetrics(svc.url)).value(name, labels);
const inferences = () => metric('klassify_stage_seconds_count', { stage: 'inference' });

/** Readiness answers, a real photo is classified, and nothing is left in flight. */
async function assertServing(): Promise<void> {
  assert.is((await fetch(svc.url + '/health/readiness')).status, 200, 'still ready');
  const res = await fetch(svc.url + '/classify', { method: 'POST', headers: { 'content-type': 'image/png' }, body: await fixture('chelsea.png') });
  assert.is(res.status, 200, 'a normal request is served');
  assert.ok(CAT_LABELS.includes((await res.json()).predictions[0].label));
  await pollUntil('in-flight requests to return to 0', async () => (await metric('klassify_in_flight_requests')) === 0);
}

function assertProblem(res: Answer, status: number, code: string, what: string): void {
  assert.is(res.status, status, `${what}: ${res.text}`);
  assert.is(res.headers['content-type'], 'application/problem+json', what);
  assert.is(JSON.parse(res.text).type, problemType(code), what);
}

// ---------------------------------------------------------------------------------------
const malformed = suite('hostile CloudEvents: malformed attributes are a 400 before any work');
malformed.before(start);
malformed.after(stop);

const structuredCases: Record<string, string> = {
  'id empty': structured({ id: '' }),
  'id a number': structured({ id: 42 }),
  'id null': structured({ id: null }),
  'subject a number': structured({ subject: 42 }),
  'subject an object': structured({ subject: { a: 1 } }),
  'subject an array': structured({ subject: ['a'] }),
  'subject with CRLF': structured({ subject: 'a.png\r\nx-injected: 1' }),
  'id with CRLF': structured({ id: 'a\r\nx-injected: 1' }),
  'subject not Latin-1': structured({ subject: '猫.jpg' }),
  'id not Latin-1': structured({ id: '猫' }),
  'subject Latin-1 but not ASCII': structured({ subject: 'café.jpg' }),
  'source with a NUL': structured({ source: '/a\u0000b' }),
  'id over 1 KiB': structured({ id: 'i'.repeat(1025) }),
  'source of 1 MB': structured({ source: 's'.repeat(1_000_000) }),
  'time a number': structured({ time: 1 }),
  // The spec: an optional attribute, if present, is a non-empty string. The SDK refuses a
  // reply with an empty subject, so it is refused here, before any work.
  'subject empty': structured({ subject: '' }),
  'datacontenttype empty': structured({ datacontenttype: '' }),
  'dataschema empty': structured({ dataschema: '' }),
  'time empty': structured({ time: '' }),
  // Reply headers would lose the space: the receiver would see another value, or none.
  'subject of one space': structured({ subject: ' ' }),
  'subject with a leading space': structured({ subject: ' a.png' }),
  'id with a trailing space': structured({ id: 'a ' }),
  'source with a trailing space': structured({ source: '/tests/hostile ' }),
  '33 extensions': structured(Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`ext${i}`, 'v']))),
  'extension name upper-case': structured({ Foo: 'v' }),
  'extension name with a dash': structured({ 'a-b': 'v' }),
  'extension name of 65 characters': structured({ ['n'.repeat(65)]: 'v' }),
  'extension an object': structured({ ext: { a: 1 } }),
  'extension a fraction': structured({ ext: 1.5 }),
  'extension over 1 KiB': structured({ ext: 'e'.repeat(1025) }),
  'data and data_base64': structured({ data: 'x' }),
  'data_base64 not base64': structured({ data_base64: '@@@@' }),
  'data_base64 a number': structured({ data_base64: 7 }),
  'a batch in structured mode': JSON.stringify([JSON.parse(structured({}))]),
  'JSON null': 'null',
  'JSON number': '42',
  'not JSON': '{"specversion": "1.0",',
  '300,000 empty objects': '[' + '{},'.repeat(300_000) + '{}]',
  '100,000 nested arrays in an extension': structured({}).replace(/}$/, `,"ext":${'['.repeat(100_000)}${']'.repeat(100_000)}}`),
  'specversion 0.3': structured({ specversion: '0.3' }),
};

malformed('structured mode: each kind of malformed attribute', async () => {
  const before = await inferences();
  const entries = await metric('klassify_dedupe_entries');
  for (const [what, body] of Object.entries(structuredCases)) {
    assertProblem(await post(STRUCTURED, body), 400, 'malformed-cloudevent', what);
  }
  assert.is(await inferences(), before, 'no inference ran');
  assert.is(await metric('klassify_dedupe_entries'), entries, 'nothing was stored');
});

malformed('other event formats and batches are refused before the body is read', async () => {
  for (const type of ['application/cloudevents-batch+json', 'application/cloudevents+xml']) {
    assertProblem(await post({ 'content-type': type }, structured({})), 400, 'malformed-cloudevent', type);
  }
});

malformed('binary mode: missing or malformed ce-* headers', async () => {
  const img = await fixture('chelsea.png');
  const before = await inferences();
  const without = (name: string) => Object.fromEntries(Object.entries(binaryHeaders('b-1')).filter(([k]) => k !== name));
  for (const name of ['ce-id', 'ce-source', 'ce-type', 'ce-specversion']) {
    const res = await post(without(name), img);
    assertProblem(res, 400, 'malformed-cloudevent', `without ${name}`);
    assert.match(JSON.parse(res.text).detail, `"${name.slice(3)}" is missing`);
  }
  assertProblem(await post(binaryHeaders('i'.repeat(2048)), img), 400, 'malformed-cloudevent', 'ce-id of 2 KiB');
  assertProblem(await post(binaryHeaders('b-2', { 'ce-subject': 's'.repeat(1025) }), img), 400, 'malformed-cloudevent', 'ce-subject over 1 KiB');
  const many = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`ce-ext${i}`, 'v']));
  assertProblem(await post(binaryHeaders('b-3', many), img), 400, 'malformed-cloudevent', '40 extensions');
  assertProblem(await post(binaryHeaders('b-4', { 'ce-foo_bar': 'v' }), img), 400, 'malformed-cloudevent', 'ce-foo_bar');
  assertProblem(await post(binaryHeaders('b-5', { 'ce-specversion': '0.3' }), img), 400, 'malformed-cloudevent', 'specversion 0.3');
  assert.is(await inferences(), before, 'no inference ran');
});

malformed('binary mode: raw non-Latin-1 and non-ASCII header bytes', async () => {
  const head = (extra: string) =>
    `POST / HTTP/1.1\nhost: 127.0.0.1\nconnection: close\nce-specversion: 1.0\nce-source: /tests/raw\nce-type: ${SUBMITTED}\ncontent-type: image/png\ncontent-length: 4\n${extra}\n`;
  const body = Buffer.from('abcd');
  const before = await inferences();
  for (const extra of ['ce-id: raw-1\nce-subject: 猫.jpg', 'ce-id: 猫', 'ce-id: raw-2\nce-subject: caf\u00e9', 'ce-id: raw-3\nce-correlationid: \u{1F431}']) {
    const res = await rawRequest(head(extra), body);
    assertProblem(res, 400, 'malformed-cloudevent', JSON.stringify(extra));
  }
  assert.is(await inferences(), before, 'no inference ran');
});

malformed('an empty subject is a 400 before any work; in binary mode, before the body is read', async () => {
  const img = await fixture('chelsea.png');
  const before = await inferences();
  const res = await post(STRUCTURED, structured({ id: 'empty-subject', subject: '', data_base64: Buffer.from(img).toString('base64') }));
  assertProblem(res, 400, 'malformed-cloudevent', 'structured subject ""');
  assert.match(JSON.parse(res.text).detail, /"subject" is empty/);
  // An empty ce-subject header, with a body declared at 1 MB of which 1 KB is sent: the
  // answer does not wait for the rest.
  const head = `POST / HTTP/1.1\nhost: 127.0.0.1\nconnection: close\nce-specversion: 1.0\nce-id: empty-subject\nce-source: /tests/raw\nce-type: ${SUBMITTED}\nce-subject: \ncontent-type: image/png\ncontent-length: ${BODY_LIMIT}\n`;
  const binary = await rawRequest(head, Buffer.from(img.subarray(0, 1024)));
  assertProblem(binary, 400, 'malformed-cloudevent', 'empty ce-subject header');
  assert.match(JSON.parse(binary.text).detail, /"subject" is empty/);
  assert.is(await inferences(), before, 'no inference ran');
});

/**
 * What the reply to an event without an image must be: a 200 with a rejected event that
 * the SDK accepts as it arrives, or a 400 problem (malformed, another type). Node's own
 * parser answers a bare 400 to header bytes it refuses. Never a 5xx.
 */
function assertAnswered(res: Answer, what: string): void {
  assert.ok(res.status === 200 || res.status === 400, `${what}: ${res.status} ${res.text.slice(0, 300)}`);
  if (res.status === 400) {
    if (res.headers['content-type'] === undefined) return; // Node's parser refused the bytes
    const { type } = JSON.parse(res.text);
    assert.ok([problemType('malformed-cloudevent'), problemType('unsupported-event-type')].includes(type), `${what}: ${type}`);
    return;
  }
  assert.is(res.headers['ce-type'], REJECTED, what);
  const reply = HTTP.toEvent({ headers: res.headers, body: res.text }) as import('cloudevents').CloudEvent;
  reply.validate(); // throws as the next hop's SDK would
}

const NAMES = ['subject', 'id', 'source', 'type', 'time', 'dataschema', 'datacontenttype', 'correlationid', 'myext'];
/** Strings from every corner: printable ASCII, controls, Latin-1, any code point (lone surrogates too), long ones. */
const text = fc.oneof(
  fc.string({ unit: 'grapheme-ascii', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'binary-ascii', maxLength: 40 }),
  fc.string({ unit: fc.constantFrom(' ', '%', '"', '\\', '\r', '\n', '\t', '\u0000', '\u00e9', '\ud800', '\u{1f431}'), maxLength: 8 }),
  fc.string({ unit: 'grapheme-ascii', minLength: 1000, maxLength: 1100 }),
);
let sweepId = 0;

malformed('a sweep of generated attribute values, structured mode: a 200 the SDK accepts or a 400, never a 5xx', async () => {
  const value = fc.oneof(text, fc.jsonValue({ maxDepth: 2 }), fc.integer(), fc.double(), fc.boolean(), fc.constant(null));
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...NAMES), value, async (name, v) => {
      const res = await post(STRUCTURED, JSON.stringify({ specversion: '1.0', id: `sweep-${++sweepId}`, source: '/tests/sweep', type: SUBMITTED, [name]: v }));
      assertAnswered(res, `${name}=${JSON.stringify(v)?.slice(0, 200)}`);
      if (res.status === 200 && name === 'subject' && typeof v === 'string') assert.is(res.headers['ce-subject'], v, 'the subject comes back as sent');
    }),
    { numRuns: 300 },
  );
});

malformed('a sweep of generated attribute values, binary mode: raw header bytes get a 200 the SDK accepts or a 400, never a 5xx', async () => {
  // Any byte but CR and LF, which would end the header line: Latin-1 text, controls, obs-text.
  const bytes = fc.string({ unit: fc.integer({ min: 0, max: 255 }).filter((c) => c !== 10 && c !== 13).map((c) => String.fromCharCode(c)), maxLength: 40 });
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...NAMES.filter((n) => n !== 'datacontenttype')), fc.oneof(bytes, text.filter((t) => !/[\r\n]/.test(t))), async (name, v) => {
      const attributes: Record<string, string> = { specversion: '1.0', id: `sweep-${++sweepId}`, source: '/tests/sweep', type: SUBMITTED, [name]: v };
      const head = ['POST / HTTP/1.1', 'host: 127.0.0.1', 'connection: close', 'content-length: 0', ...Object.entries(attributes).map(([k, x]) => `ce-${k}: ${x}`)].join('\n') + '\n';
      assertAnswered(await rawRequest(head, Buffer.alloc(0), 'latin1'), `ce-${name}=${JSON.stringify(v).slice(0, 200)}`);
    }),
    { numRuns: 200 },
  );
});

malformed('a refused event is not remembered: the same id, fixed, is classified', async () => {
  const img = await fixture('chelsea.png');
  const bad = await post(STRUCTURED, structured({ id: 'fixed-later', subject: 'a\r\nb', data_base64: Buffer.from(img).toString('base64') }));
  assert.is(bad.status, 400);
  const again = await post(STRUCTURED, structured({ id: 'fixed-later', subject: 'a\r\nb', data_base64: Buffer.from(img).toString('base64') }));
  assert.is(again.status, 400, 'a redelivery is refused the same way, not served from a cache');
  const good = await post(binaryHeaders('fixed-later', { 'ce-subject': 'a b' }), img);
  assert.is(good.status, 200);
  assert.is(good.headers['ce-type'], CLASSIFIED);
  assert.is(good.headers['x-klassify-duplicate'], 'false');
});

malformed('attributes at the limits are accepted and copied into the reply headers as sent', async () => {
  // Every printable character; not leading or trailing spaces, which HTTP trims from any header.
  const subject = '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~ '.repeat(32).slice(0, 1024);
  const id = 'i'.repeat(1024);
  const extensions = Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`ce-ext${i}`, 'v']));
  const res = await post(binaryHeaders(id, { 'ce-subject': subject, ...extensions }), await fixture('rocket.jpg'));
  assert.is(res.status, 200, res.text);
  assert.is(res.headers['ce-type'], CLASSIFIED);
  assert.is(res.headers['ce-subject'], subject);
  assert.is(res.headers['ce-correlationid'], id);
  assert.is(res.headers['ce-correlationsource'], '/tests/hostile');
  assert.is(res.headers['ce-ext0'], undefined, 'input extensions are not echoed');
});

malformed('the service keeps serving', assertServing);
malformed.run();

// ---------------------------------------------------------------------------------------
const oversize = suite('hostile CloudEvents: body limits apply to what is read');
oversize.before(start);
oversize.after(stop);

oversize('binary mode: a declared length over the limit is a 413 at once', async () => {
  const head = `POST / HTTP/1.1\nhost: 127.0.0.1\nconnection: close\nce-specversion: 1.0\nce-id: big\nce-source: /x\nce-type: ${SUBMITTED}\ncontent-type: image/png\ncontent-length: 13000000\n`;
  assertProblem(await rawRequest(head, Buffer.alloc(1024)), 413, 'payload-too-large', '13 MB declared');
});

oversize('binary mode: an undeclared (chunked) body is cut at the limit', async () => {
  const max = 64 * 1024 * 1024;
  const { status, written } = await streamBody(binaryHeaders('chunked-big'), max);
  assert.is(status, 413);
  // Socket buffers on both sides hold a few MB more than the server read; 64 MiB is what
  // reading it all would take.
  assert.ok(written < max / 2, `${(written / 2 ** 20).toFixed(1)} MiB written before the 413`);
});

oversize('binary mode: exactly the limit is read and answered', async () => {
  const res = await post(binaryHeaders('exact-binary'), new Uint8Array(randomBytes(BODY_LIMIT)));
  assert.is(res.status, 200);
  assert.is(res.headers['ce-type'], REJECTED, 'random bytes are not an image');
});

oversize('structured mode: the limit is the base64 of the image limit plus a small allowance', async () => {
  const exact = structured({ id: 'exact-structured', data_base64: randomBytes(BODY_LIMIT).toString('base64') });
  assert.ok(exact.length <= structuredLimit(BODY_LIMIT));
  const res = await post(STRUCTURED, exact);
  assert.is(res.status, 200, res.text);
  assert.is(res.headers['ce-type'], REJECTED);
  const over = structured({ id: 'over-structured', data_base64: randomBytes(BODY_LIMIT + 48 * 1024).toString('base64') });
  assert.ok(over.length > structuredLimit(BODY_LIMIT));
  assertProblem(await post(STRUCTURED, over), 413, 'payload-too-large', 'structured over the limit');
});

oversize('structured mode: an undeclared (chunked) body is cut at the limit', async () => {
  const max = 64 * 1024 * 1024;
  const { status, written } = await streamBody(STRUCTURED, max);
  assert.is(status, 413);
  assert.ok(written < max / 2, `${(written / 2 ** 20).toFixed(1)} MiB written before the 413`);
});

oversize('the service keeps serving', assertServing);
oversize.run();

// ---------------------------------------------------------------------------------------
const dedupe = suite('hostile CloudEvents: de-duplication flooding and collisions');
dedupe.before(start);
dedupe.after(stop);

dedupe('a flood of unique ids with 1 KiB attributes stays within the byte budget', async () => {
  const events = 1000;
  const concurrency = 8;
  const source = '/s' + 's'.repeat(1022);
  const subject = 'p'.repeat(1024);
  const rssBefore = process.memoryUsage().rss;
  let next = 0;
  let rejected = 0;
  let peak = 0;
  const sender = async () => {
    while (next < events) {
      const n = next++;
      const id = String(n).padStart(1024, '0');
      const res = await post(binaryHeaders(id, { 'ce-source': source, 'ce-subject': subject }), new Uint8Array(randomBytes(16)));
      assert.is(res.status, 200);
      if (res.headers['ce-type'] === REJECTED) rejected++;
      if (n % 250 === 0) peak = Math.max(peak, await metric('klassify_dedupe_bytes'));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, sender));
  assert.is(rejected, events, 'each flood event was answered on its own');
  const bytes = await metric('klassify_dedupe_bytes');
  const entries = await metric('klassify_dedupe_entries');
  assert.ok(bytes <= DEDUPE_BYTES && peak <= DEDUPE_BYTES, `${bytes} bytes held (peak ${peak}), budget ${DEDUPE_BYTES}`);
  // Each entry holds a ~4 KiB key and a ~4 KiB reply: only a few dozen fit in 256 KiB.
  assert.ok(entries > 0 && entries < 100, `${entries} entries held`);
  const rssDelta = process.memoryUsage().rss - rssBefore;
  assert.ok(rssDelta < 128 * 2 ** 20, `RSS grew by ${(rssDelta / 2 ** 20).toFixed(1)} MiB`);
});

dedupe('the same (source, id) with another photo is classified on its own', async () => {
  const [cat, rocket] = [await fixture('chelsea.png'), await fixture('rocket.jpg')];
  const first = await post(binaryHeaders('collide'), cat);
  const second = await post(binaryHeaders('collide', { 'content-type': 'image/jpeg' }), rocket);
  assert.is(first.status, 200);
  assert.is(second.status, 200);
  assert.ok(CAT_LABELS.includes(JSON.parse(first.text).predictions[0].label));
  assert.is(JSON.parse(second.text).predictions[0].label, 'missile', 'not the other photo’s result');
  assert.is(second.headers['x-klassify-duplicate'], 'false');
  // A true redelivery is still de-duplicated, in either mode: the key is the data, not its framing.
  const redelivered = await post(STRUCTURED, structured({ id: 'collide', data_base64: Buffer.from(cat).toString('base64') }));
  assert.is(redelivered.status, 200);
  assert.is(redelivered.headers['x-klassify-duplicate'], 'true');
  assert.is(redelivered.headers['ce-id'], first.headers['ce-id']);
});

dedupe('the service keeps serving', assertServing);
dedupe.run();

// ---------------------------------------------------------------------------------------
const retry = suite('hostile CloudEvents: overload and not-ready are a 503 the broker retries');
let loading: RunningService | undefined;
let failLoad: (err: Error) => void = () => {};
retry.before(async () => {
  svc = await startTestService({ KLASSIFY_QUEUE_SIZE: '1' });
});
retry.after(async () => {
  failLoad(new Error('test over'));
  await Promise.all([svc?.shutdown(), loading?.shutdown()]);
});

retry('a full queue is a 503 with Retry-After, and the slot comes back when the holder goes', async () => {
  // A binary event whose body never ends holds the only admission slot.
  const holder = connect(port(), '127.0.0.1');
  holder.on('error', () => {});
  try {
    const head = Object.entries(binaryHeaders('holder')).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    holder.write(`POST / HTTP/1.1\r\nhost: 127.0.0.1\r\n${head}content-length: 1000\r\n\r\nabc`);
    await pollUntil('the held slot to show', async () => (await metric('klassify_in_flight_requests')) === 1);
    const res = await post(binaryHeaders('refused'), await fixture('chelsea.png'));
    assertProblem(res, 503, 'overloaded', 'queue full');
    assert.ok(Number(res.headers['retry-after']) >= 1, 'Retry-After');
  } finally {
    holder.destroy();
  }
  await pollUntil('the slot to be released after the holder went', async () => (await metric('klassify_in_flight_requests')) === 0);
  const res = await post(binaryHeaders('after-holder'), await fixture('chelsea.png'));
  assert.is(res.status, 200);
  assert.is(res.headers['ce-type'], CLASSIFIED);
});

retry('a model still loading is a 503 with Retry-After', async () => {
  loading = await startService(testConfig(), silentLogger, new Promise((_, reject) => (failLoad = reject)));
  const res = await fetch(loading.url + '/', { method: 'POST', headers: binaryHeaders('early'), body: await fixture('chelsea.png') });
  assert.is(res.status, 503);
  assert.is(res.headers.get('retry-after'), '1');
  assert.is((await res.json()).type, problemType('not-ready'));
});

retry('the service keeps serving', assertServing);
retry.run();
