// The TFLite → ONNX conversion against an independent runtime: Arm NN's TfLite parser on its
// portable CpuRef backend (armnn.ts), fed the same 224×224 bytes as ONNX Runtime.
//
// Layer by layer, each converted operator alone is fed Arm NN's own input to that operator
// and must give Arm NN's output: the same integers, except at rounding ties, where ONNX
// Runtime rounds the exact integer result and Arm NN a float32 sum (127.499995 → 127 here,
// 128 there); the final softmax, float here and uint8 there, within 2/256.
// End to end, those ties change a few later integers by a step, and the network amplifies
// them: the top class is the same on every photo, and the probabilities stay within the
// bound below (measured at most 9.4/256; docs/models.md has the table). Set
// KLASSIFY_FIDELITY_REPORT=1 to print that table.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createEngine } from '../src/engines/create.ts';
import { optimizedPathFor, saveOptimized } from '../src/engines/onnx-cache.ts';
import { CLASS_NAMES, LABELS } from '../src/labels.ts';
import { fetchAssets } from '../src/model/assets.ts';
import { convertOperator, convertTflite } from '../src/model/convert-tflite.ts';
import { MODEL_MIRROR } from '../src/model/mirror.ts';
import { CLASS_COUNT, INPUT_NAME, OUTPUT_NAME } from '../src/model/mobilenet.ts';
import { MOBILENET_V2, MOBILENET_V2_EXTRAS } from '../src/model/mobilenet-v2.ts';
import { prepareV2 } from '../src/model/prepare-v2.ts';
import { readTflite, type Model } from '../src/model/tflite.ts';
import { preprocess } from '../src/preprocess.ts';
import { FIXTURE_NAMES, fixture, requireProgram, testConfig } from '../../../test/support.ts';
import { ARMNN, runArmnn, toNchw, withEveryOutput, type ArmnnOutput } from './armnn.ts';

/** End to end, |Δp| per class; what the ties add up to (see above), with some room. */
const END_TO_END_BOUND = 12 / 256;
const REPORT = !!process.env.KLASSIFY_FIDELITY_REPORT;

/** The extra files of v2's release (labels, the TF2 build), verified, from the mirror or the URL. */
async function extras(): Promise<string> {
  const config = testConfig();
  const dest = path.join(config.modelCacheDir, 'tflite', 'extras');
  return fetchAssets(
    {
      what: 'MobileNet v2 release files',
      baseUrl: MOBILENET_V2_EXTRAS.baseUrl,
      sha256: MOBILENET_V2_EXTRAS.sha256,
      mirror: { kind: MODEL_MIRROR, holds: `${MOBILENET_V2.name}/${Object.keys(MOBILENET_V2_EXTRAS.sha256).join(', ')}` },
    },
    { dest, mirror: config.modelMirror && path.join(config.modelMirror, MOBILENET_V2.name) },
  );
}

const labels = suite('MobileNet v2 labels');
labels("the release's label file names our 1000 classes in our order, after its background class", async () => {
  const lines = (await readFile(path.join(await extras(), MOBILENET_V2_EXTRAS.labels), 'utf8')).trimEnd().split('\n');
  assert.is(lines.length, 1 + CLASS_COUNT);
  assert.is(lines[0], 'background');
  // Spelling aside ("jelly fish" / "jellyfish"), each line is the full synonym list of ours.
  const squash = (s: string) => s.replace(/\s+/g, '');
  for (let i = 0; i < CLASS_COUNT; i++) assert.is(squash(lines[i + 1]), squash(CLASS_NAMES[i]), `class ${i}`);
});
labels.run();

interface Subject {
  name: string;
  tflite: Uint8Array;
  /** The ONNX file as served, with ORT's saved optimisation beside it. */
  onnxPath: string;
}

const python = requireProgram(ARMNN);
if (python) {
  const subjects: Array<() => Promise<Subject>> = [
    async () => {
      const files = await prepareV2(testConfig());
      return { name: MOBILENET_V2.name, tflite: new Uint8Array(await readFile(files.tflitePath)), onnxPath: files.onnxPath };
    },
    async () => {
      // Not served: converted here into a scratch file, to show the converter is general.
      const tflite = new Uint8Array(await readFile(path.join(await extras(), MOBILENET_V2_EXTRAS.tf2Ptq)));
      const onnxPath = path.join(testConfig().modelCacheDir, 'tflite', 'extras', 'tf2_ptq.test.onnx');
      const { writeAtomically } = await import('../src/model/assets.ts');
      await writeAtomically(onnxPath, convertTflite(tflite, { inputName: INPUT_NAME, outputName: OUTPUT_NAME, dropClasses: 1, classes: CLASS_COUNT }));
      return { name: 'tf2_mobilenet_v2_1.0_224_ptq', tflite, onnxPath };
    },
  ];
  for (const load of subjects) fidelitySuite(python, load);
}

function fidelitySuite(python: string, load: () => Promise<Subject>): void {
  let subject: Subject;
  let model: Model;
  let images: Uint8Array[];
  /** Per photo, Arm NN's output of every operator, in operator order. */
  let armnn: ArmnnOutput[][];
  let version: string;
  const test = suite('TFLite conversion against Arm NN');
  test.before(async () => {
    subject = await load();
    model = readTflite(subject.tflite);
    images = await Promise.all(FIXTURE_NAMES.map(async (f) => (await preprocess(await fixture(f), { resize: 'stretch', maxPixels: 5e7 })).rgb));
    const run = await runArmnn(python, withEveryOutput(subject.tflite).model, images);
    armnn = run.images;
    version = run.version;
    await saveOptimized(subject.onnxPath);
  });

  test('ONNX Runtime fuses every convolution, addition and pooling into an integer kernel', async () => {
    const graph = onnxProto.onnx.ModelProto.decode(await readFile(optimizedPathFor(subject.onnxPath))).graph!;
    const count = (op: string) => graph.node!.filter((n) => n.opType === op).length;
    const tflite = (op: string) => model.operators.filter((o) => o.op === op).length;
    assert.is(count('QLinearConv'), tflite('CONV_2D') + tflite('DEPTHWISE_CONV_2D'), `${subject.name}: ${graph.node!.map((n) => n.opType)}`);
    assert.is(count('QLinearAdd'), tflite('ADD'));
    assert.is(count('QLinearGlobalAveragePool'), 1);
    for (const float of ['Conv', 'Add', 'GlobalAveragePool', 'QuantizeLinear']) assert.is(count(float), 0, `no float ${float} left`);
    // What stays float is the tail: one DequantizeLinear of the logits, Softmax, Slice.
    assert.is(count('DequantizeLinear'), 1);
  });

  test('each operator, fed Arm NN’s own input, gives Arm NN’s output (integers: ties aside; softmax: within 2/256)', async () => {
    const tally = { integers: 0, differing: 0, softmax: 0 };
    for (let k = 0; k < model.operators.length; k++) {
      const op = convertOperator(model, k);
      const session = await ort.InferenceSession.create(op.onnx, { intraOpNumThreads: 1 });
      try {
        let worst = 0;
        let differing = 0;
        let total = 0;
        for (let p = 0; p < images.length; p++) {
          const feeds: Record<string, ort.Tensor> = {};
          for (const input of op.inputs) {
            const from = model.operators.findIndex((o) => o.outputs[0] === input.tensor);
            const bytes = from < 0 ? toNchw(images[p], [1, 224, 224, 3]) : toNchw(armnn[p][from].data, armnn[p][from].shape);
            feeds[input.name] = new ort.Tensor('uint8', Uint8Array.from(bytes, (v) => v + input.shift), input.dims);
          }
          const ours = (await session.run(feeds))[op.output.name].data as Uint8Array | Float32Array;
          const theirs = armnn[p][k];
          const expected = toNchw(theirs.data, theirs.shape);
          assert.is(ours.length, expected.length);
          for (let i = 0; i < ours.length; i++) {
            const want = op.output.type === 'float32' ? (expected[i] - theirs.zeroPoint) * theirs.scale : expected[i] + op.output.shift;
            const d = Math.abs(ours[i] - want);
            worst = Math.max(worst, d);
            if (d > 1e-6) differing++;
          }
          total += ours.length;
        }
        const where = `${subject.name} operator ${k} (${model.operators[k].op})`;
        if (op.output.type === 'float32') tally.softmax = Math.max(tally.softmax, worst);
        else [tally.integers, tally.differing] = [tally.integers + total, tally.differing + differing];
        if (op.output.type === 'float32') {
          assert.ok(worst <= 2 / 256, `${where}: probabilities differ by up to ${(worst * 256).toFixed(2)}/256`);
        } else {
          assert.ok(worst <= 1, `${where}: integers differ by up to ${worst}`);
          assert.ok(differing <= total * 0.005, `${where}: ${differing} of ${total} integers differ`);
        }
      } finally {
        await session.release();
      }
    }
    if (REPORT) {
      process.stdout.write(`\n${subject.name}, ${images.length} photos, each operator fed Arm NN's input: ${tally.differing} of ${tally.integers} integers ` +
        `differ (by 1), softmax within ${(tally.softmax * 256).toFixed(2)}/256\n`);
    }
  });

  test('end to end, on every fixture photo: the same top-1 as Arm NN, every probability close', async () => {
    const engine = await createEngine({ engine: 'onnx', provider: 'cpu', providerFallback: false, intraOpThreads: 1, onnxPath: subject.onnxPath, precision: 'int8' });
    const rows: string[] = [];
    try {
      for (const [p, photo] of FIXTURE_NAMES.entries()) {
        const ours = await engine.run(images[p], 1);
        const out = armnn[p].at(-1)!;
        // Arm NN's output keeps the background class at index 0.
        const theirs = Array.from(out.data.subarray(1), (q) => (q - out.zeroPoint) * out.scale);
        let worst = 0;
        for (let i = 0; i < CLASS_COUNT; i++) worst = Math.max(worst, Math.abs(ours[i] - theirs[i]));
        const [a, b] = [argmax(ours), argmax(theirs)];
        rows.push(`| ${subject.name} | ${photo} | ${LABELS[a]} ${ours[a].toFixed(3)} | ${LABELS[b]} ${theirs[b].toFixed(3)} | ${(worst * 256).toFixed(2)}/256 |`);
        assert.is(LABELS[a], LABELS[b], `${photo}: top-1`);
        assert.ok(worst <= END_TO_END_BOUND, `${photo}: probabilities differ by up to ${(worst * 256).toFixed(2)}/256`);
      }
    } finally {
      await engine.dispose();
      if (REPORT) process.stdout.write(`\n| model | photo | ONNX Runtime top-1 | Arm NN ${version} top-1 | max abs diff |\n|---|---|---|---|--:|\n${rows.join('\n')}\n`);
    }
  });
  test.run();
}

function argmax(v: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}
