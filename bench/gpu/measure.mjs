#!/usr/bin/env node
// CPU against WebGPU for MobileNet v1 0.75 on one machine, with plain Node (no tsx, no npm):
// the GPU machine has neither, so this file imports onnxruntime-node from a path.
//
//   node bench/gpu/measure.mjs --ort DIR --model FILE --inputs FILE.bin [--out DIR]
//        [--providers cpu,webgpu] [--gpu-batches 1,8,32,128] [--cpu-batches 1,32]
//        [--runs 30] [--max-seconds 6] [--warmup 3]
//
// Measured, each with a fresh session and the service's session options (engines/onnx.ts):
//   cpu-all  CPU provider, intraOpNumThreads = all cores      batch 1 and 32
//   cpu-1    CPU provider, intraOpNumThreads = 1              batch 1 and 32
//   webgpu   WebGPU provider (Dawn over Vulkan)               batch 1, 8, 32, 128
// For each: session creation time, the first run of each batch size (shader compilation and
// allocation happen there), then the median and p90 over up to --runs timed runs (capped at
// --max-seconds per batch size) after --warmup untimed runs. Output agreement: the fixture
// images as one batch on cpu-all and on webgpu, max |p_cpu − p_gpu| over all 1000 classes,
// and whether the top-1 class is the same.
//
// A provider that cannot start (here: "Failed to get a WebGPU adapter") is recorded with its
// error and the rest still runs; the exit code is 0 unless nothing could be measured.
// Writes gpu-measure.json and gpu-measure.md to --out (default $OUT, else the cwd) and prints
// the markdown.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const SIZE = 224;
const IMAGE_VALUES = SIZE * SIZE * 3;
const INPUT_NAME = 'input';
const OUTPUT_NAME = 'probabilities';

const { values: args } = parseArgs({
  options: {
    ort: { type: 'string', default: 'node_modules/onnxruntime-node' },
    model: { type: 'string' },
    inputs: { type: 'string' },
    out: { type: 'string', default: process.env.OUT || '.' },
    providers: { type: 'string', default: 'cpu,webgpu' },
    'gpu-batches': { type: 'string', default: '1,8,32,128' },
    'cpu-batches': { type: 'string', default: '1,32' },
    runs: { type: 'string', default: '30' },
    'max-seconds': { type: 'string', default: '6' },
    warmup: { type: 'string', default: '3' },
  },
});
if (!args.model || !args.inputs) {
  console.error('usage: measure.mjs --ort DIR --model FILE.onnx --inputs FILE.bin [--out DIR]');
  process.exit(2);
}
const RUNS = Number(args.runs);
const MAX_MS = Number(args['max-seconds']) * 1000;
const WARMUP = Number(args.warmup);
const list = (s) => s.split(',').filter(Boolean).map(Number);

const ort = createRequire(import.meta.url)(path.resolve(args.ort));
const images = loadImages(args.inputs);

function loadImages(file) {
  const bytes = readFileSync(file);
  if (bytes.length % IMAGE_VALUES !== 0) throw new Error(`${file}: not a whole number of 224×224×3 images`);
  const metaFile = file.replace(/\.bin$/, '.json');
  const names = existsSync(metaFile) ? JSON.parse(readFileSync(metaFile, 'utf8')).names : [];
  const count = bytes.length / IMAGE_VALUES;
  return { bytes, count, names: names.length === count ? names : Array.from({ length: count }, (_, i) => `image${i}`) };
}

/** A batch of `batch` images, cycling through the fixtures, as RGB bytes: the graph scales them. */
function makeBatch(batch) {
  const data = new Uint8Array(batch * IMAGE_VALUES);
  for (let b = 0; b < batch; b++) {
    const src = (b % images.count) * IMAGE_VALUES;
    data.set(images.bytes.subarray(src, src + IMAGE_VALUES), b * IMAGE_VALUES);
  }
  return data;
}

// ORT prefixes its source location and the failed check; keep only the explanation.
const firstLine = (err) => String(err?.message ?? err).split('\n')[0].replace(/^.*? was false\. /, '');
const now = () => performance.now();
const round = (x, d = 3) => (x == null ? null : Number(x.toFixed(d)));
function quantile(sorted, q) {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  return sorted[lo] + (sorted[Math.min(lo + 1, sorted.length - 1)] - sorted[lo]) * (pos - lo);
}

async function runOnce(session, data, batch) {
  const feed = new ort.Tensor('uint8', data, [batch, SIZE, SIZE, 3]);
  const out = await session.run({ [INPUT_NAME]: feed });
  const probs = Float32Array.from(out[OUTPUT_NAME].data);
  out[OUTPUT_NAME].dispose?.();
  return probs;
}

function sessionOptions(provider, threads) {
  // As in functions/classify/src/engines/onnx.ts, for the plain .onnx file (the CPU-only
  // pre-optimised graph is not used here: its fused ops are CPU-specific).
  return {
    executionProviders: [provider],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  };
}

/** One configuration: create the session, then time each batch size. */
async function measureConfig(name, provider, threads, batches) {
  const result = { name, provider, threads, batches: [] };
  const t0 = now();
  let session;
  try {
    session = await ort.InferenceSession.create(args.model, sessionOptions(provider, threads));
  } catch (err) {
    result.error = firstLine(err);
    console.error(`${name}: could not start: ${result.error}`);
    return { result };
  }
  result.sessionCreateMs = round(now() - t0, 1);
  for (const batch of batches) {
    const data = makeBatch(batch);
    try {
      let t = now();
      await runOnce(session, data, batch);
      const firstRunMs = now() - t;
      for (let i = 0; i < WARMUP; i++) await runOnce(session, data, batch);
      const times = [];
      const start = now();
      while (times.length < RUNS && (times.length < 5 || now() - start < MAX_MS)) {
        t = now();
        await runOnce(session, data, batch);
        times.push(now() - t);
      }
      times.sort((a, b) => a - b);
      const median = quantile(times, 0.5);
      const row = {
        batch, runs: times.length, firstRunMs: round(firstRunMs, 1),
        medianMsPerBatch: round(median), p90MsPerBatch: round(quantile(times, 0.9)),
        msPerImage: round(median / batch), imagesPerSecond: round((1000 * batch) / median, 1),
      };
      result.batches.push(row);
      console.error(`${name} batch ${batch}: ${row.medianMsPerBatch} ms/batch, ${row.imagesPerSecond} img/s (first run ${row.firstRunMs} ms, n=${row.runs})`);
    } catch (err) {
      const error = firstLine(err);
      result.batches.push({ batch, error });
      console.error(`${name} batch ${batch}: failed: ${error}`);
    }
  }
  return { result, session };
}

/** The fixtures as one batch; returns the [count, 1000] probabilities. */
async function fixtureOutputs(session) {
  return runOnce(session, makeBatch(images.count), images.count);
}

function compare(cpu, gpu) {
  let maxAbs = 0;
  const perImage = [];
  for (let i = 0; i < images.count; i++) {
    const a = cpu.subarray(i * 1000, (i + 1) * 1000);
    const b = gpu.subarray(i * 1000, (i + 1) * 1000);
    let m = 0;
    for (let k = 0; k < 1000; k++) m = Math.max(m, Math.abs(a[k] - b[k]));
    maxAbs = Math.max(maxAbs, m);
    const top = (p) => p.indexOf(Math.max(...p));
    perImage.push({ image: images.names[i], maxAbsDiff: m, top1Cpu: top(a), top1Gpu: top(b), top1ProbCpu: round(Math.max(...a), 5) });
  }
  return { maxAbsProbDiff: maxAbs, top1Agree: perImage.filter((p) => p.top1Cpu === p.top1Gpu).length, images: images.count, perImage };
}

function sh(cmd, argv) {
  try { return execFileSync(cmd, argv, { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] }).trim(); } catch { return null; }
}

function machine() {
  const lscpu = sh('lscpu', []) ?? '';
  const field = (k) => lscpu.match(new RegExp(`^${k}:\\s*(.+)$`, 'm'))?.[1] ?? null;
  return {
    cpu: field('Model name') ?? os.cpus()[0]?.model ?? null,
    cores: os.availableParallelism(),
    sockets: field('Socket\\(s\\)'), threadsPerCore: field('Thread\\(s\\) per core'),
    loadAverage: os.loadavg().map((x) => round(x, 2)),
    memoryGiB: round(os.totalmem() / 2 ** 30, 1),
    // ORT's Node binding does not expose the WebGPU adapter's info, so the card is named by
    // the driver's tool.
    gpu: sh('nvidia-smi', ['-L']),
    gpuDriver: sh('nvidia-smi', ['--query-gpu=name,driver_version,clocks.max.sm,memory.total', '--format=csv,noheader']),
    node: process.version, onnxruntime: ort.env?.versions?.node ?? ort.env?.versions?.common ?? null,
    kernel: os.release(), date: new Date().toISOString(),
  };
}

function markdown(report) {
  const m = report.machine;
  const lines = [
    `CPU: ${m.cpu} (${m.cores} cores visible, load ${m.loadAverage.join(' ')} at start)  `,
    `GPU: ${m.gpu ?? 'none found (nvidia-smi -L failed)'}  `,
    `Node ${m.node}, onnxruntime-node ${m.onnxruntime}, model ${path.basename(report.model)}, ${report.images} fixture images`,
    '',
    '| config | threads | batch | session create ms | first run ms | median ms/batch | p90 ms/batch | ms/image | images/s |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const c of report.configs) {
    if (c.error) { lines.push(`| ${c.name} | ${c.threads} | — | failed: ${c.error} | | | | | |`); continue; }
    for (const b of c.batches) {
      if (b.error) { lines.push(`| ${c.name} | ${c.threads} | ${b.batch} | ${c.sessionCreateMs} | failed: ${b.error} | | | | |`); continue; }
      lines.push(`| ${c.name} | ${c.threads} | ${b.batch} | ${c.sessionCreateMs} | ${b.firstRunMs} | ${b.medianMsPerBatch} | ${b.p90MsPerBatch} | ${b.msPerImage} | ${b.imagesPerSecond} |`);
    }
  }
  const a = report.agreement;
  lines.push('', a.maxAbsProbDiff == null
    ? `Agreement with CPU: not measured (${a.note})`
    : `Agreement with CPU on ${a.images} fixture images: max |Δp| = ${a.maxAbsProbDiff.toExponential(2)}, top-1 equal on ${a.top1Agree}/${a.images}`);
  return lines.join('\n') + '\n';
}

async function main() {
  const providers = args.providers.split(',');
  const report = { machine: machine(), model: args.model, images: images.count, runs: RUNS, warmup: WARMUP, maxSecondsPerBatch: MAX_MS / 1000, configs: [], agreement: {} };
  const cores = os.availableParallelism();
  let cpuRef = null;
  let gpuOut = null;
  if (providers.includes('cpu')) {
    const all = await measureConfig('cpu-all', 'cpu', cores, list(args['cpu-batches']));
    report.configs.push(all.result);
    if (all.session) { cpuRef = await fixtureOutputs(all.session); await all.session.release(); }
    const one = await measureConfig('cpu-1', 'cpu', 1, list(args['cpu-batches']));
    report.configs.push(one.result);
    await one.session?.release();
  }
  if (providers.includes('webgpu')) {
    const gpu = await measureConfig('webgpu', 'webgpu', cores, list(args['gpu-batches']));
    report.configs.push(gpu.result);
    if (gpu.session) {
      try { gpuOut = await fixtureOutputs(gpu.session); } catch (err) { report.agreement.note = `webgpu run failed: ${err.message}`; }
      await gpu.session.release();
    }
  }
  if (cpuRef && gpuOut) Object.assign(report.agreement, compare(cpuRef, gpuOut));
  else report.agreement = { maxAbsProbDiff: null, note: report.agreement.note ?? (gpuOut ? 'no CPU reference' : 'webgpu did not run') };
  report.machine.loadAverageAtEnd = os.loadavg().map((x) => round(x, 2));

  const md = markdown(report);
  mkdirSync(args.out, { recursive: true });
  writeFileSync(path.join(args.out, 'gpu-measure.json'), JSON.stringify(report, null, 2) + '\n');
  writeFileSync(path.join(args.out, 'gpu-measure.md'), md);
  console.log(md);
  const measured = report.configs.some((c) => c.batches?.some((b) => !b.error));
  // Dawn can keep the event loop alive after the session is released.
  process.exit(measured ? 0 : 1);
}

await main();
