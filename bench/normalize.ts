// `node --import tsx bench/normalize.ts`: what moving `x / 127.5 - 1` from the worker's
// JavaScript into the graph saves per image. Both paths are measured in one run, interleaved:
// - before: allocate a Float32Array, scale the bytes in a JS loop, run a graph taking floats
//   (today's graph with its Cast, Mul and Add removed);
// - after: run today's graph on the bytes.
// Medians over the fixture photos, 1 thread, batch 1.
import { readFile } from 'node:fs/promises';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { loadConfig } from '../functions/classify/src/config.ts';
import { IMAGE_VALUES, INPUT_NAME, INPUT_SIZE, OUTPUT_NAME } from '../functions/classify/src/model/mobilenet.ts';
import { prepareV1 } from '../functions/classify/src/model/prepare-v1.ts';
import { preprocess } from '../functions/classify/src/preprocess.ts';
import { FIXTURE_NAMES, fixture } from '../test/support.ts';
import { loadAverage, median, round } from './stats.ts';

const { onnx } = onnxProto;

/** Today's graph, less its input scaling: float NHWC in [-1, 1], as before the fold. */
function floatInputGraph(bytes: Uint8Array): Uint8Array {
  const m = onnx.ModelProto.decode(bytes);
  const g = m.graph!;
  const [transpose, cast, mul, add] = g.node!;
  if (cast.opType !== 'Cast' || add.opType !== 'Add') throw new Error('unexpected graph start');
  const next = g.node!.find((n) => n.input!.includes(add.output![0]))!;
  next.input = next.input!.map((i) => (i === add.output![0] ? transpose.output![0] : i));
  g.node = g.node!.filter((n) => n !== cast && n !== mul && n !== add);
  g.input![0].type!.tensorType!.elemType = onnx.TensorProto.DataType.FLOAT;
  return onnx.ModelProto.encode(m).finish();
}

const files = await prepareV1(loadConfig({ ...process.env, KLASSIFY_MODEL_PRECISION: 'fp32' }));
const model = new Uint8Array(await readFile(files.fp32Path));
const options = { intraOpNumThreads: 1, interOpNumThreads: 1, logSeverityLevel: 3, extra: { session: { intra_op: { allow_spinning: '0' } } } } as const;
const [before, after] = [await ort.InferenceSession.create(floatInputGraph(model), options), await ort.InferenceSession.create(model, options)];
const photos = await Promise.all(FIXTURE_NAMES.map(async (n) => (await preprocess(await fixture(n), { resize: 'stretch', maxPixels: 5e7 })).rgb));
const dims = [1, INPUT_SIZE, INPUT_SIZE, 3];
const ms = { before: [] as number[], after: [] as number[], loop: [] as number[] };
let maxDiff = 0;
for (let round = 0; round < 40; round++) {
  for (const rgb of photos) {
    let t0 = performance.now();
    const input = new Float32Array(IMAGE_VALUES);
    for (let i = 0; i < rgb.length; i++) input[i] = rgb[i] / 127.5 - 1;
    const loop = performance.now() - t0;
    const a = (await before.run({ [INPUT_NAME]: new ort.Tensor('float32', input, dims) }))[OUTPUT_NAME].data as Float32Array;
    const t1 = performance.now();
    const b = (await after.run({ [INPUT_NAME]: new ort.Tensor('uint8', rgb, dims) }))[OUTPUT_NAME].data as Float32Array;
    const t2 = performance.now();
    if (round > 1) {
      ms.before.push(t1 - t0);
      ms.after.push(t2 - t1);
      ms.loop.push(loop);
    }
    for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
  }
}
await before.release();
await after.release();
console.log('| path | ms/image (median) |\n|---|--:|');
console.log(`| before: JS scaling loop + float graph | ${round(median(ms.before), 2)} (loop alone ${round(median(ms.loop), 2)}) |`);
console.log(`| after: bytes into the graph | ${round(median(ms.after), 2)} |`);
console.log(`\nmax |Δp| between the paths ${maxDiff.toExponential(1)}; load avg ${await loadAverage()}`);
