// `npm run bench` (add `-- --quick` for a short run): engine speed, decode cost, the served
// models side by side (`models`, bench/models.ts), cold start, RSS, and side-by-side measurements of the HTTP function against the same
// pipeline in process (`side`: the 800×533 load-test JPEG; `throughput`: 512×512, with a
// per-stage breakdown of both sides), and the Open Inference Protocol against /classify
// (`v2`, bench/v2.ts). Prints markdown tables and writes the raw numbers to
// bench/results/<date>-<host>.json. Needs `hey` (apt-get install -y hey) for the HTTP parts.
//
// Noise: every load measurement is repeated (3× by default) with configurations
// interleaved, and medians are reported with the load average next to them.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../functions/classify/src/config.ts';
import { createEngine } from '../functions/classify/src/engines/create.ts';
import { saveOptimized } from '../functions/classify/src/engines/onnx-cache.ts';
import type { Engine } from '../functions/classify/src/engines/engine.ts';
import { IMAGE_VALUES } from '../functions/classify/src/model/mobilenet.ts';
import { startInference } from '../functions/classify/src/inference.ts';
import { silentLogger } from '../server-kit/log.ts';
import { topK } from '../functions/classify/src/labels.ts';
import { prepareModel } from '../functions/classify/src/model/prepare.ts';
import { prepareV1 } from '../functions/classify/src/model/prepare-v1.ts';
import { preprocess } from '../functions/classify/src/preprocess.ts';
import { FIXTURE_NAMES, ROOT, fixture } from '../test/support.ts';
import { decodeThroughput, phonePhotoPath, VARIANTS } from './decode.ts';
import { baseEnv, hasHey, hey, meanBatch, processCpuMs, rssMb, sampler, scrape, stageMeans, startServer, startupMarks, timedGet } from './http.ts';
import { loadImagePath, SQUARE_IMAGE } from './load-image.ts';
import { closedLoop, loadAverage, median, percentile, rotated, round, timeRuns } from './stats.ts';
import { cli, progress } from './cli.ts';

const { values: args } = cli(
  {
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      baseline: { type: 'string' },
      'http-env': { type: 'string' },
      tag: { type: 'string' },
    },
  },
  'npm run bench -- [--quick] [--only=section,…] [--baseline=<dist/classify of another build>] [--http-env=K=V,…] [--tag=name]',
);
const QUICK = args.quick;
const ONLY = args.only?.split(',');
const STEP_S = QUICK ? 2 : 5;
const REPEATS = QUICK ? 1 : 3;
const LEVELS = [1, 2, 4, 8];
const results: Record<string, unknown> = {};
const enabled = (section: string) => !ONLY || ONLY.includes(section);

function table(title: string, header: string[], rows: Array<Array<string | number>>): void {
  console.log(`\n### ${title}\n`);
  console.log(`| ${header.join(' | ')} |`);
  console.log(`|${header.map((_, i) => (i ? '--:' : '---')).join('|')}|`);
  for (const r of rows) console.log(`| ${r.map((v) => (typeof v === 'number' && Number.isNaN(v) ? '–' : v)).join(' | ')} |`);
}

function machine() {
  const lscpu = spawnSync('lscpu', { encoding: 'utf8' }).stdout ?? '';
  const hey = spawnSync('dpkg-query', ['-W', '-f', '${Version}', 'hey'], { encoding: 'utf8' }).stdout || 'unknown';
  const pkg = (name: string) => JSON.parse(readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;
  return {
    host: os.hostname(),
    nproc: os.availableParallelism(),
    cpu: /Model name:\s*(.+)/.exec(lscpu)?.[1]?.trim() ?? os.cpus()[0]?.model,
    memGiB: round(os.totalmem() / 2 ** 30, 1),
    node: process.version,
    onnxruntime: pkg('onnxruntime-node'),
    sharp: pkg('sharp'),
    tfjs: pkg('@tensorflow/tfjs'),
    hey,
    quick: QUICK,
    stepSeconds: STEP_S,
    repeats: REPEATS,
  };
}

// ---------------------------------------------------------------- engines

async function engines() {
  const config = loadConfig({ ...baseEnv() });
  const files = await prepareV1(config, { needSource: true });
  const input = new Uint8Array(8 * IMAGE_VALUES);
  input.set((await preprocess(await fixture('chelsea.png'), { resize: 'stretch', maxPixels: 5e7 })).rgb);
  for (let i = 1; i < 8; i++) input.copyWithin(i * IMAGE_VALUES, 0, IMAGE_VALUES);
  const setups = [
    { name: 'onnx, 1 thread', engine: 'onnx', threads: 1, runs: QUICK ? 20 : 60 },
    { name: 'onnx, 2 threads', engine: 'onnx', threads: 2, runs: QUICK ? 20 : 60 },
    { name: 'tfjs wasm', engine: 'tfjs', threads: 1, runs: QUICK ? 2 : 5 },
  ] as const;
  const rows: Array<Record<string, unknown>> = [];
  for (const s of setups) {
    const engine: Engine = await createEngine({ ...files, engine: s.engine, provider: 'cpu', providerFallback: false, intraOpThreads: s.threads });
    const row: Record<string, unknown> = { name: s.name, provider: engine.provider };
    for (const batch of [1, 8]) {
      const slice = input.subarray(0, batch * IMAGE_VALUES);
      const ms = await timeRuns(() => engine.run(slice, batch), Math.max(2, Math.round(s.runs / batch)), 2);
      row[`batch${batch}`] = round(median(ms) / batch, 2);
    }
    await engine.dispose();
    rows.push(row);
  }
  const onnx = rows[0].batch1 as number;
  const tfjs = rows[2].batch1 as number;
  results.engines = { rows, onnxVsTfjsSpeedup: round(tfjs / onnx, 1), load: await loadAverage() };
  table('Engines: ms per image (median, one thread calling)', ['engine', 'provider', 'batch 1', 'batch 8'],
    rows.map((r) => [r.name as string, r.provider as string, r.batch1 as number, r.batch8 as number]));
  console.log(`\nonnx (1 thread) is ${round(tfjs / onnx, 1)}× faster than tfjs wasm per image at batch 1. load avg ${await loadAverage()}`);
}

// ---------------------------------------------------------------- decode

async function decode() {
  const loadImage = await loadImagePath();
  const phone = await phonePhotoPath();
  const inputs: Array<[string, Uint8Array]> = [
    ...(await Promise.all(FIXTURE_NAMES.map(async (n) => [n, await fixture(n)] as [string, Uint8Array]))),
    ['load-test 800×533 JPEG', new Uint8Array(await readFile(loadImage))],
    ['phone 4032×3024 JPEG', new Uint8Array(await readFile(phone))],
  ];
  const runs = QUICK ? 10 : 30;
  // Predictions per variant, to show a faster path changes nothing that matters.
  const config = loadConfig({ ...baseEnv() });
  const files = await prepareV1(config);
  const engine = await createEngine({ ...files, engine: 'onnx', provider: 'cpu', providerFallback: false, intraOpThreads: 1 });
  const classify = (rgb: Uint8Array) => engine.run(rgb, 1);
  const perFixture: Array<Record<string, unknown>> = [];
  const reference = new Map<string, Float32Array>();
  for (const [name, bytes] of inputs) {
    const row: Record<string, unknown> = { input: name, bytes: bytes.length };
    for (const [variantName, fn] of Object.entries(VARIANTS)) {
      const ms = await timeRuns(() => fn(bytes), runs, 2);
      const probs = await classify(await fn(bytes));
      if (!reference.has(name)) reference.set(name, probs);
      const ref = reference.get(name)!;
      let maxDiff = 0;
      for (let i = 0; i < probs.length; i++) maxDiff = Math.max(maxDiff, Math.abs(probs[i] - ref[i]));
      row[variantName] = { ms: round(median(ms), 2), top1: topK(probs, 1)[0].label, sameTop1: topK(probs, 1)[0].classIndex === topK(ref, 1)[0].classIndex, maxAbsDiff: Number(maxDiff.toPrecision(2)) };
    }
    perFixture.push(row);
  }
  await engine.dispose();
  const names = Object.keys(VARIANTS);
  type Cell = { ms: number; sameTop1: boolean; maxAbsDiff: number; top1: string };
  table('Decode + resize to 224×224 (ms, median; one call at a time)', ['input', 'top-1 (current)', ...names],
    perFixture.map((r) => [
      r.input as string,
      (r[names[0]] as Cell).top1,
      ...names.map((n) => {
        const c = r[n] as Cell;
        return `${c.ms}${c.sameTop1 ? '' : ' ✗top1'}${c.maxAbsDiff > 0 ? ` (Δ${c.maxAbsDiff})` : ''}`;
      }),
    ]));
  console.log('\nΔ = max abs probability difference from the current path; ✗top1 = the top-1 class changed.');

  // Thread settings: parallel decode throughput in fresh processes.
  const settings = [
    { UV_THREADPOOL_SIZE: '4', SHARP_CONCURRENCY: '1' },
    { UV_THREADPOOL_SIZE: '2', SHARP_CONCURRENCY: '1' },
    { UV_THREADPOOL_SIZE: '1', SHARP_CONCURRENCY: '1' },
    { UV_THREADPOOL_SIZE: '4', SHARP_CONCURRENCY: '2' },
    { UV_THREADPOOL_SIZE: '2', SHARP_CONCURRENCY: '2' },
  ];
  const threadRows: Array<Record<string, unknown>> = [];
  for (const image of [loadImage, phone]) {
    const samples = new Map<number, number[]>();
    for (let r = 0; r < REPEATS; r++) {
      settings.forEach((env, i) => {
        const list = samples.get(i) ?? [];
        list.push(decodeThroughput(image, env, 4, Math.min(STEP_S, 3)));
        samples.set(i, list);
      });
    }
    settings.forEach((env, i) => threadRows.push({ image: path.basename(image), ...env, imagesPerSecond: round(median(samples.get(i)!)), samples: samples.get(i)!.map((v) => round(v)) }));
  }
  results.decode = { perFixture, threads: threadRows, load: await loadAverage() };
  table(`Decode throughput, 4 concurrent calls, no inference (images/s, median of ${REPEATS})`, ['image', 'UV_THREADPOOL_SIZE', 'sharp.concurrency', 'images/s'],
    threadRows.map((r) => [r.image as string, r.UV_THREADPOOL_SIZE as string, r.SHARP_CONCURRENCY as string, r.imagesPerSecond as number]));
  console.log(`\nload avg ${await loadAverage()}`);
}

// ---------------------------------------------------------------- cold start

/**
 * `--baseline=<dir>` names another build of the function (a copy of dist/classify from an
 * earlier commit); the cold-start and saturation sections then run it interleaved with the
 * current build, so before and after meet the same background load.
 */
const BASELINE = args.baseline;
const PRECISIONS = ['fp32', 'int8'] as const;
const builds = (): Array<[string, string | undefined]> =>
  BASELINE ? [['current', undefined], ['baseline', path.resolve(BASELINE, 'main.js')]] : [['current', undefined]];

async function coldStart() {
  const image = await readFile(await loadImagePath());
  const runs = QUICK ? 3 : 5;
  const MARKS = ['main module', 'HTTP stack loaded', 'listening', 'first worker warm', 'decoders ready', 'ready'];
  // Each build with the default fp32 model and with the opt-in int8 one (both prepared).
  // An earlier build (--baseline) may predate int8: it runs fp32 only.
  const perBuild = builds().flatMap(([name, entry]) => PRECISIONS.filter((p) => !entry || p === 'fp32').map((precision) => ({
    name: precision === 'fp32' ? name : `${name}, int8`, entry, env: { KLASSIFY_MODEL_PRECISION: precision }, samples: [] as Array<Record<string, number>>,
  })));
  for (let i = 0; i < runs; i++) {
    for (const b of i % 2 ? [...perBuild].reverse() : perBuild) {
      const t0 = performance.now();
      const server = await startServer(b.env, b.entry);
      const res = await fetch(`${server.url}/classify`, { method: 'POST', body: image, headers: { 'content-type': 'image/jpeg' } });
      await res.arrayBuffer();
      const firstResponseMs = performance.now() - t0;
      b.samples.push({ readyMs: round(server.readyMs), firstResponseMs: round(firstResponseMs), ...startupMarks(server.log) });
      await server.stop();
    }
  }
  const load = await loadAverage();
  const summary = perBuild.map((b) => ({
    build: b.name,
    medianReadyMs: median(b.samples.map((s) => s.readyMs)),
    medianFirstResponseMs: median(b.samples.map((s) => s.firstResponseMs)),
    marks: Object.fromEntries(MARKS.map((m) => [m, median(b.samples.map((s) => s[m] ?? NaN))])),
    samples: b.samples,
  }));
  results.coldStart = { builds: summary, load };
  table(`Cold start: spawn \`node dist/classify/main.js\` (median of ${runs}; load avg ${load})`, ['phase', ...summary.map((s) => `${s.build}, ms`)], [
    ['spawn → readiness 200 (bench clock)', ...summary.map((s) => round(s.medianReadyMs))],
    ['spawn → first classification answered (after every worker joined)', ...summary.map((s) => round(s.medianFirstResponseMs))],
    ...MARKS.map((m) => [`server log: ${m} (ms since process start)`, ...summary.map((s) => s.marks[m])]),
  ]);
}

// ---------------------------------------------------------------- HTTP vs in-process

interface LevelResult { rps: number; p50: number; p99: number; stages?: Record<string, number> }

async function httpLevel(url: string, image: string, c: number): Promise<LevelResult> {
  const before = await scrape(url);
  const h = await hey(url, image, c, STEP_S);
  const after = await scrape(url);
  return { rps: (h.statusCodes['200'] ?? 0) / h.seconds, p50: h.latencyMs.p50 ?? NaN, p99: h.latencyMs.p99 ?? NaN, stages: stageMeans(before, after) };
}

/**
 * HTTP against the same pipeline in process. The background load on a shared machine
 * drifts within seconds, so all sides stay up (an idle side costs no CPU) and each
 * concurrency level runs on every side back to back, the order rotating; ratios are taken
 * within each such group, then their median is reported.
 */
async function sideBySide() {
  const image = await loadImagePath();
  const bytes = new Uint8Array(await readFile(image));
  const config = loadConfig({ ...baseEnv(), PORT: '0' });
  progress('starting the in-process pool and two servers');
  const { pool } = await startInference(config, silentLogger);
  await pool.allReady();
  const servers = [await startServer(), await startServer({ UV_THREADPOOL_SIZE: '2' })];
  const SIDES = ['HTTP', 'HTTP, UV_THREADPOOL_SIZE=2', 'in-process'] as const;
  type Side = (typeof SIDES)[number];
  const runOne = async () => pool.infer(config.model, (await preprocess(bytes, { resize: config.resize, maxPixels: config.maxPixels })).rgb);
  const measure = async (side: Side, c: number): Promise<LevelResult> => {
    if (side === 'in-process') {
      const { rps, latencies } = await closedLoop(runOne, c, STEP_S);
      return { rps, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
    }
    return httpLevel(servers[side === 'HTTP' ? 0 : 1].url, image, c);
  };
  const groups: Array<{ c: number; load: string } & Record<Side, LevelResult>> = [];
  try {
    await closedLoop(runOne, 2, 1);
    for (const srv of servers) await hey(srv.url, image, 2, 1);
    let turn = 0;
    for (let r = 0; r < REPEATS; r++) {
      for (const c of LEVELS) {
        const group = { c } as { c: number; load: string } & Record<Side, LevelResult>;
        const order = rotated(SIDES, turn);
        turn++;
        for (const side of order) {
          progress(`side-by-side round ${r + 1}/${REPEATS}: ${side}, ${c} client(s)`);
          group[side] = await measure(side, c);
        }
        group.load = await loadAverage();
        groups.push(group);
      }
    }
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    await pool.close();
  }
  const at = (c: number) => groups.filter((g) => g.c === c);
  const med = (c: number, side: Side, key: 'rps' | 'p50' | 'p99') => round(median(at(c).map((g) => g[side][key])));
  const rows = LEVELS.map((c) => ({
    concurrency: c,
    ...Object.fromEntries(SIDES.map((side) => [side, { rps: med(c, side, 'rps'), p50: med(c, side, 'p50'), p99: med(c, side, 'p99') }])),
    ratioDefault: round(median(at(c).map((g) => g.HTTP.rps / g['in-process'].rps)), 3),
    ratioUv2: round(median(at(c).map((g) => g['HTTP, UV_THREADPOOL_SIZE=2'].rps / g['in-process'].rps)), 3),
    stages: Object.fromEntries(['decode', 'queue', 'inference', 'total'].map((s) => [s, round(median(at(c).map((g) => g.HTTP.stages![s])), 2)])),
    stagesUv2: Object.fromEntries(['decode', 'queue', 'inference', 'total'].map((s) => [s, round(median(at(c).map((g) => g['HTTP, UV_THREADPOOL_SIZE=2'].stages![s])), 2)])),
  })) as Array<Record<string, any>>;
  // Best concurrency per side (by median throughput), then the ratio of those medians.
  const best = (side: Side) => Math.max(...rows.map((r) => r[side].rps));
  const p50Gaps = at(1).map((g) => g.HTTP.p50 - g['in-process'].p50);
  const p50GapsUv2 = at(1).map((g) => g['HTTP, UV_THREADPOOL_SIZE=2'].p50 - g['in-process'].p50);
  const summary = {
    bestHttpRps: best('HTTP'), bestHttpUv2Rps: best('HTTP, UV_THREADPOOL_SIZE=2'), bestInprocRps: best('in-process'),
    ratioAtBest: round(best('HTTP') / best('in-process'), 3),
    ratioAtBestUv2: round(best('HTTP, UV_THREADPOOL_SIZE=2') / best('in-process'), 3),
    p50GapMs: round(median(p50Gaps), 2), p50GapUv2Ms: round(median(p50GapsUv2), 2),
  };
  results.sideBySide = { rows, summary, groups };
  table(`HTTP (hey, loopback) vs the same pipeline in process (req/s | p50 ms | p99 ms; median of ${REPEATS} groups × ${STEP_S} s)`,
    ['clients', ...SIDES, 'HTTP / in-process', 'HTTP UV2 / in-process'],
    rows.map((r) => [r.concurrency, ...SIDES.map((side) => `${r[side].rps} \\| ${r[side].p50} \\| ${r[side].p99}`), r.ratioDefault, r.ratioUv2]));
  table('Where the time goes per request (server-side means from /metrics, ms; hey p50 − server total ≈ HTTP and client)',
    ['clients', 'decode', 'queue', 'inference', 'server total', 'hey p50', 'UV2: decode', 'UV2: queue', 'UV2: inference', 'UV2: total'],
    rows.map((r) => [r.concurrency, r.stages.decode, r.stages.queue, r.stages.inference, r.stages.total, r.HTTP.p50,
      r.stagesUv2.decode, r.stagesUv2.queue, r.stagesUv2.inference, r.stagesUv2.total]));
  console.log(`\nBest HTTP / best in-process throughput: ${summary.ratioAtBest} (UV_THREADPOOL_SIZE=2: ${summary.ratioAtBestUv2}); target ≥ 0.8`);
  console.log(`p50 at 1 client, HTTP − in-process: ${summary.p50GapMs} ms (UV2: ${summary.p50GapUv2Ms} ms); target ≤ 3 ms`);
  console.log(`load avg per group: ${groups.map((g) => g.load.split(' ')[0]).join(' ')}`);
}

// ---------------------------------------------------------------- throughput

/** `--http-env=K=V,K=V`: settings for the HTTP side of the throughput section only. */
const HTTP_ENV: Record<string, string> = Object.fromEntries(
  (args['http-env']?.split(',') ?? []).filter(Boolean).map((kv) => {
    const i = kv.indexOf('=');
    return [kv.slice(0, i), kv.slice(i + 1)];
  }),
);

type Stages = Record<'decode' | 'queue' | 'handoff' | 'inference' | 'total', number>;

/**
 * klassify over HTTP (fp32 and int8 model) against the straightforward pipeline it wraps, in one process: sharp
 * decode + ONNX Runtime fp32 in 2 worker threads, no HTTP. 512×512 JPEG; both sides stay
 * up and each concurrency level runs on both back to back, the order alternating. Stage
 * means per request: decode (sharp), queue (waiting for a worker), handoff (copy into the
 * worker's slab, the two messages, normalisation: the pool's round trip minus queue and
 * inference), inference (session.run), and for HTTP the rest of the mean latency (c / rps
 * by Little's law) beyond the server's own total: reading the body, routing, JSON, loopback
 * and hey itself.
 */
async function throughput() {
  const image = await loadImagePath(SQUARE_IMAGE);
  const bytes = new Uint8Array(await readFile(image));
  const config = loadConfig({ ...baseEnv(), PORT: '0', KLASSIFY_MODEL_PRECISION: 'fp32' });
  progress('throughput: starting the in-process pipeline and two servers (fp32, int8)');
  const { pool } = await startInference(config, silentLogger);
  await pool.allReady();
  // The server with the default fp32 model and with the opt-in int8 one; the in-process
  // pipeline stays fp32, the reference both are compared with.
  const servers = {
    HTTP: await startServer(HTTP_ENV),
    'HTTP, int8': await startServer({ ...HTTP_ENV, KLASSIFY_MODEL_PRECISION: 'int8' }),
  };
  const levels = QUICK ? [1, 8] : [1, 2, 4, 8, 16];
  const SIDES = ['in-process', 'HTTP', 'HTTP, int8'] as const;
  type Side = (typeof SIDES)[number];
  type HttpSide = Exclude<Side, 'in-process'>;
  // cpuMs: CPU time per image of the process doing the work (all threads: decode pool,
  // workers, main thread), which the neighbours' load barely changes, unlike req/s.
  type Sample = { rps: number; p50: number; p99: number; cpuMs: number; stages: Stages };
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / Math.max(1, v.length);
  const inProcess = async (c: number): Promise<Sample> => {
    const acc: Record<keyof Stages, number[]> = { decode: [], queue: [], handoff: [], inference: [], total: [] };
    const one = async () => {
      const t0 = performance.now();
      const { rgb } = await preprocess(bytes, { resize: config.resize, maxPixels: config.maxPixels });
      const t1 = performance.now();
      const r = await pool.infer(config.model, rgb);
      const t2 = performance.now();
      acc.decode.push(t1 - t0);
      acc.queue.push(r.queueMs);
      acc.inference.push(r.inferenceMs);
      acc.handoff.push(t2 - t1 - r.queueMs - r.inferenceMs);
      acc.total.push(t2 - t0);
    };
    const cpu0 = process.cpuUsage();
    const { rps, latencies } = await closedLoop(one, c, STEP_S);
    const cpu = process.cpuUsage(cpu0);
    const stages = Object.fromEntries(Object.entries(acc).map(([k, v]) => [k, mean(v)])) as Stages;
    return { rps, p50: percentile(latencies, 50), p99: percentile(latencies, 99), cpuMs: (cpu.user + cpu.system) / 1000 / latencies.length, stages };
  };
  const overHttp = async (side: HttpSide, c: number): Promise<Sample> => {
    const server = servers[side];
    const before = await scrape(server.url);
    const cpu0 = processCpuMs(server.pid);
    const h = await hey(server.url, image, c, STEP_S);
    const cpu1 = processCpuMs(server.pid);
    const after = await scrape(server.url);
    const ok = h.statusCodes['200'] ?? 0;
    const r = { rps: ok / h.seconds, p50: h.latencyMs.p50 ?? NaN, p99: h.latencyMs.p99 ?? NaN, stages: stageMeans(before, after) };
    const st = r.stages;
    // The server times the pool's round trip as queue + inference; what it does not
    // attribute (slab copy, messages, normalisation, metrics) is the handoff.
    const handoff = st.total - st.decode - st.queue - st.inference;
    return { rps: r.rps, p50: r.p50, p99: r.p99, cpuMs: (cpu1 - cpu0) / Math.max(1, ok), stages: { decode: st.decode, queue: st.queue, handoff, inference: st.inference, total: st.total } };
  };
  const groups: Array<{ c: number; load: string } & Record<Side, Sample>> = [];
  try {
    await closedLoop(async () => pool.infer(config.model, (await preprocess(bytes, { resize: config.resize, maxPixels: config.maxPixels })).rgb), 2, 1);
    for (const server of Object.values(servers)) await hey(server.url, image, 2, 1);
    let turn = 0;
    for (let r = 0; r < REPEATS; r++) {
      for (const c of levels) {
        const group = { c } as { c: number; load: string } & Record<Side, Sample>;
        const order = rotated(SIDES, turn);
        turn++;
        for (const side of order) {
          progress(`throughput round ${r + 1}/${REPEATS}: ${side}, ${c} client(s)`);
          group[side] = side === 'in-process' ? await inProcess(c) : await overHttp(side, c);
        }
        group.load = await loadAverage();
        groups.push(group);
      }
    }
  } finally {
    await Promise.all(Object.values(servers).map((s) => s.stop()));
    await pool.close();
  }
  const at = (c: number) => groups.filter((g) => g.c === c);
  const med = (c: number, side: Side, f: (s: Sample) => number) => median(at(c).map((g) => f(g[side])));
  const rows = levels.map((c) => ({
    clients: c,
    ...Object.fromEntries(SIDES.map((side) => [side, {
      rps: round(med(c, side, (s) => s.rps)), p50: round(med(c, side, (s) => s.p50)), p99: round(med(c, side, (s) => s.p99)),
      cpuMs: round(med(c, side, (s) => s.cpuMs), 2),
      stages: Object.fromEntries(Object.keys(groups[0][side].stages).map((k) => [k, round(med(c, side, (s) => s.stages[k as keyof Stages]), 2)])),
      // Mean latency by Little's law, minus the server's own total: HTTP, loopback, client.
      outside: round(med(c, side, (s) => (c / s.rps) * 1000 - s.stages.total), 2),
    }])),
    ratio: round(median(at(c).map((g) => g.HTTP.rps / g['in-process'].rps)), 3),
    ratioInt8: round(median(at(c).map((g) => g['HTTP, int8'].rps / g['in-process'].rps)), 3),
  })) as Array<Record<string, any>>;
  const best = (side: Side) => Math.max(...rows.map((r) => r[side].rps));
  const summary = {
    image: path.basename(image), httpEnv: HTTP_ENV, bestHttpRps: best('HTTP'), bestHttpInt8Rps: best('HTTP, int8'), bestInProcessRps: best('in-process'),
    ratio: round(best('HTTP') / best('in-process'), 3), ratioInt8: round(best('HTTP, int8') / best('in-process'), 3),
  };
  results.throughput = { rows, summary, groups };
  table(`Throughput: klassify over HTTP (hey) vs the in-process pipeline (sharp + ORT fp32, 2 workers), ${summary.image} (req/s \\| p50 ms \\| p99 ms; median of ${REPEATS} × ${STEP_S} s)`,
    ['clients', ...SIDES, 'HTTP ÷ in-process', 'HTTP int8 ÷ in-process'],
    rows.map((r) => [r.clients, ...SIDES.map((side) => `${r[side].rps} \\| ${r[side].p50} \\| ${r[side].p99}`), r.ratio, r.ratioInt8]));
  table('Per-request stages (mean ms): decode | queue | handoff (copies, messages, normalise) | inference | rest of the mean latency (HTTP, loopback, client); CPU ms per image of the serving process (hey not included)',
    ['clients', 'side', 'decode', 'queue', 'handoff', 'inference', 'total', 'HTTP + client', 'CPU ms / image'],
    rows.flatMap((r) => SIDES.map((side) => [r.clients, side, r[side].stages.decode, r[side].stages.queue, r[side].stages.handoff, r[side].stages.inference, r[side].stages.total, side === 'in-process' ? '–' : r[side].outside, r[side].cpuMs])));
  console.log(`\nBest HTTP ${summary.bestHttpRps} req/s (int8: ${summary.bestHttpInt8Rps}) ÷ best in-process fp32 ${summary.bestInProcessRps} img/s = ${summary.ratio} (int8: ${summary.ratioInt8}; target ≥ 1.2)${Object.keys(HTTP_ENV).length ? `; HTTP side with ${JSON.stringify(HTTP_ENV)}` : ''}`);
  console.log(`load avg per group: ${groups.map((g) => g.load.split(' ')[0]).join(' ')}`);
}

// ---------------------------------------------------------------- saturation

const SATURATION_VARIANTS: Array<[string, Record<string, string>]> = [
  ['default', {}],
  // The container image and the Knative manifest set this (Dockerfile).
  ['MALLOC_ARENA_MAX=2', { MALLOC_ARENA_MAX: '2' }],
  ['int8', { KLASSIFY_MODEL_PRECISION: 'int8' }],
  ['int8, MALLOC_ARENA_MAX=2', { KLASSIFY_MODEL_PRECISION: 'int8', MALLOC_ARENA_MAX: '2' }],
];

async function saturation() {
  const all: Record<string, unknown> = {};
  const variants = builds().flatMap(([build, entry]) =>
    SATURATION_VARIANTS.filter(([, env]) => !entry || !env.KLASSIFY_MODEL_PRECISION)
      .map(([name, env]) => [build === 'current' ? name : `${name} (${build})`, env, entry] as const));
  const perVariant = variants.map(() => [] as Array<Record<string, unknown>>);
  for (let r = 0; r < REPEATS; r++) {
    for (const [i, [name, env, entry]] of variants.entries()) {
      progress(`saturation round ${r + 1}/${REPEATS}: ${name}`);
      perVariant[i].push(await saturationRun(env, entry));
    }
  }
  variants.forEach(([name], i) => (all[name] = summarise(name, perVariant[i])));
  results.saturation = all;
}

async function saturationRun(env: Record<string, string>, entry?: string): Promise<Record<string, unknown>> {
  const image = await loadImagePath();
  {
    const server = await startServer(env, entry);
    try {
      const idleRss = rssMb(server.pid);
      await hey(server.url, image, 2, 1);
      // 1. Saturating but within the admission limit (32): 16 clients.
      await scrape(server.url); // resets the event-loop delay histogram
      const rss = sampler(() => rssMb(server.pid), 200);
      const health = sampler(() => timedGet(`${server.url}/health/readiness`), 50);
      const before = await scrape(server.url);
      const sat = await hey(server.url, image, 16, STEP_S * 2);
      const after = await scrape(server.url);
      const healthMs = await health.stop();
      const rssSat = await rss.stop();
      // 2. Overload: 128 clients against 32 admitted requests; some must be shed.
      const shed = sampler(async () => {
        const res = await fetch(`${server.url}/classify`, { method: 'POST', body: await readFile(image), headers: { 'content-type': 'image/jpeg' } });
        await res.arrayBuffer();
        return { status: res.status, retryAfter: res.headers.get('retry-after') };
      }, 100);
      const rssOver = sampler(() => rssMb(server.pid), 200);
      const over = await hey(server.url, image, 128, STEP_S);
      const probes = await shed.stop();
      const rssOverload = await rssOver.stop();
      const retryAfter = probes.find((p) => p.status === 503)?.retryAfter ?? null;
      return {
        idleRssMb: round(idleRss),
        saturated: {
          clients: 16, okRps: round((sat.statusCodes['200'] ?? 0) / sat.seconds), p50: sat.latencyMs.p50, p99: sat.latencyMs.p99, statusCodes: sat.statusCodes,
          healthP50Ms: round(percentile(healthMs, 50), 2), healthP99Ms: round(percentile(healthMs, 99), 2), healthMaxMs: round(Math.max(...healthMs), 2), healthSamples: healthMs.length,
          eventLoopP99Ms: round(after.value('nodejs_eventloop_lag_p99_seconds') * 1000, 2),
          eventLoopMaxMs: round(after.value('nodejs_eventloop_lag_max_seconds') * 1000, 2),
          meanBatch: round(meanBatch(before, after), 2),
          rssMedianMb: round(median(rssSat)), rssMaxMb: round(Math.max(...rssSat)),
        },
        overload: {
          clients: 128, statusCodes: over.statusCodes, errors: over.errors, okRps: round((over.statusCodes['200'] ?? 0) / over.seconds),
          p50: over.latencyMs.p50, p99: over.latencyMs.p99, retryAfter, rssMaxMb: round(Math.max(...rssOverload)),
        },
        load: await loadAverage(),
      };
    } finally {
      await server.stop();
    }
  }
}

function summarise(name: string, runs: Array<Record<string, any>>) {
  const pick = (f: (r: any) => number) => round(median(runs.map(f)), 2);
  const summary = {
    healthP99Ms: pick((r) => r.saturated.healthP99Ms),
    healthMaxMs: pick((r) => r.saturated.healthMaxMs),
    eventLoopP99Ms: pick((r) => r.saturated.eventLoopP99Ms),
    rssMaxMb: Math.max(...runs.map((r: any) => Math.max(r.saturated.rssMaxMb, r.overload.rssMaxMb))),
    rssSteadyMb: pick((r) => r.saturated.rssMedianMb),
    idleRssMb: pick((r) => r.idleRssMb),
    saturatedOkRps: pick((r) => r.saturated.okRps),
    saturatedP99Ms: pick((r) => r.saturated.p99),
    overloadOkRps: pick((r) => r.overload.okRps),
    shedShare: pick((r) => (r.overload.statusCodes['503'] ?? 0) / Object.values(r.overload.statusCodes as Record<string, number>).reduce((a, b) => a + b, 0)),
    retryAfter: (runs.map((r: any) => r.overload.retryAfter).find(Boolean) as string) ?? null,
    otherStatuses: [...new Set(runs.flatMap((r: any) => Object.keys(r.overload.statusCodes).filter((c) => c !== '200' && c !== '503')))],
  };
  table(`${name}: saturation (16 clients, ${STEP_S * 2} s) and overload (128 clients, ${STEP_S} s); median of ${REPEATS}`, ['measure', 'value', 'target'], [
    ['req/s (200) and p99 ms at 16 clients', `${summary.saturatedOkRps} / ${summary.saturatedP99Ms}`, ''],
    ['readiness check latency p99 / max during saturation (ms)', `${summary.healthP99Ms} / ${summary.healthMaxMs}`, '< 50'],
    // monitorEventLoopDelay records the time between its timer's runs, so an idle loop reads
    // the 10 ms sampling interval itself (p50 10.2 ms); the delay is what exceeds it.
    ['event-loop delay p99 during saturation (ms; as exported, and beyond the 10 ms sampling interval)', `${summary.eventLoopP99Ms} / ${round(summary.eventLoopP99Ms - 10, 2)}`, '≤ 20'],
    ['memory idle / steady under load / max (MB, PSS of the server, its workers and decoder processes)', `${summary.idleRssMb} / ${summary.rssSteadyMb} / ${summary.rssMaxMb}`, '≤ 250'],
    ['share of requests shed with 503 at 128 clients; req/s (200) meanwhile', `${round(summary.shedShare, 3)}; ${summary.overloadOkRps}`, '> 0, no other errors'],
    ['Retry-After on a 503', summary.retryAfter ?? 'none seen', 'present'],
    ['other statuses/errors under overload', summary.otherStatuses.join(', ') || 'none', 'none'],
  ]);
  console.log(`\nload avg per run: ${runs.map((r) => r.load).join(' | ')}`);
  return { runs, summary };
}

// ---------------------------------------------------------------- configurations

async function configurations() {
  const image = await loadImagePath();
  const clients = 8;
  const configs: Array<[string, Record<string, string>]> = [
    ['default (2 workers × 1 thread, batch 1, UV pool 4)', {}],
    ['batch max 4', { KLASSIFY_BATCH_MAX: '4' }],
    ['batch max 8', { KLASSIFY_BATCH_MAX: '8' }],
    ['batch max 8, delay 2 ms', { KLASSIFY_BATCH_MAX: '8', KLASSIFY_BATCH_DELAY_MS: '2' }],
    ['1 worker × 1 thread', { KLASSIFY_WORKERS: '1' }],
    ['1 worker × 2 threads', { KLASSIFY_WORKERS: '1', KLASSIFY_INTRA_OP_THREADS: '2' }],
    ['2 workers × 2 threads', { KLASSIFY_INTRA_OP_THREADS: '2' }],
    ['UV_THREADPOOL_SIZE=2', { UV_THREADPOOL_SIZE: '2' }],
    ['UV_THREADPOOL_SIZE=1', { UV_THREADPOOL_SIZE: '1' }],
  ];
  const samples = configs.map(() => [] as Array<{ rps: number; p50: number; p99: number; batch: number; c1p50: number }>);
  for (let r = 0; r < REPEATS; r++) {
    // Rotate the order each round, so a drift in background load favours no configuration.
    for (let k = 0; k < configs.length; k++) {
      const i = (k + r * Math.ceil(configs.length / REPEATS)) % configs.length;
      const env = configs[i][1];
      progress(`configurations round ${r + 1}/${REPEATS}: ${configs[i][0]}`);
      const server = await startServer(env);
      try {
        await hey(server.url, image, 2, 1);
        const c1 = await hey(server.url, image, 1, Math.min(STEP_S, 3));
        const before = await scrape(server.url);
        const h = await hey(server.url, image, clients, STEP_S);
        const after = await scrape(server.url);
        samples[i].push({ rps: (h.statusCodes['200'] ?? 0) / h.seconds, p50: h.latencyMs.p50 ?? NaN, p99: h.latencyMs.p99 ?? NaN, batch: meanBatch(before, after), c1p50: c1.latencyMs.p50 ?? NaN });
      } finally {
        await server.stop();
      }
    }
  }
  const base = median(samples[0].map((s) => s.rps));
  const rows = configs.map(([name, env], i) => {
    const m = (k: 'rps' | 'p50' | 'p99' | 'batch' | 'c1p50') => median(samples[i].map((s) => s[k]));
    return { name, env, rps: round(m('rps')), relative: round(m('rps') / base, 2), p50: round(m('p50')), p99: round(m('p99')), meanBatch: round(m('batch'), 2), c1p50: round(m('c1p50')), samples: samples[i] };
  });
  results.configurations = { clients, rows, load: await loadAverage() };
  table(`Server configurations at ${clients} clients (median of ${REPEATS} × ${STEP_S} s, order rotated per round)`,
    ['configuration', 'req/s', 'vs default', 'p50 ms', 'p99 ms', 'mean batch', 'p50 ms at 1 client'],
    rows.map((r) => [r.name, r.rps, r.relative, r.p50, r.p99, r.meanBatch, r.c1p50]));
  console.log(`\nload avg ${await loadAverage()}`);
}

// ---------------------------------------------------------------- main

async function main() {
  const info = machine();
  results.machine = info;
  results.started = new Date().toISOString();
  results.loadAtStart = await loadAverage();
  console.log(`# klassify bench${QUICK ? ' (--quick)' : ''}\n`);
  console.log(`${info.cpu}, ${info.nproc} CPUs (nproc), ${info.memGiB} GiB; Node ${info.node}, onnxruntime-node ${info.onnxruntime}, sharp ${info.sharp}, hey ${info.hey}`);
  console.log(`load average at start: ${results.loadAtStart}`);
  const build = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/build.ts'], { cwd: ROOT, encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`build failed: ${build.stderr}`);
  // The engines section measures the graph the service loads on this CPU.
  for (const precision of PRECISIONS) {
    const config = loadConfig({ ...process.env, KLASSIFY_MODEL_CACHE: path.join(ROOT, '.cache/model'), KLASSIFY_MODEL_PRECISION: precision });
    for (const model of config.models) await saveOptimized((await prepareModel(model, config, { needSource: true })).onnxPath);
  }

  const section = async (name: string, fn: () => Promise<void>) => {
    if (!enabled(name)) return;
    progress(`${name}…`);
    await fn();
  };
  await section('engines', engines);
  await section('decode', decode);
  // int8 vs fp32 vs TF.js on the photo set (bench/int8.ts; downloads it on first use).
  await section('int8', async () => {
    results.int8 = await (await import('./int8.ts')).runInt8(QUICK);
  });
  const http = hasHey();
  if (!http) console.log('\n`hey` is not installed (apt-get install -y hey): skipping the HTTP benchmarks.');
  // The served models side by side (bench/models.ts); without hey, engines and cold start only.
  await section('models', async () => {
    const m = await (await import('./models.ts')).runModels(QUICK, http);
    results.models = m;
    const pct = (v: number | null) => (v === null ? 'not published' : `${v} %`);
    table(`Models side by side (v1 = ${m.rows[0].model}, v2 = ${m.rows[2].model}); load avg ${m.loadAtStart} at start, ${m.loadAtEnd} at end`,
      ['', ...m.rows.map((r) => r.setup)],
      [
        ['ms per image (engine alone, 1 thread, batch 1, median)', ...m.rows.map((r) => r.msPerImage)],
        [`best HTTP req/s, ${m.http?.image ?? '512×512 JPEG'}, 2 workers (clients)`, ...m.rows.map((r) => `${r.bestHttpRps} (${r.bestAt})`)],
        ['server CPU ms per answer (median over every level)', ...m.rows.map((r) => r.cpuMsPerRequest)],
        ['p50 ms at 1 client', ...m.rows.map((r) => r.c1p50Ms)],
        ['one-core pod req/s (scripts/pod-capacity.sh, best level)', ...m.rows.map((r) => r.podRps)],
        ['cold start: spawn → ready / → first answer, ms', ...m.rows.map((r) => `${r.coldReadyMs} / ${r.coldFirstMs}`)],
        ['memory MB (PSS, server + decoders), 2 workers: idle / max under load', ...m.rows.map((r) => `${r.idleRssMb} / ${r.rssUnderLoadMb}`)],
        ['memory MB (PSS), one-core pod: max under load', ...m.rows.map((r) => r.podRssMaxMb)],
        ['ImageNet top-1, published', ...m.rows.map((r) => pct(r.publishedTop1))],
      ]);
    if (m.servingSeveral) {
      table('One pod (1 worker, MALLOC_ARENA_MAX=2) serving one model or both: memory MB (PSS, server + decoders) idle and with 2 clients on every served model; spawn → ready',
        ['served', 'memory idle, MB', 'memory max under load, MB', 'spawn → ready, ms'], Object.entries(m.servingSeveral).map(([k, v]) => [k, v.idleRssMb, v.rssUnderLoadMb, v.readyMs]));
    }
    console.log(`\ndecision: v2 int8 ${m.decision.v2AtLeastAsAccurate ? 'is' : 'is not'} at least as accurate as v1 by the published figures; ` +
      `its best HTTP throughput is ${m.decision.httpSpeedupVsV1Fp32}× v1 fp32's (rule: ≥ 1.3×; by server CPU per answer ${m.decision.cpuSpeedupVsV1Fp32}×) → ` +
      `${m.decision.v2Default ? 'v2 int8 is the default' : 'v1 stays the default'}`);
  });
  await section('cold', coldStart);
  if (http) {
    await section('side', sideBySide);
    await section('throughput', throughput);
    await section('saturation', saturation);
    await section('configs', configurations);
    await section('v2', async () => {
      const v2 = await (await import('./v2.ts')).runV2(QUICK);
      results.v2 = v2;
      table(
        `Open Inference Protocol over /classify, same photo (${v2.image.bytes} B JPEG), medians`,
        ['clients', '/classify rps · p50', 'V2 JSON rps · p50', 'V2 binary rps · p50', 'JSON/classify p50', 'binary/classify p50'],
        v2.rows.map((r: Record<string, any>) => [
          r.concurrency,
          `${r['/classify'].rps} · ${r['/classify'].p50} ms`,
          `${r['V2 JSON'].rps} · ${r['V2 JSON'].p50} ms`,
          `${r['V2 binary'].rps} · ${r['V2 binary'].p50} ms`,
          r.jsonOverClassifyP50,
          r.binaryOverClassifyP50,
        ]),
      );
      table('V2 binary, one request of N images', ['N', 'clients', 'p50 per request', 'p50 per image', 'images/s'], v2.batchRows.map((r) => [r.n, r.concurrency, `${r.p50} ms`, `${r.p50PerImage} ms`, r.imagesPerSecond]));
    });
  }

  results.loadAtEnd = await loadAverage();
  results.finished = new Date().toISOString();
  const dir = path.join(ROOT, 'bench/results');
  await mkdir(dir, { recursive: true });
  // --tag=NAME keeps a run from overwriting an earlier one of the same sections that day.
  const { tag } = args;
  const file = path.join(dir, `${results.started!.toString().slice(0, 10)}-${info.host}${QUICK ? '-quick' : ''}${ONLY ? `-${ONLY.join('+')}` : ''}${tag ? `-${tag}` : ''}.json`);
  await writeFile(file, JSON.stringify(results, null, 1) + '\n');
  console.log(`\nload average at end: ${results.loadAtEnd}\nraw results: ${path.relative(ROOT, file)}`);
}

await main();
