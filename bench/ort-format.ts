// `node --import tsx bench/ort-format.ts [rounds]`: how fast a fresh process creates its
// first ONNX Runtime session from each form of the optimised model, as a worker does at
// start-up. Each sample is its own `node` process (no tsx), the forms interleaved round by
// round; the time covers creating ONNX Runtime's environment and the session, which is the
// worker's path from "onnxruntime-node loaded" to "session created". Wall time swings with
// the machine's load, so the CPU time the process spent (user + system, all threads) is
// reported beside it, and each form's paired difference to the form served today, round by
// round. Then, in this process,
// every form runs the fixture photos and must give the very same probabilities as the
// portable graph optimised at load.
// - onnx-all: the portable .onnx, optimised at load (no cache: a new CPU or a read-only one)
// - optimized-onnx: ONNX Runtime's saved optimisation as ONNX (what the service loads today)
// - ort-path: the same saved in ORT format (.ort), loaded from its path
// - ort-bytes: the .ort file read into memory and used in place
//   (session.use_ort_model_bytes_directly, use_ort_model_bytes_for_initializers)
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadConfig } from '../functions/classify/src/config.ts';
import { optimizedPathFor } from '../functions/classify/src/engines/onnx-cache.ts';
import { INPUT_NAME, INPUT_SIZE, CHANNELS, OUTPUT_NAME } from '../functions/classify/src/model/mobilenet.ts';
import { prepareV1 } from '../functions/classify/src/model/prepare-v1.ts';
import { preprocess } from '../functions/classify/src/preprocess.ts';
import { FIXTURE_NAMES, fixture, ROOT } from '../test/support.ts';
import { loadAverage, median, round } from './stats.ts';
import { cli } from './cli.ts';

const { positionals } = cli({ allowPositionals: true }, 'node --import tsx bench/ort-format.ts [rounds, default 10]');
const ROUNDS = Number(positionals[0] ?? 10);
const common = { intraOpNumThreads: 1, interOpNumThreads: 1, logSeverityLevel: 3 as const, extra: { session: { intra_op: { allow_spinning: '0' } } } };
const bytesOptions = { session: { use_ort_model_bytes_directly: '1', use_ort_model_bytes_for_initializers: '1' } };

const files = await prepareV1(loadConfig({ ...process.env, KLASSIFY_MODEL_CACHE: process.env.KLASSIFY_MODEL_CACHE ?? path.join(ROOT, '.cache/model') }));
const optimizedOnnx = optimizedPathFor(files.onnxPath);
const ortFile = optimizedOnnx.replace(/\.onnx$/, '.ort');
for (const target of [optimizedOnnx, ortFile]) {
  const s = await ort.InferenceSession.create(files.onnxPath, { graphOptimizationLevel: 'all', optimizedModelFilePath: target, logSeverityLevel: 3 });
  await s.release();
}

type Form = { name: string; file: string; level: 'all' | 'disabled'; bytes?: boolean };
const forms: Form[] = [
  { name: 'onnx-all', file: files.onnxPath, level: 'all' },
  { name: 'optimized-onnx', file: optimizedOnnx, level: 'disabled' },
  { name: 'ort-path', file: ortFile, level: 'disabled' },
  { name: 'ort-bytes', file: ortFile, level: 'disabled', bytes: true },
];

const optionsFor = (f: Form): ort.InferenceSession.SessionOptions => ({
  ...common,
  graphOptimizationLevel: f.level,
  extra: { session: { ...common.extra.session, ...(f.bytes ? bytesOptions.session : {}) } },
});

// The child: imports the runtime, then times reading the file (for ort-bytes) and creating
// the session, then one run on zeros.
const CHILD = `
const ort = await import('onnxruntime-node');
const { readFileSync } = await import('node:fs');
const [file, bytes, options] = [process.argv[1], process.argv[2] === '1', JSON.parse(process.argv[3])];
const t0 = performance.now();
const c0 = process.cpuUsage();
const session = await ort.InferenceSession.create(bytes ? new Uint8Array(readFileSync(file)) : file, options);
const c1 = process.cpuUsage(c0);
const t1 = performance.now();
await session.run({ ${JSON.stringify(INPUT_NAME)}: new ort.Tensor('uint8', new Uint8Array(${INPUT_SIZE * INPUT_SIZE * CHANNELS}), [1, ${INPUT_SIZE}, ${INPUT_SIZE}, ${CHANNELS}]) });
const t2 = performance.now();
const c2 = process.cpuUsage(c0);
console.log(JSON.stringify({ create: t1 - t0, cpu: (c1.user + c1.system) / 1000, firstRun: t2 - t1, readyCpu: (c2.user + c2.system) / 1000 }));
`;

const samples = new Map(forms.map((f) => [f.name, { create: [] as number[], cpu: [] as number[], firstRun: [] as number[], ready: [] as number[], readyCpu: [] as number[] }]));
const loadBefore = await loadAverage();
for (let r = 0; r < ROUNDS; r++) {
  for (let k = 0; k < forms.length; k++) {
    const f = forms[(r + k) % forms.length];
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', CHILD, f.file, f.bytes ? '1' : '0', JSON.stringify(optionsFor(f))], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    if (child.status !== 0) throw new Error(`${f.name}: ${child.stderr || child.error}`);
    const out = JSON.parse(child.stdout.trim().split('\n').at(-1)!);
    samples.get(f.name)!.create.push(out.create);
    samples.get(f.name)!.cpu.push(out.cpu);
    samples.get(f.name)!.ready.push(out.create + out.firstRun);
    samples.get(f.name)!.readyCpu.push(out.readyCpu);
    samples.get(f.name)!.firstRun.push(out.firstRun);
  }
}
const loadAfter = await loadAverage();

// Same predictions: every form against the portable graph optimised at load.
const photos = await Promise.all(FIXTURE_NAMES.map(async (n) => (await preprocess(await fixture(n), { resize: 'stretch', maxPixels: 5e7 })).rgb));
// With use_ort_model_bytes_* the session reads its weights from these bytes in place, so
// they must stay referenced until it is released: the runtime holds no reference of its own
// and a collected buffer silently corrupts the weights (seen here once as |Δp| 0.99).
const modelBytes = await Promise.all(forms.map(async (f) => (f.bytes ? new Uint8Array(await readFile(f.file)) : undefined)));
const sessions = await Promise.all(forms.map((f, i) => {
  const bytes = modelBytes[i];
  return bytes ? ort.InferenceSession.create(bytes, optionsFor(f)) : ort.InferenceSession.create(f.file, optionsFor(f));
}));
const maxDiff = new Map(forms.map((f) => [f.name, 0]));
for (const rgb of photos) {
  const outs: Float32Array[] = [];
  for (const s of sessions) {
    const out = await s.run({ [INPUT_NAME]: new ort.Tensor('uint8', rgb, [1, INPUT_SIZE, INPUT_SIZE, CHANNELS]) });
    outs.push(Float32Array.from(out[OUTPUT_NAME].data as Float32Array));
  }
  forms.forEach((f, i) => {
    for (let j = 0; j < outs[0].length; j++) maxDiff.set(f.name, Math.max(maxDiff.get(f.name)!, Math.abs(outs[i][j] - outs[0][j])));
  });
}
for (const s of sessions) await s.release();
modelBytes.length = 0;

console.log(`\n${ROUNDS} fresh processes per form, interleaved; load average before ${loadBefore}, after ${loadAfter}\n`);
const today = samples.get('optimized-onnx')!;
const paired = (a: number[], b: number[]) => median(a.map((x, i) => x - b[i]));
console.log('| form | session create, median ms (min–max) | CPU ms, median | paired Δ vs optimized-onnx: wall, CPU | first run, median ms | create + first run, paired Δ: wall, CPU | max |Δp| vs onnx-all |');
console.log('|---|--:|--:|--:|--:|--:|--:|');
for (const f of forms) {
  const s = samples.get(f.name)!;
  const wall = `${round(median(s.create), 1)} (${round(Math.min(...s.create), 1)}–${round(Math.max(...s.create), 1)})`;
  const delta = `${round(paired(s.create, today.create), 1)}, ${round(paired(s.cpu, today.cpu), 1)}`;
  const ready = `${round(paired(s.ready, today.ready), 1)}, ${round(paired(s.readyCpu, today.readyCpu), 1)}`;
  console.log(`| ${f.name} | ${wall} | ${round(median(s.cpu), 1)} | ${delta} | ${round(median(s.firstRun), 1)} | ${ready} | ${maxDiff.get(f.name)} |`);
}
