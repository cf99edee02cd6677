// The Open Inference Protocol routes against the specification: every JSON answer is
// validated with the schemas of open_inference_rest.yaml, the examples of inference_rest.md
// and of Triton's extension documents are sent as written, binary bodies are built and read
// with v2-wire.ts (written from the extension document), and the answers are held to
// /classify's on the same images.
import sharp from 'sharp';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { RunningService } from '../src/server.ts';
import { CAT_LABELS, EXPECTED_TOP1, fixture, startTestService } from '../../../test/support.ts';
import { loadOipSpec, type OipSpec } from './oip-spec.ts';
import { binaryRequest, bytesTensor, decodeResponse } from './v2-wire.ts';

const MODEL = 'mobilenet_v1_0.75_224';
const INFER = `/v2/models/${MODEL}/infer`;
const PIXELS = 224 * 224 * 3;
let svc: RunningService;
let spec: OipSpec;

interface Reply {
  status: number;
  headers: Headers;
  body: Buffer;
  json: any;
}

async function call(path: string, init: RequestInit = {}): Promise<Reply> {
  const res = await fetch(svc.url + path, { ...init, signal: AbortSignal.timeout(30_000) });
  const body = Buffer.from(await res.arrayBuffer());
  const json = res.headers.get('content-type') === 'application/json' ? JSON.parse(body.toString('utf8')) : undefined;
  return { status: res.status, headers: res.headers, body, json };
}

const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  call(path, { method: 'POST', body: Buffer.isBuffer(body) ? Uint8Array.from(body) : JSON.stringify(body), headers });

function valid(schema: string, value: unknown): void {
  const validate = spec.schema(schema);
  assert.ok(validate(value), `${schema}: ${JSON.stringify(validate.errors)} in ${JSON.stringify(value).slice(0, 300)}`);
}

/** A 4xx with the spec's error object, and no internals. */
function isError(reply: Reply, status: number, message: RegExp, schema = 'inference_error_response'): void {
  assert.is(reply.status, status, reply.body.toString().slice(0, 300));
  assert.is(reply.headers.get('content-type'), 'application/json');
  valid(schema, reply.json);
  assert.equal(Object.keys(reply.json), ['error']);
  assert.type(reply.json.error, 'string');
  assert.match(reply.json.error, message);
  assert.not.match(reply.json.error, /\.ts:\d+|node:internal/);
}

/** An inference answer, binary or JSON, validated and decoded into JSON form. */
function inferred(reply: Reply) {
  assert.is(reply.status, 200, reply.body.toString().slice(0, 300));
  const decoded = decodeResponse(reply.body, reply.headers.get('inference-header-content-length'));
  valid('inference_response', decoded.json);
  assert.is(decoded.json.model_name, MODEL);
  return decoded;
}

const images = (names: string[]) => Promise.all(names.map(async (n) => Buffer.from(await fixture(n))));
const imageInput = (shape: number[], extra: object = {}) => ({ name: 'image', datatype: 'BYTES', shape, ...extra });

async function classify(png: Uint8Array, topk: number) {
  const reply = await call(`/classify?topk=${topk}`, { method: 'POST', body: Uint8Array.from(png), headers: { 'content-type': 'image/png' } });
  assert.is(reply.status, 200);
  return reply.json.predictions as Array<{ label: string; classIndex: number; probability: number }>;
}

/** /classify's probabilities for all 1000 classes, by class index. */
async function classifyAll(png: Uint8Array): Promise<Float64Array> {
  const out = new Float64Array(1000);
  for (const p of await classify(png, 1000)) out[p.classIndex] = p.probability;
  return out;
}

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, label: string, tolerance = 1e-6): void {
  assert.is(actual.length, expected.length, label);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  assert.ok(worst <= tolerance, `${label}: differs by up to ${worst}`);
}

const api = suite('Open Inference Protocol: routes, from the specification');
api.before(async () => {
  spec = await loadOipSpec();
  svc = await startTestService();
});
api.after(() => svc?.shutdown());

api('GET /v2 (and /v2/) is the server metadata, with the extensions served', async () => {
  for (const path of ['/v2', '/v2/']) {
    const reply = await call(path);
    assert.is(reply.status, 200);
    valid('metadata_server_response', reply.json);
    assert.is(reply.json.name, 'klassify');
    for (const ext of ['binary_tensor_data', 'classification', 'model_configuration']) assert.ok(reply.json.extensions.includes(ext), ext);
    assert.not.ok(reply.json.extensions.includes('statistics'), 'statistics is not served');
  }
});
api('health: live and ready are 200 with {"live":true} and {"ready":true}', async () => {
  assert.equal((await call('/v2/health/live')).json, { live: true });
  assert.equal((await call('/v2/health/ready')).json, { ready: true });
});
api('model metadata, with and without a version, describes the two inputs and the output', async () => {
  for (const path of [`/v2/models/${MODEL}`, `/v2/models/${MODEL}/versions/1`]) {
    const reply = await call(path);
    assert.is(reply.status, 200);
    valid('metadata_model_response', reply.json);
    assert.is(reply.json.name, MODEL);
    assert.equal(reply.json.inputs, [
      { name: 'image', datatype: 'BYTES', shape: [-1] },
      { name: 'pixels', datatype: 'UINT8', shape: [-1, 224, 224, 3] },
    ]);
    assert.equal(reply.json.outputs, [{ name: 'probabilities', datatype: 'FP32', shape: [-1, 1000] }]);
  }
});
api('model ready is {"name", "ready": true}; config gives max_batch_size and optional inputs', async () => {
  for (const prefix of [`/v2/models/${MODEL}`, `/v2/models/${MODEL}/versions/1`]) {
    assert.equal((await call(`${prefix}/ready`)).json, { name: MODEL, ready: true });
    const config = (await call(`${prefix}/config`)).json;
    assert.is(config.name, MODEL);
    assert.is(config.max_batch_size, 8);
    assert.equal(config.input.map((i: any) => [i.name, i.optional]), [['image', true], ['pixels', true]]);
    assert.equal(config.output[0].dims, [1000]);
  }
});
api('unknown models, versions and routes are 404 {"error"}; a wrong method is 405 with Allow', async () => {
  isError(await call('/v2/models/resnet50'), 404, /Unknown model "resnet50".*mobilenet_v1_0\.75_224/, 'metadata_model_error_response');
  isError(await call(`/v2/models/${MODEL}/versions/2`), 404, /no version "2"/, 'metadata_model_error_response');
  isError(await call('/v2/models/resnet50/ready'), 404, /Unknown model/);
  isError(await call('/v2/models/%E0%A4%A/infer', { method: 'POST', body: '{}' }), 404, /No route/);
  isError(await call('/v2/repository/index'), 404, /No route/);
  const wrong = await call(INFER);
  isError(wrong, 405, /GET is not allowed/);
  assert.is(wrong.headers.get('allow'), 'POST');
  isError(await call('/v2/health/live', { method: 'POST' }), 405, /POST is not allowed/);
});
api("inference_rest.md's request example: valid per the schema, and refused with 4xx {\"error\"} by a model it does not fit", async () => {
  const example = spec.examples.find((e: any) => e?.inputs && e?.id === '42') as Record<string, any>;
  assert.ok(example, 'the example request is in the markdown');
  valid('inference_request', example);
  isError(await post('/v2/models/mymodel/infer', example), 404, /Unknown model "mymodel"/);
  isError(await post(INFER, example), 400, /holds 2 inputs; send exactly one/);
});
api("the example's form with this model's tensors: id echoed, outputs as the example response shows them", async () => {
  const example = spec.examples.find((e: any) => e?.inputs && e?.id === '42') as Record<string, any>;
  const [png] = await images(['chelsea.png']);
  const request = { ...example, inputs: [imageInput([1], { data: [png.toString('base64')] })], outputs: [{ name: 'probabilities' }] };
  valid('inference_request', request);
  const { json } = inferred(await post(INFER, request));
  assert.is(json.id, '42');
  assert.is(json.model_version, '1');
  const [output] = json.outputs;
  assert.equal(Object.keys(output).sort(), ['data', 'datatype', 'name', 'shape']);
  assert.equal([output.name, output.datatype, output.shape], ['probabilities', 'FP32', [1, 1000]]);
  assert.is(output.data.indexOf(Math.max(...output.data)), 285); // Egyptian cat
  close([output.data.reduce((a: number, b: number) => a + b, 0)], [1], 'softmax sums to 1', 1e-4);
});
api("the binary extension's example: input bytes after the JSON, output returned as binary", async () => {
  // The document's request: UINT32 [2,2] (16 bytes) and BOOL [3] (3 bytes) for "mymodel".
  const doc = binaryRequest(
    {
      model_name: 'mymodel',
      inputs: [
        { name: 'input0', shape: [2, 2], datatype: 'UINT32' },
        { name: 'input1', shape: [3], datatype: 'BOOL' },
      ],
      outputs: [{ name: 'output0', parameters: { binary_data: true } }],
    },
    [Buffer.from(new Uint32Array([1, 2, 3, 4]).buffer), Buffer.from([1, 0, 1])],
  );
  assert.is(doc.body.length - Number(doc.headers['inference-header-content-length']), 19, 'as the document counts');
  isError(await post('/v2/models/mymodel/infer', doc.body, doc.headers), 404, /Unknown model/);
  // The same form with this model: two encoded images as BYTES, the output binary.
  const pngs = await images(['chelsea.png', 'coffee.png']);
  const ours = binaryRequest({ inputs: [imageInput([2])], outputs: [{ name: 'probabilities', parameters: { binary_data: true } }] }, [bytesTensor(pngs)]);
  const reply = await post(INFER, ours.body, ours.headers);
  assert.is(reply.headers.get('content-type'), 'application/octet-stream');
  const { outputs, binary } = inferred(reply);
  assert.ok(binary);
  assert.equal([outputs[0].datatype, outputs[0].shape], ['FP32', [2, 1000]]);
  const top = (row: number) => {
    const values = outputs[0].data.slice(row * 1000, (row + 1) * 1000) as number[];
    return values.indexOf(Math.max(...values));
  };
  assert.equal([top(0), top(1)], [285, 967]); // Egyptian cat, espresso
});
api('binary_data_output applies to every output; binary_data on an output overrides it', async () => {
  const [png] = await images(['coffee.png']);
  const data = [png.toString('base64')];
  const all = await post(INFER, { inputs: [imageInput([1], { data })], parameters: { binary_data_output: true } });
  assert.ok(inferred(all).binary);
  const overridden = await post(INFER, {
    inputs: [imageInput([1], { data })],
    parameters: { binary_data_output: true },
    outputs: [{ name: 'probabilities', parameters: { binary_data: false } }],
  });
  assert.not.ok(inferred(overridden).binary);
  assert.is(overridden.headers.get('inference-header-content-length'), null);
  close(inferred(overridden).outputs[0].data as number[], inferred(all).outputs[0].data as number[], 'binary and JSON agree', 0);
});
api("the classification extension's example: top-k as \"<value>:<index>:<label>\", best first, equal to /classify's", async () => {
  for (const name of ['chelsea.png', 'coffee.png', 'rocket.jpg']) {
    const [png] = await images([name]);
    for (const binary of [false, true]) {
      const reply = await post(INFER, {
        id: '42',
        inputs: [imageInput([1], { data: [png.toString('base64')] })],
        outputs: [{ name: 'probabilities', parameters: { classification: 5, binary_data: binary } }],
      });
      const [output] = inferred(reply).outputs;
      assert.equal([output.datatype, output.shape], ['BYTES', [1, 5]]);
      const parsed = (output.data as string[]).map((s) => {
        const m = /^([^:]+):(\d+):(.+)$/.exec(s);
        assert.ok(m, `"${s}" is <value>:<index>:<label>`);
        return { probability: Number(m![1]), classIndex: Number(m![2]), label: m![3] };
      });
      const expected = await classify(png, 5);
      assert.equal(parsed.map((p) => [p.classIndex, p.label]), expected.map((p) => [p.classIndex, p.label]), name);
      close(parsed.map((p) => p.probability), expected.map((p) => p.probability), name);
      assert.ok(EXPECTED_TOP1[name].includes(parsed[0].label), `${name}: ${parsed[0].label}`);
    }
  }
});
api('a "classification" request parameter applies to the output, as a shortcut', async () => {
  const [png] = await images(['chelsea.png']);
  const reply = await post(INFER, { inputs: [imageInput([1], { data: [png.toString('base64')] })], parameters: { classification: 2 } });
  const [output] = inferred(reply).outputs;
  assert.equal(output.shape, [1, 2]);
  assert.ok(CAT_LABELS.includes((output.data[0] as string).split(':')[2]));
});
api('UINT8 pixels give the probabilities /classify gives for the same pixels, within 1e-6', async () => {
  for (const name of ['chelsea.png', 'motorcycle_left.png']) {
    // The photo at the model's size, as raw RGB and as a lossless PNG of those pixels.
    const rgb = await sharp(await fixture(name)).resize(224, 224, { fit: 'fill' }).removeAlpha().raw().toBuffer();
    const png = await sharp(rgb, { raw: { width: 224, height: 224, channels: 3 } }).png().toBuffer();
    const expected = await classifyAll(png);
    const flat = await post(INFER, { inputs: [{ name: 'pixels', datatype: 'UINT8', shape: [1, 224, 224, 3], data: Array.from(rgb) }] });
    close(inferred(flat).outputs[0].data as number[], expected, `${name}, flat JSON`);
    // Nested in the tensor's own shape, as the specification allows.
    const nested = Array.from({ length: 224 }, (_, y) => Array.from({ length: 224 }, (_, x) => Array.from(rgb.subarray((y * 224 + x) * 3, (y * 224 + x) * 3 + 3))));
    const deep = await post(INFER, { inputs: [{ name: 'pixels', datatype: 'UINT8', shape: [1, 224, 224, 3], data: [nested] }] });
    close(inferred(deep).outputs[0].data as number[], expected, `${name}, nested JSON`);
    const binary = binaryRequest({ inputs: [{ name: 'pixels', datatype: 'UINT8', shape: [1, 224, 224, 3] }] }, [rgb]);
    close(inferred(await post(INFER, binary.body, binary.headers)).outputs[0].data as number[], expected, `${name}, binary`);
  }
});
api('a batch row equals its single-image answer, for images and for pixels', async () => {
  const names = ['chelsea.png', 'coffee.png', 'rocket.jpg', 'camera.png'];
  const pngs = await images(names);
  const batch = binaryRequest({ inputs: [imageInput([names.length])], parameters: { binary_data_output: true } }, [bytesTensor(pngs)]);
  const rows = inferred(await post(INFER, batch.body, batch.headers)).outputs[0].data as number[];
  const pixels: Buffer[] = [];
  for (const [i, png] of pngs.entries()) {
    const single = binaryRequest({ inputs: [imageInput([1])], parameters: { binary_data_output: true } }, [bytesTensor([png])]);
    close(rows.slice(i * 1000, (i + 1) * 1000), inferred(await post(INFER, single.body, single.headers)).outputs[0].data as number[], names[i]);
    pixels.push(await sharp(png).resize(224, 224, { fit: 'fill' }).flatten({ background: '#fff' }).toColourspace('srgb').removeAlpha().raw().toBuffer());
  }
  const pixelBatch = binaryRequest({ inputs: [{ name: 'pixels', datatype: 'UINT8', shape: [4, 224, 224, 3] }] }, [Buffer.concat(pixels)]);
  const pixelRows = inferred(await post(INFER, pixelBatch.body, pixelBatch.headers)).outputs[0].data as number[];
  for (let i = 0; i < 4; i++) {
    const one = binaryRequest({ inputs: [{ name: 'pixels', datatype: 'UINT8', shape: [1, 224, 224, 3] }] }, [pixels[i]]);
    close(pixelRows.slice(i * 1000, (i + 1) * 1000), inferred(await post(INFER, one.body, one.headers)).outputs[0].data as number[], `pixels ${i}`);
  }
  assert.is(PIXELS * 4, Buffer.concat(pixels).length);
});
api('JSON base64 and binary BYTES give the same answer; so does a gzip or deflate body', async () => {
  const [png] = await images(['motorcycle_left.png']);
  const json = inferred(await post(INFER, { inputs: [imageInput([1], { data: [png.toString('base64')] })] })).outputs[0].data;
  const binary = binaryRequest({ inputs: [imageInput([1])] }, [bytesTensor([png])]);
  close(inferred(await post(INFER, binary.body, binary.headers)).outputs[0].data as number[], json as number[], 'binary', 0);
  const { gzipSync, deflateSync } = await import('node:zlib');
  for (const [encoding, pack] of [['gzip', gzipSync], ['deflate', deflateSync]] as const) {
    const reply = await post(INFER, pack(binary.body), { ...binary.headers, 'content-encoding': encoding });
    close(inferred(reply).outputs[0].data as number[], json as number[], encoding, 0);
  }
});
api('/openapi.json describes every V2 route, and its request and response schemas fit real traffic', async () => {
  const doc = (await call('/openapi.json')).json;
  for (const suffix of ['', '/ready', '/config', '/infer']) {
    for (const prefix of ['/v2/models/{model}', '/v2/models/{model}/versions/{version}']) assert.ok(doc.paths[prefix + suffix], prefix + suffix);
  }
  for (const path of ['/v2', '/v2/health/live', '/v2/health/ready']) assert.ok(doc.paths[path].get, path);
  const { Ajv2020 } = await import('ajv/dist/2020.js');
  const ajv = new Ajv2020({ allErrors: true });
  const request = ajv.compile(doc.components.schemas.V2InferenceRequest);
  const response = ajv.compile(doc.components.schemas.V2InferenceResponse);
  const [png] = await images(['coffee.png']);
  const body = { id: 'a', inputs: [imageInput([1], { data: [png.toString('base64')] })], outputs: [{ name: 'probabilities', parameters: { classification: 2 } }] };
  assert.ok(request(body), ajv.errorsText(request.errors));
  const reply = await post(INFER, body);
  assert.ok(response(reply.json), ajv.errorsText(response.errors));
  assert.ok(ajv.validate(doc.components.schemas.V2Error, (await call('/v2/models/x')).json));
});
api('requests are counted by route and model, and the V2 stages in the same histograms', async () => {
  const text = await (await fetch(svc.url + '/metrics')).text();
  assert.match(text, /klassify_requests_total\{route="\/v2\/models\/\{model\}\/infer",status="200",model="mobilenet_v1_0\.75_224"\} \d+/);
  assert.match(text, /klassify_requests_total\{route="\/v2\/models\/\{model\}",status="404",model=""\} \d+/);
  assert.match(text, /klassify_requests_total\{route="unmatched",status="404",model=""\} \d+/);
  assert.match(text, /klassify_in_flight_requests 0/);
});
api.run();
