import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { DEFAULT_MODEL, MODEL_NAMES } from '../../../contracts/models.ts';
import { problemType } from '../../../contracts/problems.ts';
import { EXIT_CANNOT_START } from '../../../server-kit/exit.ts';
import { Admission, SLOW_UPLOAD_MS } from '../src/admission.ts';
import { loadConfig } from '../src/config.ts';
import { ConfigError, NotReady, Overloaded, TooManyUploads } from '../src/errors.ts';
import { toProblem } from '../src/http/problems.ts';
import { CLASS_NAMES, LABELS, topK } from '../src/labels.ts';
import { FIXTURES_MIRROR, KNATIVE_MIRROR, mirrorDir } from '../src/model/mirror.ts';
import { openApiDocument } from '../src/http/openapi.ts';

const ROOT = path.resolve(import.meta.dirname, '..', '..', '..');

const config = suite('config');
config('defaults are documented values', () => {
  const c = loadConfig({});
  assert.is(c.port, 8080);
  assert.is(c.engine, 'onnx');
  assert.is(c.provider, 'cpu');
  assert.is(c.bodyLimitBytes, 10 * 1024 * 1024);
  assert.is(c.topkDefault, 5);
  assert.is(c.resize, 'stretch');
  assert.is(c.batchMaxSize, 1);
  assert.is(c.modelPrecision, 'fp32');
  assert.is(c.maxUploadsPerClient, 8, 'a quarter of the 32 places');
  assert.is(loadConfig({ KLASSIFY_QUEUE_SIZE: '4' }).maxUploadsPerClient, 1, 'Knative: one of 4');
  assert.ok(c.trustedProxies.check('127.0.0.1', 'ipv4'), 'loopback is trusted');
  assert.not.ok(c.trustedProxies.check('10.244.0.1', 'ipv4'));
  assert.ok(Object.isFrozen(c));
});
config('the GPU provider gets batching defaults of its own', () => {
  const c = loadConfig({ KLASSIFY_PROVIDER: 'webgpu' });
  assert.is(c.batchMaxSize, 32);
  assert.is(c.batchMaxDelayMs, 2);
  assert.is(c.workers, 1);
  assert.is(loadConfig({ KLASSIFY_PROVIDER: 'webgpu', KLASSIFY_BATCH_MAX: '8' }).batchMaxSize, 8);
});
config('invalid values fail and list the valid ones', () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ KLASSIFY_ENGINE: 'torch' }, /KLASSIFY_ENGINE="torch" is invalid; valid values: onnx, tfjs/],
    [{ PORT: '99999' }, /PORT="99999".*integer from 0 to 65535/],
    [{ KLASSIFY_WORKERS: '1.5' }, /KLASSIFY_WORKERS/],
    [{ KLASSIFY_PROVIDER: 'cuda' }, /cpu, webgpu/],
    [{ KLASSIFY_PROVIDER_FALLBACK: 'maybe' }, /true or false/],
    [{ KLASSIFY_RESIZE: 'squash' }, /stretch, center-crop/],
    [{ KLASSIFY_EVENT_SOURCE: '/klassify\r\nx-injected: 1' }, /KLASSIFY_EVENT_SOURCE=.*printable ASCII/],
    [{ KLASSIFY_EVENT_SOURCE: '/klassify/café' }, /KLASSIFY_EVENT_SOURCE=.*printable ASCII/],
    [{ KLASSIFY_MODEL_PRECISION: 'fp16' }, /KLASSIFY_MODEL_PRECISION="fp16" is invalid; valid values: fp32, int8 \(default fp32\)/],
    [{ KLASSIFY_MODEL_PRECISION: 'int8', KLASSIFY_ENGINE: 'tfjs' }, /int8 needs KLASSIFY_ENGINE=onnx/],
  ];
  for (const [env, message] of cases) {
    assert.throws(() => loadConfig(env), (err: Error) => err instanceof ConfigError && message.test(err.message));
  }
});
config('KLASSIFY_MODELS lists the served models (default: all the engine runs), KLASSIFY_MODEL the default among them', () => {
  const [v1, v2] = MODEL_NAMES;
  const all = loadConfig({});
  assert.equal(all.models, [...MODEL_NAMES]);
  assert.is(all.model, DEFAULT_MODEL);
  assert.equal(loadConfig({ KLASSIFY_MODELS: ` ${v2} ` }).models, [v2]);
  assert.is(loadConfig({ KLASSIFY_MODELS: v2 }).model, v2, 'the only served model is the default');
  assert.is(loadConfig({ KLASSIFY_MODEL: v2 }).model, v2);
  assert.is(loadConfig({ KLASSIFY_MODEL: v1, KLASSIFY_MODELS: `${v2},${v1}` }).model, v1);
  // TF.js runs v1 only, so that is what it serves unless told otherwise.
  assert.equal(loadConfig({ KLASSIFY_ENGINE: 'tfjs' }).models, [v1]);
  const cases: [Record<string, string>, RegExp][] = [
    [{ KLASSIFY_MODEL: 'resnet50' }, new RegExp(`KLASSIFY_MODEL="resnet50" is invalid; valid values: ${MODEL_NAMES.join(', ')}`)],
    [{ KLASSIFY_MODELS: `${v1},nope` }, /KLASSIFY_MODELS=.* is invalid; valid values: a comma-separated list of distinct model names/],
    [{ KLASSIFY_MODELS: `${v1},${v1}` }, /KLASSIFY_MODELS=/],
    [{ KLASSIFY_MODEL: v2, KLASSIFY_MODELS: v1 }, /KLASSIFY_MODEL=mobilenet_v2\S* is not among KLASSIFY_MODELS/],
    [{ KLASSIFY_ENGINE: 'tfjs', KLASSIFY_MODELS: `${v1},${v2}` }, /mobilenet_v2\S* cannot run on KLASSIFY_ENGINE=tfjs/],
  ];
  for (const [env, message] of cases) {
    assert.throws(() => loadConfig(env), (err: Error) => err instanceof ConfigError && message.test(err.message), JSON.stringify(env));
  }
});
config('every invalid variable is listed at once; booleans are spelled as for the UI server', () => {
  try {
    loadConfig({ KLASSIFY_ENGINE: 'torch', PORT: 'x', KLASSIFY_PROVIDER_FALLBACK: 'maybe' });
    assert.unreachable('should have thrown');
  } catch (err) {
    assert.instance(err, ConfigError);
    assert.equal((err as ConfigError).problems, [
      'PORT="x" is invalid; valid values: an integer from 0 to 65535 (default 8080).',
      'KLASSIFY_ENGINE="torch" is invalid; valid values: onnx, tfjs (default onnx).',
      'KLASSIFY_PROVIDER_FALLBACK="maybe" is invalid; valid values: true or false (also 1/0, yes/no, on/off) (default false).',
    ]);
  }
  assert.is(loadConfig({ KLASSIFY_PROVIDER_FALLBACK: 'on' }).providerFallback, true);
  assert.is(loadConfig({ KLASSIFY_PROVIDER_FALLBACK: 'OFF' }).providerFallback, false);
});
config('an invalid setting stops start-up with exit 78 and one JSON line naming it', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'functions/classify/src/main.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', KLASSIFY_ENGINE: 'torch' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk));
  // Config is read before anything starts, so the process ends by itself; the kill is a backstop.
  const backstop = setTimeout(() => child.kill('SIGKILL'), 60_000);
  try {
    const [code] = await once(child, 'exit');
    assert.is(code, EXIT_CANNOT_START, output);
    const lines = output.trim().split('\n');
    assert.is(lines.length, 1, output);
    const entry = JSON.parse(lines[0]);
    assert.is(entry.level, 'error');
    assert.is(entry.msg, 'cannot start: KLASSIFY_ENGINE="torch" is invalid; valid values: onnx, tfjs (default onnx).');
    assert.not.ok('error' in entry, 'an invalid setting is not a bug: no stack');
  } finally {
    clearTimeout(backstop);
    child.kill('SIGKILL');
  }
});
config('the model mirror: KLASSIFY_MIRROR\'s models/, unless KLASSIFY_MODEL_MIRROR names one', () => {
  assert.is(loadConfig({}).modelMirror, undefined);
  assert.is(loadConfig({ KLASSIFY_MIRROR: '/data/mirror' }).modelMirror, '/data/mirror/models');
  assert.is(loadConfig({ KLASSIFY_MIRROR: '/data/mirror', KLASSIFY_MODEL_MIRROR: '/elsewhere/models ' }).modelMirror, '/elsewhere/models');
  assert.is(loadConfig({ KLASSIFY_MIRROR: 'mirror' }).modelMirror, path.resolve('mirror/models'), 'relative to the current folder');
  assert.is(mirrorDir(KNATIVE_MIRROR, { KLASSIFY_MIRROR: '/m' }), '/m/knative');
  assert.is(mirrorDir(FIXTURES_MIRROR, { KLASSIFY_MIRROR: '/m', KLASSIFY_FIXTURES_MIRROR: '' }), '/m/fixtures/images', 'empty counts as unset');
});
config('servedBy comes from HOSTNAME and K_REVISION', () => {
  const c = loadConfig({ HOSTNAME: 'pod-a', K_REVISION: 'classify-00002' });
  assert.equal([c.pod, c.revision, c.eventSource], ['pod-a', 'classify-00002', '/klassify/classify/classify-00002']);
});
config.run();

const labels = suite('labels');
labels('the class table is in ImageNet order', () => {
  assert.is(CLASS_NAMES.length, 1000);
  assert.is(LABELS[0], 'tench');
  assert.is(LABELS[285], 'Egyptian cat');
  assert.is(LABELS[967], 'espresso');
  assert.is(CLASS_NAMES[281], 'tabby, tabby cat');
});
labels('the vendored class table is the published one (SHA-256 in imagenet-classes.ts)', () => {
  const digest = createHash('sha256').update(CLASS_NAMES.join('\n')).digest('hex');
  assert.is(digest, 'ebb1e26fe65f59669fedf81b456d6f46410da85a5918db5c9f5c314fa8ceebb1');
});
labels('topK returns the k largest in order, matching a full sort', () => {
  const p = Float32Array.from({ length: 1000 }, (_, i) => Math.abs(Math.sin(i * 12.9898) * 43758.5453) % 1);
  const sorted = [...p.keys()].sort((a, b) => p[b] - p[a]);
  for (const k of [1, 5, 37, 1000]) assert.equal(topK(p, k).map((x) => x.classIndex), sorted.slice(0, k));
});
labels.run();

const errors = suite('errors');
errors('client errors map to problem+json with their headers', () => {
  const { problem, headers } = toProblem(new Overloaded(3));
  assert.is(problem.status, 503);
  assert.is(headers['retry-after'], '3');
  assert.is(toProblem(new NotReady('loading')).problem.type, problemType('not-ready'));
});
errors('anything else is a bare 500 that leaks nothing', () => {
  const { problem } = toProblem(new Error('ENOENT /secret/path'));
  assert.is(problem.status, 500);
  assert.not.match(JSON.stringify(problem), /secret/);
});
errors('too many slow uploads from one client is a 429 that closes the connection', () => {
  const { problem, headers } = toProblem(new TooManyUploads(8, 2000));
  assert.is(problem.status, 429);
  assert.is(problem.type, problemType('too-many-uploads'));
  assert.is(problem.limitUploads, 8);
  assert.is(headers['retry-after'], '5');
  assert.is(headers.connection, 'close');
});
errors.run();

const admission = suite('admission: places in all, slow uploads per client');
/** An Admission on a clock the test moves; records what it cut. */
function admissionAt(limits = { queueSize: 8, maxUploadsPerClient: 2, workers: 1 }) {
  let now = 0;
  const cuts: string[] = [];
  const gate = new Admission(limits, () => now);
  const admit = (client: string, label = client) => gate.admit(client, (err) => cuts.push(`${label}: ${err.code}`));
  return { gate, admit, cuts, advance: (ms: number) => void (now += ms) };
}
admission('fast uploads never count against their client, however many', () => {
  const { gate, admit } = admissionAt();
  for (let i = 0; i < 100; i++) {
    const ticket = admit('broker');
    ticket.bodyRead();
    ticket.release();
  }
  const held = Array.from({ length: 8 }, () => admit('load-test'));
  assert.is(gate.inFlight, 8);
  assert.throws(() => admit('other'), (err: Error) => err instanceof Overloaded, 'the places are all taken: 503');
  for (const ticket of held) ticket.release();
  assert.is(gate.inFlight, 0);
  gate.close();
});
admission('a slow client at its share is refused at once; other clients are not', () => {
  const { gate, admit, advance } = admissionAt();
  admit('a');
  admit('a');
  const third = admit('a');
  third.bodyRead(); // bodies that arrive at once: the client is not held to its share yet
  third.release();
  advance(SLOW_UPLOAD_MS + 1);
  assert.throws(() => admit('a'), (err: Error) => err instanceof TooManyUploads);
  const other = admit('b');
  other.bodyRead();
  other.release();
  assert.is(gate.inFlight, 2, 'a refused request holds no place');
  gate.close();
});
admission('uploads that began together and slowed down are cut to the share, newest first', () => {
  const { gate, admit, advance, cuts } = admissionAt({ queueSize: 32, maxUploadsPerClient: 2, workers: 1 });
  const tickets = [0, 1, 2, 3].map((i) => admit('a', `a${i}`));
  const fast = admit('b');
  gate.cutExcess();
  assert.equal(cuts, [], 'nothing is slow yet');
  advance(SLOW_UPLOAD_MS + 1);
  gate.cutExcess();
  assert.equal(cuts, ['a2: too-many-uploads', 'a3: too-many-uploads']);
  gate.cutExcess();
  assert.is(cuts.length, 2, 'each upload is cut once');
  // A cut upload keeps its place until its request ends.
  assert.is(gate.inFlight, 5);
  for (const ticket of [...tickets, fast]) ticket.release();
  assert.is(gate.inFlight, 0);
  // An upload that finished its body is no longer counted.
  const done = admit('a');
  done.bodyRead();
  advance(SLOW_UPLOAD_MS * 10);
  gate.cutExcess();
  assert.is(cuts.length, 2);
  done.release();
  done.release();
  assert.is(gate.inFlight, 0, 'release is idempotent');
  gate.close();
});
admission('a slow client\'s new upload is cut even before it is slow itself', () => {
  const { gate, admit, advance, cuts } = admissionAt({ queueSize: 32, maxUploadsPerClient: 1, workers: 1 });
  const first = admit('a', 'first');
  advance(SLOW_UPLOAD_MS / 2);
  const second = admit('a', 'second'); // the first is not slow yet: admitted
  advance(SLOW_UPLOAD_MS / 2 + 1);
  gate.cutExcess();
  assert.equal(cuts, ['second: too-many-uploads']);
  first.release();
  second.release();
  gate.close();
});
admission.run();

const openapi = suite('OpenAPI document');
openapi('its schemas are valid JSON Schema and every $ref resolves', () => {
  const doc = openApiDocument(loadConfig({}));
  const ajv = new Ajv2020({ strict: true });
  for (const [name, schema] of Object.entries(doc.components.schemas)) assert.ok(ajv.compile(schema), name);
  const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/schemas\/(\w+)"/g)].map((m) => m[1]);
  assert.ok(refs.length > 5);
  for (const ref of refs) assert.ok(ref in doc.components.schemas, ref);
});
openapi.run();
