import { request } from 'node:http';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CLASSIFICATION_SCHEMA } from '../../../contracts/classification.ts';
import { MODEL_NAMES } from '../../../contracts/models.ts';
import { PROBLEM_BASE, PROBLEM_SCHEMA, problemType } from '../../../contracts/problems.ts';
import type { RunningService } from '../src/server.ts';
import { CAT_LABELS, fixture, pollUntil, scrapeMetrics, startTestService, testConfig } from '../../../test/support.ts';

/** The model that answers when a request names none, as the test services are configured. */
const DEFAULT = testConfig().model;

let svc: RunningService;

// The contract's schemas, as /openapi.json serves them: real answers must match them.
const ajv = new Ajv2020({ allErrors: true });
const isClassification = ajv.compile(CLASSIFICATION_SCHEMA);
const isProblem = ajv.compile(PROBLEM_SCHEMA);
function assertValid(validate: ValidateFunction, value: unknown) {
  assert.ok(validate(value), ajv.errorsText(validate.errors));
}

async function post(path: string, body: BodyInit | undefined, headers: Record<string, string> = {}) {
  const res = await fetch(svc.url + path, { method: 'POST', body, headers });
  const text = await res.text();
  const type = res.headers.get('content-type') ?? '';
  return { status: res.status, headers: res.headers, type, json: type.includes('json') ? JSON.parse(text) : undefined, text };
}

async function expectProblem(res: Awaited<ReturnType<typeof post>>, status: number, detail: RegExp) {
  assert.is(res.status, status, res.text);
  assert.is(res.type, 'application/problem+json');
  assert.is(res.json.status, status);
  assert.ok(res.json.type.startsWith(PROBLEM_BASE));
  assertValid(isProblem, res.json);
  assert.match(res.json.detail, detail);
  assert.not.match(res.text, /at .*\.ts:\d+/, 'no stack trace');
}

const api = suite('POST /classify');
api.before(async () => {
  svc = await startTestService({ KLASSIFY_BODY_LIMIT: String(2 * 1024 * 1024) });
});
api.after(() => svc?.shutdown());

api('classifies a raw PNG body', async () => {
  const res = await post('/classify?topk=3', await fixture('chelsea.png'), { 'content-type': 'image/png' });
  assert.is(res.status, 200);
  assert.is(res.json.model, DEFAULT);
  assert.is(res.json.predictions.length, 3);
  assert.ok(CAT_LABELS.includes(res.json.predictions[0].label));
  assert.is(res.json.predictions[0].classIndex, 285);
  assert.ok(res.json.predictions[0].probability > 0.5);
  for (const k of ['decode', 'queue', 'inference', 'total']) assert.type(res.json.timingMs[k], 'number');
  assert.equal(Object.keys(res.json.servedBy).sort(), ['batchSize', 'engine', 'pod', 'provider', 'revision']);
  assertValid(isClassification, res.json);
});
api('trusts the bytes, not the Content-Type (a PNG sent as image/jpeg and octet-stream)', async () => {
  for (const type of ['image/jpeg', 'application/octet-stream']) {
    const res = await post('/classify', await fixture('coffee.png'), { 'content-type': type });
    assert.is(res.json.predictions[0].label, 'espresso');
    assert.is(res.json.predictions.length, 5);
  }
});
api('accepts multipart/form-data with an image field', async () => {
  const form = new FormData();
  form.append('note', 'ignored');
  form.append('image', new Blob([await fixture('rocket.jpg')]), 'rocket.jpg');
  const res = await post('/classify?topk=1', form);
  assert.is(res.status, 200);
  assert.is(res.json.predictions[0].label, 'missile');
});
api('multipart without the image field is a 400', async () => {
  const form = new FormData();
  form.append('picture', new Blob([await fixture('rocket.jpg')]), 'rocket.jpg');
  await expectProblem(await post('/classify', form), 400, /no "image" \(or "file"\) file field/);
});
api('multipart accepts the image as a "file" field, with topk and resize as form fields', async () => {
  const form = new FormData();
  form.append('topk', '2');
  form.append('resize', 'center-crop');
  form.append('file', new Blob([await fixture('rocket.jpg')]), 'rocket.jpg');
  const res = await post('/classify', form);
  assert.is(res.status, 200, res.text);
  // The same answer as the same options in the query string (center-crop changes it).
  const viaQuery = await post('/classify?topk=2&resize=center-crop', await fixture('rocket.jpg'), { 'content-type': 'image/jpeg' });
  assert.equal(res.json.predictions, viaQuery.json.predictions);
  const stretched = await post('/classify?topk=2', await fixture('rocket.jpg'), { 'content-type': 'image/jpeg' });
  assert.not.equal(res.json.predictions, stretched.json.predictions);
  // The query string wins over a form field; a bad form field is a 400 like a bad query.
  assert.is((await post('/classify?topk=1', form)).json.predictions.length, 1);
  const bad = new FormData();
  bad.append('topk', 'many');
  bad.append('image', new Blob([await fixture('rocket.jpg')]), 'rocket.jpg');
  await expectProblem(await post('/classify', bad), 400, /topk must be an integer/);
});
api('an empty body is a 400', async () => {
  await expectProblem(await post('/classify', new Uint8Array(0), { 'content-type': 'image/png' }), 400, /Send the image bytes/);
});
api('a missing or wrong Content-Type is a 415', async () => {
  const body = await fixture('chelsea.png');
  await expectProblem(await post('/classify', body, { 'content-type': 'text/plain' }), 415, /text\/plain is not accepted/);
  await expectProblem(await post('/classify', new Blob([body])), 415, /Content-Type is missing/);
});
api('bytes that are not an image, SVG and BMP are 415', async () => {
  await expectProblem(await post('/classify', 'just some text', { 'content-type': 'image/png' }), 415, /not a recognised image/);
  await expectProblem(await post('/classify', '<svg xmlns="http://www.w3.org/2000/svg"/>', { 'content-type': 'image/svg+xml' }), 415, /SVG is not supported/);
  const bmp = await post('/classify', Buffer.concat([Buffer.from('BM'), Buffer.alloc(200)]), { 'content-type': 'image/bmp' });
  await expectProblem(bmp, 415, /BMP/);
  assert.ok(bmp.json.supported.includes('jpeg'));
});
api('a truncated JPEG is a 422', async () => {
  const jpeg = await fixture('rocket.jpg');
  await expectProblem(await post('/classify', jpeg.subarray(0, 5000), { 'content-type': 'image/jpeg' }), 422, /corrupt or truncated/);
});
api('invalid topk and resize are 400 and name the parameter', async () => {
  const body = await fixture('chelsea.png');
  for (const topk of ['0', '-1', '1001', 'abc', '2.5', '']) {
    const res = await post(`/classify?topk=${topk}`, body, { 'content-type': 'image/png' });
    await expectProblem(res, 400, /topk must be an integer from 1 to 1000/);
    assert.is(res.json.parameter, 'topk');
  }
  await expectProblem(await post('/classify?resize=squash', body, { 'content-type': 'image/png' }), 400, /stretch, center-crop/);
  const ok = await post('/classify?topk=1000&resize=center-crop', body, { 'content-type': 'image/png' });
  assert.is(ok.json.predictions.length, 1000);
});
/** Streams `chunk` repeatedly on a fresh connection until the server answers. */
function streamUntilAnswered(headers: Record<string, string>, chunk: Buffer, maxBytes: number) {
  return new Promise<{ status: number; body: string; sent: number }>((resolve, reject) => {
    let sent = 0;
    let answered = false;
    const req = request(svc.url + '/classify', { method: 'POST', headers, agent: false }, (r) => {
      answered = true;
      let body = '';
      r.on('data', (c) => (body += c));
      r.on('end', () => resolve({ status: r.statusCode!, body, sent }));
    });
    req.on('error', (err) => (answered ? undefined : reject(err)));
    const pump = () => {
      while (!answered && sent < maxBytes) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
    };
    pump();
  });
}

api('a declared body over the limit is refused with 413 before it is read', async () => {
  const declared = 50 * 1024 * 1024;
  const res = await streamUntilAnswered({ 'content-type': 'image/jpeg', 'content-length': String(declared) }, Buffer.alloc(64 * 1024), declared);
  assert.is(res.status, 413);
  assert.match(JSON.parse(res.body).detail, /exceeds the limit of 2097152 bytes/);
  assert.ok(res.sent < declared / 4, `the server answered after ${res.sent} of ${declared} bytes`);
});
api('a chunked body that grows past the limit is a 413 and is not read to the end', async () => {
  const cap = 200 * 1024 * 1024;
  const res = await streamUntilAnswered({ 'content-type': 'image/jpeg' }, Buffer.alloc(256 * 1024, 0xff), cap);
  assert.is(res.status, 413);
  assert.ok(res.sent < cap / 4, `the server answered after ${res.sent} bytes`);
});
api('a chunked multipart body is cut at the limit whatever part the bytes are in', async () => {
  const cap = 200 * 1024 * 1024;
  for (const field of ['note', 'image']) {
    const head = Buffer.from(`--b\r\nContent-Disposition: form-data; name="${field}"; filename="x.bin"\r\n\r\n`);
    const res = await streamUntilAnswered({ 'content-type': 'multipart/form-data; boundary=b' }, Buffer.concat([head, Buffer.alloc(256 * 1024, 0x41)]), cap);
    assert.is(res.status, 413, `${field}: ${res.body}`);
    assert.match(JSON.parse(res.body).detail, /exceeds the limit of 2097152 bytes/, 'the limit named is the body limit');
    assert.ok(res.sent < cap / 4, `${field}: the server answered after ${res.sent} bytes`);
  }
  const fields = Buffer.from('--b\r\nContent-Disposition: form-data; name="note"\r\n\r\n' + 'y'.repeat(256 * 1024));
  const res = await streamUntilAnswered({ 'content-type': 'multipart/form-data; boundary=b' }, fields, cap);
  assert.is(res.status, 413, res.body);
  assert.ok(res.sent < cap / 4, `a text field: the server answered after ${res.sent} bytes`);
});
api('a decompression bomb is refused by the pixel limit', async () => {
  const big = await startTestService({ KLASSIFY_MAX_PIXELS: '1000' });
  try {
    const res = await fetch(big.url + '/classify', { method: 'POST', body: await fixture('chelsea.png'), headers: { 'content-type': 'image/png' } });
    assert.is(res.status, 422);
    assert.match((await res.json()).detail, /more than 1000 pixels/);
  } finally {
    await big.shutdown();
  }
});
api.run();

const models = suite('choosing a model');
models.before(async () => {
  svc = await startTestService();
});
models.after(() => svc?.shutdown());

models('?model= picks each served model; every answer names its model, in the same classes', async () => {
  const answers: Map<number, number>[] = [];
  for (const model of MODEL_NAMES) {
    const res = await post(`/classify?topk=1000&model=${model}`, await fixture('chelsea.png'), { 'content-type': 'image/png' });
    assert.is(res.status, 200, res.text);
    assert.is(res.json.model, model);
    assert.ok(CAT_LABELS.includes(res.json.predictions[0].label), `${model}: ${res.json.predictions[0].label}`);
    assertValid(isClassification, res.json);
    answers.push(new Map<number, number>(res.json.predictions.map((p: { classIndex: number; probability: number }) => [p.classIndex, p.probability])));
  }
  // Both answer for the same 1000 classes, with probabilities of their own.
  assert.equal([...answers[0].keys()].sort(), [...answers[1].keys()].sort());
  assert.ok([...answers[0]].some(([k, p]) => Math.abs(p - answers[1].get(k)!) > 0.01), 'the models differ');
});
models('a multipart form may name the model; the query string wins over it', async () => {
  const [other] = MODEL_NAMES.filter((m) => m !== DEFAULT);
  const form = () => {
    const f = new FormData();
    f.append('model', other);
    f.append('image', new Blob([new Uint8Array(0)]), 'x');
    return f;
  };
  const withImage = async () => {
    const f = form();
    f.set('image', new Blob([await fixture('coffee.png')]), 'coffee.png');
    return f;
  };
  assert.is((await post('/classify', await withImage())).json.model, other);
  assert.is((await post(`/classify?model=${DEFAULT}`, await withImage())).json.model, DEFAULT);
});
models('an unknown model is a 400 that lists the served ones, in the query or the form', async () => {
  const res = await post('/classify?model=resnet50', await fixture('coffee.png'), { 'content-type': 'image/png' });
  await expectProblem(res, 400, /does not serve the model "resnet50"; choose one of/);
  assert.is(res.json.type, problemType('invalid-parameter'));
  assert.equal(res.json.models, [...MODEL_NAMES]);
  assert.is(res.json.parameter, 'model');
  const form = new FormData();
  form.append('model', 'mobilenet_v3');
  form.append('image', new Blob([await fixture('coffee.png')]), 'coffee.png');
  await expectProblem(await post('/classify', form), 400, /mobilenet_v3/);
  // The service keeps serving.
  assert.is((await post('/classify', await fixture('coffee.png'), { 'content-type': 'image/png' })).status, 200);
});
models('an unknown model in the query is refused before the body is read', async () => {
  // A body that never ends: only an answer given without reading it can arrive.
  const endless = new ReadableStream({ pull: (c) => c.enqueue(new Uint8Array(64 * 1024)) });
  const res = await fetch(svc.url + '/classify?model=nope', { method: 'POST', body: endless, headers: { 'content-type': 'image/png' }, duplex: 'half' } as RequestInit);
  assert.is(res.status, 400);
  assert.is((await res.json()).type, problemType('invalid-parameter'));
});
models('the Open Inference Protocol serves every model by the same name, with /classify\'s answer', async () => {
  const png = Buffer.from(await fixture('chelsea.png'));
  const listed = await (await fetch(`${svc.url}/v2/models/${MODEL_NAMES[1]}`)).json();
  assert.is(listed.name, MODEL_NAMES[1]);
  for (const model of MODEL_NAMES) {
    const res = await fetch(`${svc.url}/v2/models/${model}/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], data: [png.toString('base64')] }], outputs: [{ name: 'probabilities', parameters: { classification: 1 } }] }),
    });
    assert.is(res.status, 200, model);
    const body = await res.json();
    assert.is(body.model_name, model);
    const [probability, classIndex] = String(body.outputs[0].data[0]).split(':');
    const expected = (await post(`/classify?topk=1&model=${model}`, png, { 'content-type': 'image/png' })).json.predictions[0];
    assert.is(Number(classIndex), expected.classIndex, model);
    assert.ok(Math.abs(Number(probability) - expected.probability) < 1e-6, `${model}: ${probability} vs ${expected.probability}`);
  }
});
models('metrics are labelled with the model that answered', async () => {
  const [other] = MODEL_NAMES.filter((m) => m !== DEFAULT);
  const before = await (await fetch(svc.url + '/metrics')).text();
  const count = (text: string, model: string) => Number(new RegExp(`klassify_stage_seconds_count\\{stage="inference",model="${model}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
  await post(`/classify?model=${other}`, await fixture('camera.png'), { 'content-type': 'image/png' });
  const after = await (await fetch(svc.url + '/metrics')).text();
  assert.is(count(after, other), count(before, other) + 1);
  assert.is(count(after, DEFAULT), count(before, DEFAULT));
});
models.run();

const routes = suite('other routes');
routes.before(async () => {
  svc = await startTestService();
});
routes.after(() => svc?.shutdown());
routes('health endpoints answer', async () => {
  assert.is((await fetch(svc.url + '/health/liveness')).status, 200);
  const ready = await fetch(svc.url + '/health/readiness');
  assert.is(ready.status, 200);
  assert.equal(await ready.json(), { status: 'ready', engine: 'onnx', provider: 'cpu', workers: { ready: 1, total: 1 }, models: MODEL_NAMES });
});
routes('unknown paths are 404 and wrong methods are 405 with Allow', async () => {
  const missing = await fetch(svc.url + '/nope');
  assert.is(missing.status, 404);
  assert.is(missing.headers.get('content-type'), 'application/problem+json');
  const wrong = await fetch(svc.url + '/classify');
  assert.is(wrong.status, 405);
  assert.is(wrong.headers.get('allow'), 'POST');
  assert.is((await fetch(svc.url + '/metrics', { method: 'DELETE' })).status, 405);
});
routes('GET / points to the API description, the health routes and the UI; POST / stays the CloudEvents route', async () => {
  const res = await fetch(svc.url + '/');
  assert.is(res.status, 200);
  const index = await res.json();
  assert.is(index.openapi, '/openapi.json');
  assert.equal(index.health, { liveness: '/health/liveness', readiness: '/health/readiness' });
  assert.match(index.ui, /web UI/);
  for (const path of [index.openapi, index.health.liveness, index.health.readiness]) assert.is((await fetch(svc.url + path)).status, 200, path);
  const event = await fetch(svc.url + '/', { method: 'POST', body: 'x', headers: { 'content-type': 'application/json' } });
  assert.is(event.status, 400, 'a body that is no CloudEvent is refused by the CloudEvents route');
  assert.is((await fetch(svc.url + '/', { method: 'DELETE' })).headers.get('allow'), 'GET, POST');
});
routes('GET /openapi.json documents the API', async () => {
  const doc = await (await fetch(svc.url + '/openapi.json')).json();
  assert.is(doc.openapi, '3.1.0');
  assert.ok(doc.paths['/classify'].post.responses['415']);
  assert.is(doc.paths['/classify'].post.parameters[0].schema.maximum, 1000);
  assert.equal(doc.components.schemas.Classification, CLASSIFICATION_SCHEMA);
  assert.equal(doc.components.schemas.Problem, PROBLEM_SCHEMA);
});
routes('GET /metrics exposes requests, stages, in-flight and model load time', async () => {
  await fetch(svc.url + '/classify', { method: 'POST', body: await fixture('coffee.png'), headers: { 'content-type': 'image/png' } });
  await fetch(svc.url + '/classify', { method: 'POST', body: 'x', headers: { 'content-type': 'image/png' } });
  const metrics = await scrapeMetrics(svc.url);
  assert.is(metrics.value('klassify_requests_total', { route: '/classify', status: '200', model: DEFAULT }), 1);
  assert.is(metrics.value('klassify_requests_total', { route: '/classify', status: '415' }), 1);
  for (const stage of ['decode', 'queue', 'inference']) assert.is(metrics.value('klassify_stage_seconds_count', { stage, model: DEFAULT }), 1, stage);
  assert.match(metrics.text, /^klassify_in_flight_requests 0$/m);
  assert.ok(metrics.value('klassify_model_load_seconds') > 0);
  assert.is(metrics.value('klassify_batch_size_count', { model: DEFAULT }), 1);
  for (const model of MODEL_NAMES) {
    assert.is(metrics.value('klassify_info', { engine: 'onnx', provider: 'cpu', model, default: String(model === DEFAULT) }), 1, model);
  }
});
routes('servedBy reports HOSTNAME and K_REVISION', async () => {
  const pod = await startTestService({ HOSTNAME: 'classify-00001-deployment-abc', K_REVISION: 'classify-00001' });
  try {
    const res = await fetch(pod.url + '/classify', { method: 'POST', body: await fixture('coffee.png'), headers: { 'content-type': 'image/png' } });
    const { servedBy } = await res.json();
    assert.is(servedBy.pod, 'classify-00001-deployment-abc');
    assert.is(servedBy.revision, 'classify-00001');
  } finally {
    await pod.shutdown();
  }
});
routes.run();

const load = suite('backpressure and shutdown');
load('a full queue answers 503 with Retry-After, then recovers', async () => {
  const small = await startTestService({ KLASSIFY_QUEUE_SIZE: '2' });
  try {
    const body = await fixture('astronaut.png');
    const results = await Promise.all(
      Array.from({ length: 12 }, () => fetch(small.url + '/classify', { method: 'POST', body, headers: { 'content-type': 'image/png' } })),
    );
    const statuses = results.map((r) => r.status);
    assert.ok(statuses.includes(200), `some succeed: ${statuses}`);
    const shed = results.filter((r) => r.status === 503);
    assert.ok(shed.length > 0, `some are shed: ${statuses}`);
    assert.ok(Number(shed[0].headers.get('retry-after')) >= 1);
    assert.is((await shed[0].json()).type, problemType('overloaded'));
    const after = await fetch(small.url + '/classify', { method: 'POST', body, headers: { 'content-type': 'image/png' } });
    assert.is(after.status, 200);
  } finally {
    await small.shutdown();
  }
});
load('shutdown finishes the requests it accepted, then closes', async () => {
  // The tfjs engine (~60 ms an image) keeps four requests in flight long enough to watch.
  const s = await startTestService({ KLASSIFY_ENGINE: 'tfjs' });
  try {
    const body = await fixture('motorcycle_left.png');
    const inflight = Array.from({ length: 4 }, () => fetch(s.url + '/classify', { method: 'POST', body, headers: { 'content-type': 'image/png' } }));
    // Shut down once all four are accepted (admitted by the server), not merely sent.
    await pollUntil('four requests to be admitted', async () => (await scrapeMetrics(s.url)).value('klassify_in_flight_requests') === 4, { timeoutMs: 30_000, intervalMs: 5 });
    const stopping = s.shutdown();
    const statuses = await Promise.all(inflight.map(async (p) => (await p).status));
    assert.equal(statuses, [200, 200, 200, 200]);
    await stopping;
    assert.is(s.server.listening, false);
  } finally {
    await s.shutdown(); // idempotent: also when an assertion failed
  }
});
load.run();
