import { mkdtemp, cp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readFile } from 'node:fs/promises';
import * as tf from '@tensorflow/tfjs';
import onnxProto from 'onnx-proto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createEngine } from '../src/engines/create.ts';
import type { Engine } from '../src/engines/engine.ts';
import { optimizedPathFor, saveOptimized } from '../src/engines/onnx-cache.ts';
import { IMAGE_VALUES } from '../src/model/mobilenet.ts';
import { AssetError } from '../src/errors.ts';
import { topK } from '../src/labels.ts';
import { fetchAssets } from '../src/model/assets.ts';
import { samePadding } from '../src/model/onnx-graph.ts';
import { activationParams } from '../src/model/quantize.ts';
import { prepareV1 as prepareModel, type V1Files as ModelFiles } from '../src/model/prepare-v1.ts';
import { preprocess } from '../src/preprocess.ts';
import { EXPECTED_TOP1, FIXTURE_NAMES, fixture, testConfig } from '../../../test/support.ts';
import { FIXTURE_ASSETS } from '../../../test/fixtures.ts';

const padding = suite('TF "same" padding');
padding('stride 2 on an even input pads only after (0 before, 1 after)', () => {
  assert.equal(samePadding(224, 3, 2, true), [0, 1, 112]);
  assert.equal(samePadding(14, 3, 2, true), [0, 1, 7]);
});
padding('stride 1 pads symmetrically', () => {
  assert.equal(samePadding(112, 3, 1, true), [1, 1, 112]);
});
padding('stride 2 on an odd input pads evenly', () => {
  assert.equal(samePadding(7, 3, 2, true), [1, 1, 4]);
});
padding('valid padding pads nothing', () => {
  assert.equal(samePadding(224, 3, 2, false), [0, 0, 111]);
});
padding.run();

let files: ModelFiles;
const model = suite('converted ONNX graph');
model.before(async () => {
  files = await prepareModel(testConfig(), { needSource: true });
});
model('folds BatchNorm, maps ReLU6 to Clip and pads stride-2 convs asymmetrically', async () => {
  const graph = onnxProto.onnx.ModelProto.decode(await readFile(files.onnxPath)).graph!;
  const ops = graph.node!.map((n) => n.opType);
  assert.not.ok(ops.includes('BatchNormalization'), 'no BatchNormalization left');
  assert.is(ops.filter((o) => o === 'Conv').length, 28);
  assert.is(ops.filter((o) => o === 'Clip').length, 27);
  assert.is(ops.at(-1), 'Flatten');
  // Normalisation lives in the graph: uint8 in, out = x * (1/127.5) - 1 before the first conv.
  assert.equal(ops.slice(0, 5), ['Transpose', 'Cast', 'Mul', 'Add', 'Conv']);
  assert.is(graph.input![0].type!.tensorType!.elemType, onnxProto.onnx.TensorProto.DataType.UINT8);
  const pads = (n: onnxProto.onnx.INodeProto) => n.attribute!.find((a) => a.name === 'pads')!.ints!.map(Number);
  const strides = (n: onnxProto.onnx.INodeProto) => n.attribute!.find((a) => a.name === 'strides')!.ints!.map(Number);
  const convs = graph.node!.filter((n) => n.opType === 'Conv');
  const stride2 = convs.filter((n) => strides(n)[0] === 2);
  assert.is(stride2.length, 5);
  for (const n of stride2) assert.equal(pads(n), [0, 0, 1, 1], `${n.name} pads`);
});
model.run();

const equivalence = suite('onnx engine matches the tfjs reference');
const engines: Record<string, Engine> = {};
equivalence.before(async () => {
  files ??= await prepareModel(testConfig(), { needSource: true });
  // The graph the service loads on this CPU, so that is what is checked against TF.js.
  await saveOptimized(files.onnxPath);
  for (const name of ['onnx', 'tfjs'] as const) {
    engines[name] = await createEngine({ ...files, engine: name, provider: 'cpu', providerFallback: false, intraOpThreads: 1 });
  }
});
equivalence.after(async () => {
  for (const e of Object.values(engines)) await e.dispose();
});

async function inputFor(name: string): Promise<Uint8Array> {
  return (await preprocess(await fixture(name), { resize: 'stretch', maxPixels: 50e6 })).rgb;
}

for (const name of FIXTURE_NAMES) {
  equivalence(`${name}: probabilities agree within 1e-4`, async () => {
    const input = await inputFor(name);
    const [a, b] = [await engines.onnx.run(input, 1), await engines.tfjs.run(input, 1)];
    assert.is(a.length, 1000);
    let max = 0;
    for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
    assert.ok(max < 1e-4, `max abs difference ${max}`);
    const sum = a.reduce((s, v) => s + v, 0);
    assert.ok(Math.abs(sum - 1) < 1e-3, `softmax sums to ${sum}`);
    const expected = EXPECTED_TOP1[name];
    if (expected) assert.ok(expected.includes(topK(a, 1)[0].label), `${name} top-1 ${topK(a, 1)[0].label}, expected ${expected}`);
  });
}
equivalence('a batch of two gives the same rows as two single runs', async () => {
  const [x, y] = [await inputFor('coffee.png'), await inputFor('camera.png')];
  const both = new Uint8Array(2 * IMAGE_VALUES);
  both.set(x);
  both.set(y, IMAGE_VALUES);
  const batch = await engines.onnx.run(both, 2);
  const single = await engines.onnx.run(y, 1);
  for (let i = 0; i < 1000; i++) assert.ok(Math.abs(batch[1000 + i] - single[i]) < 1e-5);
});
equivalence('without an optimised graph for this CPU the portable file serves, with the same probabilities', async () => {
  const missing = path.join(os.tmpdir(), 'klassify-no-such-optimised-graph.onnx');
  const portable = await createEngine({ ...files, optimizedPath: missing, engine: 'onnx', provider: 'cpu', providerFallback: false, intraOpThreads: 1 });
  try {
    const input = await inputFor('chelsea.png');
    assert.equal(await portable.run(input, 1), await engines.onnx.run(input, 1));
  } finally {
    await portable.dispose();
  }
});
equivalence('the tfjs engine leaves no tensors behind', async () => {
  const input = await inputFor('chelsea.png');
  await engines.tfjs.run(input, 1);
  const before = tf.memory().numTensors;
  await engines.tfjs.run(input, 1);
  assert.is(tf.memory().numTensors, before);
});
equivalence.run();

const params = suite('int8 quantisation parameters');
params('0 is exactly representable, so ReLU floors and zero padding lose nothing', () => {
  for (const type of ['u8', 's8'] as const) {
    for (const range of [{ min: 0, max: 6 }, { min: -1, max: 1 }, { min: -0.3, max: 5.1 }, { min: 2, max: 3 }]) {
      const { scale, zeroPoint } = activationParams(range, type);
      assert.ok(Number.isInteger(zeroPoint) && zeroPoint >= (type === 'u8' ? 0 : -128) && zeroPoint <= (type === 'u8' ? 255 : 127));
      // The grid reaches both ends of the range (widened to hold 0) within half a step.
      const lo = (type === 'u8' ? 0 : -128) - zeroPoint;
      assert.ok(lo * scale <= Math.min(range.min, 0) + scale / 2, `${type} ${JSON.stringify(range)} low end`);
      assert.ok((lo + 255) * scale >= range.max - scale / 2, `${type} ${JSON.stringify(range)} high end`);
    }
  }
  assert.equal(activationParams({ min: 0, max: 6 }, 'u8').zeroPoint, 0);
  assert.equal(activationParams({ min: 0, max: 6 }, 's8').zeroPoint, -128);
});
params.run();

let int8: ModelFiles;
const quantised = suite('int8 model');
const int8Engines: Record<string, Engine> = {};
quantised.before(async () => {
  files ??= await prepareModel(testConfig(), { needSource: true });
  int8 = await prepareModel(testConfig({ KLASSIFY_MODEL_PRECISION: 'int8' }));
  for (const f of [files, int8]) await saveOptimized(f.onnxPath);
  for (const [name, f] of [['fp32', files], ['int8', int8]] as const) {
    int8Engines[name] = await createEngine({ ...f, engine: 'onnx', provider: 'cpu', providerFallback: false, intraOpThreads: 1 });
  }
});
quantised.after(async () => {
  for (const e of Object.values(int8Engines)) await e.dispose();
});
quantised('is a separate file, in QDQ form, with the input bytes fed to the first conv', async () => {
  assert.is.not(int8.onnxPath, files.onnxPath);
  assert.is(int8.fp32Path, files.onnxPath);
  const graph = onnxProto.onnx.ModelProto.decode(await readFile(int8.onnxPath)).graph!;
  const ops = graph.node!.map((n) => n.opType);
  assert.is(ops.filter((o) => o === 'Conv').length, 28);
  assert.not.ok(ops.includes('Cast'), 'no float scaling of the input left');
  const int8Weights = graph.initializer!.filter((t) => t.dataType === onnxProto.onnx.TensorProto.DataType.INT8 && t.name!.endsWith('/W/q'));
  assert.is(int8Weights.length, 27, 'every conv but the classifier has int8 weights');
  assert.ok(graph.initializer!.some((t) => t.name === 'conv_preds/W' && t.dataType === onnxProto.onnx.TensorProto.DataType.FLOAT));
});
quantised('ONNX Runtime fuses it into integer convolutions', async () => {
  const graph = onnxProto.onnx.ModelProto.decode(await readFile(optimizedPathFor(int8.onnxPath))).graph!;
  const ops = graph.node!.map((n) => n.opType);
  assert.is(ops.filter((o) => o === 'QLinearConv').length, 27, ops.join(' '));
});
quantised('agrees with fp32 on the fixture photos', async () => {
  const maxima: number[] = [];
  for (const name of FIXTURE_NAMES) {
    const input = await inputFor(name);
    const [a, b] = [await int8Engines.int8.run(input, 1), await int8Engines.fp32.run(input, 1)];
    let max = 0;
    for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
    maxima.push(max);
    const expected = EXPECTED_TOP1[name];
    if (expected) assert.ok(expected.includes(topK(a, 1)[0].label), `${name} int8 top-1 ${topK(a, 1)[0].label}, expected ${expected}`);
  }
  // Measured: at most 0.045 a photo, 0.019 on average; without bias correction 0.14 and 0.061.
  const mean = maxima.reduce((x, y) => x + y, 0) / maxima.length;
  assert.ok(Math.max(...maxima) < 0.1, `max |Δp| per photo: ${maxima.map((m) => m.toFixed(3))}`);
  assert.ok(mean < 0.04, `mean of the per-photo max |Δp|: ${mean.toFixed(3)}`);
});
quantised.run();

const assets = suite('model download and verification');
assets('a corrupt mirror file stops with a message that says what to do', async () => {
  const mirror = await mkdtemp(path.join(os.tmpdir(), 'klassify-mirror-'));
  await cp(path.join(files.tfjsDir), path.join(mirror, 'mobilenet_v1_0.75_224'), { recursive: true });
  await writeFile(path.join(mirror, 'mobilenet_v1_0.75_224', 'group7-shard1of1'), 'tampered');
  const cache = await mkdtemp(path.join(os.tmpdir(), 'klassify-cache-'));
  try {
    await prepareModel({ modelCacheDir: cache, modelMirror: mirror, modelFetch: 'auto' });
    assert.unreachable('should have failed');
  } catch (err) {
    assert.instance(err, AssetError);
    assert.match((err as Error).message, /group7-shard1of1.*SHA-256.*expected/);
    assert.match((err as Error).message, /delete .* and retry|mirror/);
  }
});
assets('a mirror without the model names the variable, the folder layout and an example', async () => {
  const empty = await mkdtemp(path.join(os.tmpdir(), 'klassify-mirror-'));
  const cache = await mkdtemp(path.join(os.tmpdir(), 'klassify-cache-'));
  try {
    await prepareModel({ modelCacheDir: cache, modelMirror: empty, modelFetch: 'auto' });
    assert.unreachable('should have failed');
  } catch (err) {
    assert.instance(err, AssetError);
    const msg = (err as Error).message;
    assert.match(msg, /Set KLASSIFY_MIRROR to a folder whose models\/ holds mobilenet_v1_0\.75_224\/model\.json/);
    assert.match(msg, /or KLASSIFY_MODEL_MIRROR to that models\/ folder itself/);
    assert.match(msg, /`KLASSIFY_MIRROR=\S+ npm start`/);
  } finally {
    await Promise.all([rm(empty, { recursive: true, force: true }), rm(cache, { recursive: true, force: true })]);
  }
});
assets('a mirror without the photos names KLASSIFY_MIRROR, KLASSIFY_FIXTURES_MIRROR and the files it needs', async () => {
  const empty = await mkdtemp(path.join(os.tmpdir(), 'klassify-mirror-'));
  try {
    await fetchAssets(FIXTURE_ASSETS, { dest: path.join(empty, 'out'), mirror: empty });
    assert.unreachable('should have failed');
  } catch (err) {
    assert.instance(err, AssetError);
    const msg = (err as Error).message;
    assert.match(msg, /Set KLASSIFY_MIRROR to a folder whose fixtures\/images\/ holds the photos astronaut\.png, .*rocket\.jpg/);
    assert.match(msg, /KLASSIFY_FIXTURES_MIRROR/);
    assert.match(msg, /`KLASSIFY_MIRROR=\S+ npm test`/);
  } finally {
    await rm(empty, { recursive: true, force: true });
  }
});
assets('KLASSIFY_MODEL_FETCH=never fails clearly when the model is missing', async () => {
  const cache = await mkdtemp(path.join(os.tmpdir(), 'klassify-cache-'));
  try {
    await prepareModel({ modelCacheDir: cache, modelMirror: undefined, modelFetch: 'never' });
    assert.unreachable('should have failed');
  } catch (err) {
    assert.instance(err, AssetError);
    assert.match((err as Error).message, /npm run model/);
  }
});
assets.run();
