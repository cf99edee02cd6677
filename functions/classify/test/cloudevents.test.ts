import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { CloudEvent, HTTP } from 'cloudevents';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { EventDeduper, ENTRY_OVERHEAD_BYTES } from '../src/events/dedupe.ts';
import { checkEventSource, createDeduper, handleEvent } from '../src/events/handler.ts';
import { validateAttributes } from '../src/events/validate.ts';
import { UnprocessableImage, WorkerUnavailable } from '../src/errors.ts';
import { CLASSIFICATION_SCHEMA } from '../../../contracts/classification.ts';
import { CLASSIFIED, REJECTED, REJECTION_SCHEMA, SUBMITTED } from '../../../contracts/events.ts';
import { DEFAULT_MODEL, MODEL_EXTENSION, MODEL_NAMES } from '../../../contracts/models.ts';
import { problemType } from '../../../contracts/problems.ts';
import type { RunningService } from '../src/server.ts';
import { CAT_LABELS, fixture, scrapeMetrics, startTestService, testConfig } from '../../../test/support.ts';

let svc: RunningService;

const ajv = new Ajv2020({ allErrors: true });
const isClassification = ajv.compile(CLASSIFICATION_SCHEMA);
const isRejection = ajv.compile(REJECTION_SCHEMA);
function assertValid(validate: ValidateFunction, value: unknown) {
  assert.ok(validate(value), ajv.errorsText(validate.errors));
}

function submitted(id: string, data: Uint8Array, extra: Record<string, unknown> = {}) {
  return new CloudEvent({ specversion: '1.0', id, source: '/tests/uploader', type: SUBMITTED, subject: `photos/${id}.png`, datacontenttype: 'image/png', data, ...extra });
}

async function deliver(headers: Record<string, string>, body: string | Uint8Array<ArrayBuffer>) {
  const res = await fetch(svc.url + '/', { method: 'POST', headers, body });
  const buf = new Uint8Array(await res.arrayBuffer());
  const h = Object.fromEntries(res.headers);
  return { status: res.status, headers: h, text: Buffer.from(buf).toString(), event: res.status === 200 ? (HTTP.toEvent({ headers: h, body: Buffer.from(buf).toString() }) as CloudEvent<any>) : undefined };
}

const events = suite('CloudEvents at POST /');
events.before(async () => {
  svc = await startTestService();
});
events.after(() => svc?.shutdown());

events('binary mode: an image event is answered with a classified event', async () => {
  const input = submitted('evt-1', await fixture('chelsea.png'));
  const { headers, body } = HTTP.binary(input);
  const res = await deliver(headers as Record<string, string>, body as Uint8Array<ArrayBuffer>);
  assert.is(res.status, 200);
  assert.ok(res.headers['ce-id'], 'binary-mode reply');
  const reply = res.event!;
  assert.is(reply.type, CLASSIFIED);
  assert.is(reply.source, '/klassify/classify');
  assert.is.not(reply.id, 'evt-1');
  assert.is(reply.subject, 'photos/evt-1.png');
  assert.is(reply.correlationid, 'evt-1');
  assert.is(reply.correlationsource, '/tests/uploader');
  assert.is(reply.datacontenttype, 'application/json');
  assert.ok(CAT_LABELS.includes(reply.data.predictions[0].label));
  assert.is(reply.data.model, testConfig().model);
  assert.type(reply.data.timingMs.inference, 'number');
  assertValid(isClassification, reply.data);
});
events('the {MODEL_EXTENSION} extension picks the model, in binary and structured mode', async () => {
  for (const model of MODEL_NAMES) {
    const input = submitted(`evt-model-${model}`, await fixture('chelsea.png'), { [MODEL_EXTENSION]: model });
    const { headers, body } = HTTP.binary(input);
    assert.is(headers[`ce-${MODEL_EXTENSION}`], model);
    const res = await deliver(headers as Record<string, string>, body as Uint8Array<ArrayBuffer>);
    assert.is(res.event!.type, CLASSIFIED);
    assert.is(res.event!.data.model, model);
    assert.ok(CAT_LABELS.includes(res.event!.data.predictions[0].label));
    const structured = JSON.stringify({
      specversion: '1.0', id: `evt-model-s-${model}`, source: '/tests/uploader', type: SUBMITTED, [MODEL_EXTENSION]: model,
      data_base64: Buffer.from(await fixture('coffee.png')).toString('base64'),
    });
    assert.is((await deliver({ 'content-type': 'application/cloudevents+json' }, structured)).event!.data.model, model);
  }
});
events('an unknown model is a 400 (not retried) that lists the served ones', async () => {
  const input = submitted('evt-model-x', await fixture('chelsea.png'), { [MODEL_EXTENSION]: 'inception_v3' });
  const { headers, body } = HTTP.binary(input);
  const res = await deliver(headers as Record<string, string>, body as Uint8Array<ArrayBuffer>);
  assert.is(res.status, 400);
  const problem = JSON.parse(res.text);
  assert.is(problem.type, problemType('invalid-parameter'));
  assert.is(problem.parameter, 'model');
  assert.equal(problem.models, [...MODEL_NAMES]);
  assert.match(problem.detail, /does not serve the model "inception_v3"/);
});
events('structured mode with data_base64 works the same', async () => {
  const body = JSON.stringify({
    specversion: '1.0', id: 'evt-2', source: '/tests/uploader', type: SUBMITTED, datacontenttype: 'image/png',
    data_base64: Buffer.from(await fixture('coffee.png')).toString('base64'),
  });
  const res = await deliver({ 'content-type': 'application/cloudevents+json' }, body);
  assert.is(res.status, 200);
  assert.is(res.event!.type, CLASSIFIED);
  assert.is(res.event!.data.predictions[0].label, 'espresso');
});
events('a redelivered event gets the same reply without a second inference', async () => {
  const input = submitted('evt-dup', await fixture('rocket.jpg'));
  const { headers, body } = HTTP.binary(input);
  const metric = async () => (await scrapeMetrics(svc.url)).value('klassify_stage_seconds_count', { stage: 'inference' });
  const first = await deliver(headers as Record<string, string>, body as Uint8Array<ArrayBuffer>);
  const runs = await metric();
  const second = await deliver(headers as Record<string, string>, body as Uint8Array<ArrayBuffer>);
  assert.is(await metric(), runs, 'no new inference');
  assert.is(second.headers['x-klassify-duplicate'], 'true');
  assert.is(first.headers['x-klassify-duplicate'], 'false');
  assert.is(second.event!.id, first.event!.id);
  assert.equal(second.event!.data, first.event!.data);
});
events('a bad image is acknowledged with a rejected event carrying the problem, without an HTTP status', async () => {
  const input = submitted('evt-bad', new TextEncoder().encode('<svg xmlns="http://www.w3.org/2000/svg"/>'), { datacontenttype: 'image/svg+xml' });
  const { headers, body } = HTTP.binary(input);
  const res = await deliver(headers as Record<string, string>, body as Uint8Array<ArrayBuffer>);
  assert.is(res.status, 200, 'a 2xx, so the broker does not retry');
  assert.is(res.event!.type, REJECTED);
  assert.is(res.event!.data.type, problemType('unsupported-media-type'));
  assert.is(res.event!.data.status, undefined);
  assertValid(isRejection, res.event!.data);
  assert.match(res.event!.data.detail, /SVG is not supported/);
  assert.is(res.event!.correlationid, 'evt-bad');
});
events('malformed events are a 400 problem', async () => {
  const img = await fixture('chelsea.png');
  const missingId = await deliver({ 'ce-specversion': '1.0', 'ce-source': '/x', 'ce-type': SUBMITTED, 'content-type': 'image/png' }, img);
  assert.is(missingId.status, 400);
  assert.is(missingId.headers['content-type'], 'application/problem+json');
  const oldSpec = await deliver({ 'ce-specversion': '0.3', 'ce-id': 'a', 'ce-source': '/x', 'ce-type': SUBMITTED, 'content-type': 'image/png' }, img);
  assert.is(oldSpec.status, 400);
  assert.match(oldSpec.text, /specversion/);
  const wrongType = await deliver({ 'ce-specversion': '1.0', 'ce-id': 'b', 'ce-source': '/x', 'ce-type': CLASSIFIED, 'content-type': 'image/png' }, img);
  assert.is(wrongType.status, 400);
  assert.match(wrongType.text, /not handled here/);
  const garbage = await deliver({ 'content-type': 'application/cloudevents+json' }, '{not json');
  assert.is(garbage.status, 400);
});
events('structured mode needs id, source, type and specversion like binary mode', async () => {
  const base = { specversion: '1.0', id: 'evt-s', source: '/tests/uploader', type: SUBMITTED, data_base64: Buffer.from(await fixture('chelsea.png')).toString('base64') };
  for (const name of ['id', 'source', 'type', 'specversion'] as const) {
    const { [name]: _, ...event } = base;
    const res = await deliver({ 'content-type': 'application/cloudevents+json' }, JSON.stringify(event));
    assert.is(res.status, 400, name);
    assert.is(res.headers['content-type'], 'application/problem+json');
    assert.match(JSON.parse(res.text).detail, `required attribute "${name}"`);
  }
});
events('an event without an image is acknowledged with a rejected event', async () => {
  const structured = await deliver({ 'content-type': 'application/cloudevents+json' }, JSON.stringify({ specversion: '1.0', id: 'evt-noimg', source: '/tests/uploader', type: SUBMITTED }));
  assert.is(structured.status, 200);
  assert.is(structured.event!.type, REJECTED);
  assert.is(structured.event!.data.type, problemType('missing-image'));
  const binary = await deliver({ 'ce-specversion': '1.0', 'ce-id': 'evt-empty', 'ce-source': '/x', 'ce-type': SUBMITTED, 'content-type': 'image/png' }, new Uint8Array(0));
  assert.is(binary.status, 200);
  assert.is(binary.event!.type, REJECTED);
  assert.is(binary.event!.data.type, problemType('missing-image'));
});
events.run();

const dedupe = suite('EventDeduper');
const reply = (body: string) => async () => body;
const store = (limits: Partial<{ ttlMs: number; maxEntries: number; maxBytes: number }> = {}) =>
  new EventDeduper<string>({ ttlMs: 60_000, maxEntries: 100, maxBytes: 1024 * 1024, ...limits }, (v) => v.length);

dedupe('bounds its memory by count', async () => {
  const d = store({ maxEntries: 3 });
  for (let i = 0; i < 10; i++) await d.once(String(i), reply(String(i)));
  assert.is(d.size, 3);
  let ran = false;
  await d.once('0', async () => ((ran = true), 'again'));
  assert.ok(ran, 'the oldest entry was evicted');
});
dedupe('bounds its memory by bytes, counting keys and replies', async () => {
  const maxBytes = 10 * (ENTRY_OVERHEAD_BYTES + 1000 + 2 * 4);
  const d = store({ maxEntries: 1_000_000, maxBytes });
  for (let i = 0; i < 100; i++) {
    await d.once(String(i).padStart(4, '0'), reply('x'.repeat(1000)));
    assert.ok(d.bytes <= maxBytes, `${d.bytes} bytes held, limit ${maxBytes}`);
  }
  assert.is(d.size, 10, 'ten entries of this size fit');
  assert.is(d.bytes, 10 * (ENTRY_OVERHEAD_BYTES + 1000 + 8));
  assert.is((await d.once('0099', reply('other'))).duplicate, true, 'the newest are kept');
  assert.is((await d.once('0000', reply('other'))).duplicate, false, 'the oldest went first');
});
dedupe('a reply larger than the whole budget is not kept', async () => {
  const d = store({ maxBytes: 2048 });
  await d.once('big', reply('x'.repeat(4096)));
  assert.is(d.size, 0);
  assert.is(d.bytes, 0);
});
dedupe('forgets entries after the TTL and never remembers failures', async () => {
  let now = 5000; // lru-cache takes a start time of 0 for "no TTL"
  const d = new EventDeduper<string>({ ttlMs: 1000, maxEntries: 100, maxBytes: 1024 * 1024 }, (v) => v.length, undefined, { now: () => now });
  await d.once('a', reply('1'));
  now += 999;
  assert.equal(await d.once('a', reply('2')), { value: '1', duplicate: true }, 'kept within the TTL');
  now += 2;
  assert.equal(await d.once('a', reply('2')), { value: '2', duplicate: false }, 'forgotten after it');
  const d2 = store();
  await d2.once('f', async () => Promise.reject(new Error('boom'))).catch(() => {});
  assert.is(d2.size, 0);
  assert.is(d2.bytes, 0, 'the failed run holds no bytes');
  assert.is((await d2.once('f', reply('ok'))).duplicate, false);
});
dedupe('a concurrent duplicate waits for the first run', async () => {
  const d = store();
  let runs = 0;
  let finish: (value: string) => void = () => {};
  const first = new Promise<string>((resolve) => (finish = resolve));
  const slow = () => (runs++, first);
  const both = Promise.all([d.once('c', slow), d.once('c', slow)]);
  finish('x');
  const [a, b] = await both;
  assert.is(runs, 1);
  assert.equal([a, b], [{ value: 'x', duplicate: false }, { value: 'x', duplicate: true }]);
});
dedupe('reports what it holds after each change', async () => {
  const seen: [number, number][] = [];
  let now = 5000;
  const d = new EventDeduper<string>({ ttlMs: 10, maxEntries: 2, maxBytes: 1024 * 1024 }, (v) => v.length, (n, bytes) => seen.push([n, bytes]), { now: () => now });
  const entry = 2 + ENTRY_OVERHEAD_BYTES + 2;
  await d.once('a', reply('xx'));
  assert.equal(seen.at(-1), [1, entry]);
  for (const key of ['b', 'c']) await d.once(key, reply('xx'));
  assert.equal(seen.at(-1), [2, 2 * entry], 'the oldest was evicted and the count followed');
  now += 11;
  assert.is((await d.once('b', reply('yy'))).duplicate, false, 'expired');
  assert.ok(seen.some(([n]) => n === 1), 'the expired entry left before the new one came');
  assert.equal(seen.at(-1), [2, 2 * entry]);
});
dedupe.run();

/**
 * The handler alone, with a classifier that fails on purpose: which failures become a
 * rejected reply (acknowledged) and which fail the delivery (so the transport answers 503 or
 * 500 and the broker retries), and that only replies are remembered.
 */
const handler = suite('event handler outcomes');
const limits = { dedupeTtlMs: 60_000, dedupeMaxEntries: 100, dedupeMaxBytes: 1024 * 1024 };
const config = { eventSource: '/tests/handler', topkDefault: 5, resize: 'stretch' as const, model: DEFAULT_MODEL, models: [DEFAULT_MODEL] };
const incoming = (id: string) => ({ attributes: validateAttributes({ specversion: '1.0', id, source: '/tests', type: SUBMITTED, subject: 'p.png' }), data: Buffer.from('bytes') });
const failing = (err: Error) => {
  let calls = 0;
  return { classifier: { classify: async () => (calls++, Promise.reject(err)) }, calls: () => calls };
};

handler('a bad image is a rejected reply with the problem and correlation extensions, and is remembered', async () => {
  const c = failing(new UnprocessableImage('Truncated.'));
  const deps = { classifier: c.classifier, config, deduper: createDeduper(limits) };
  const { reply } = await handleEvent(incoming('h-1'), deps);
  assert.is(reply.type, REJECTED);
  assert.is(reply.source, '/tests/handler');
  assert.is(reply.subject, 'p.png');
  assert.is(reply.correlationid, 'h-1');
  assert.is(reply.correlationsource, '/tests');
  assert.equal(reply.data, { type: problemType('unprocessable-image'), title: 'Image cannot be decoded', detail: 'Truncated.' }, 'the problem, with no HTTP status');
  assert.is((await handleEvent(incoming('h-1'), deps)).duplicate, true);
  assert.is(c.calls(), 1);
});
for (const [what, err] of [['a lost worker', new WorkerUnavailable('gone')], ['a bug', new TypeError('boom')]] as const) {
  handler(`${what} fails the delivery so the broker retries, and is not remembered`, async () => {
    const c = failing(err);
    const deps = { classifier: c.classifier, config, deduper: createDeduper(limits) };
    for (let i = 0; i < 2; i++) {
      try {
        await handleEvent(incoming('h-2'), deps);
        assert.unreachable('should have thrown');
      } catch (e) {
        assert.is(e, err);
      }
    }
    assert.is(c.calls(), 2, 'the retry ran again');
    assert.is(deps.deduper.size, 0);
  });
}
handler.run();

const attributes = suite('event attributes, validated once where the event is read');
const valid = { specversion: '1.0', id: 'a-1', source: '/tests', type: SUBMITTED };
const code = (raw: Record<string, unknown>) => {
  try {
    validateAttributes(raw);
    return 'valid';
  } catch (err) {
    return (err as { code: string }).code;
  }
};
attributes('what a reply copies is refused up front when the SDK would refuse the reply', () => {
  assert.is(code({ ...valid, subject: 'p.png' }), 'valid');
  assert.is(code({ ...valid, subject: null }), 'valid', 'null is absent in the JSON format');
  for (const name of ['subject', 'datacontenttype', 'dataschema', 'time']) assert.is(code({ ...valid, [name]: '' }), 'malformed-cloudevent', `empty ${name}`);
  for (const name of ['subject', 'id', 'source']) {
    assert.is(code({ ...valid, [name]: ' x' }), 'malformed-cloudevent', `${name} with a leading space`);
    assert.is(code({ ...valid, [name]: 'x ' }), 'malformed-cloudevent', `${name} with a trailing space`);
  }
  assert.is(code({ ...valid, source: undefined }), 'malformed-cloudevent');
  assert.is(code({ ...valid, type: CLASSIFIED }), 'unsupported-event-type');
});
attributes('a source the SDK refuses in a reply stops start-up', () => {
  checkEventSource('/klassify/classify/classify-00001');
  assert.throws(() => checkEventSource('/a{b}'), /KLASSIFY_EVENT_SOURCE="\/a\{b\}" is invalid; valid values: a URI reference/);
});
attributes.run();

/**
 * A stand-in for a Knative Broker's delivery loop (not a real broker): it POSTs the event to
 * the subscriber with `Prefer: reply`, takes the reply event from the response, and
 * re-posts it to the sink that a second Trigger would route it to.
 */
const broker = suite('broker round trip (in-process stand-in)');
let sink: Server;
const sunk: CloudEvent<any>[] = [];
broker.before(async () => {
  svc = await startTestService();
  sink = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      sunk.push(HTTP.toEvent({ headers: req.headers as Record<string, string>, body: Buffer.concat(chunks).toString() }) as CloudEvent<any>);
      res.writeHead(202).end();
    });
  });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
});
broker.after(async () => {
  await svc?.shutdown();
  await new Promise((r) => sink?.close(r) ?? r(null));
});
broker('submit → classified reaches the sink through HTTP', async () => {
  const { headers, body } = HTTP.binary(submitted('evt-rt', await fixture('motorcycle_left.png')));
  const delivery = await fetch(svc.url + '/', { method: 'POST', headers: { ...(headers as Record<string, string>), prefer: 'reply' }, body: body as Uint8Array<ArrayBuffer> });
  assert.is(delivery.status, 200);
  const replyHeaders = Object.fromEntries(delivery.headers);
  const replyBody = Buffer.from(await delivery.arrayBuffer());
  const reply = HTTP.toEvent({ headers: replyHeaders, body: replyBody.toString() }) as CloudEvent<any>;
  // The broker re-publishes the reply; a Trigger on CLASSIFIED delivers it to the sink.
  assert.is(reply.type, CLASSIFIED);
  const forward = HTTP.binary(reply);
  const sinkRes = await fetch(`http://127.0.0.1:${(sink.address() as AddressInfo).port}/`, { method: 'POST', headers: forward.headers as Record<string, string>, body: forward.body as string });
  assert.is(sinkRes.status, 202);
  assert.is(sunk.length, 1);
  assert.is(sunk[0].correlationid, 'evt-rt');
  assert.is(sunk[0].data.predictions[0].label, 'moped');
});
broker.run();
