// What decoder processes cost, against decoding in the server process: the built function
// (dist/classify/main.js; run `npm run build` first) with KLASSIFY_DECODERS = 0 (in
// process), 1, 2 and 3, and optionally another build of it (`--baseline`), side by side,
// configurations interleaved round by round (each round starts one later).
//
//   node --import tsx bench/decoders.ts [--rounds=3] [--seconds=8] [--only=0,2,baseline:2]
//        [--baseline=<a copy of dist/classify from another build>] [--setup=pod|server]
//
// Setups:
//   - pod (the default): the server and its decoders pinned to one CPU (taskset), as the
//     pod's CPU limit of 1, the load on the other; one inference worker and a queue of 4,
//     the image's allocator and thread-pool settings;
//   - server: the server's defaults (two inference workers, both CPUs) serving v1 fp32, as
//     `npm run bench -- --only=models` runs it.
//
// Per configuration (medians over the rounds):
//   - spawn → ready: from spawning the server to its readiness answering 200; and the first
//     answer after that (a 512×512 JPEG), when the decoders may still be cold;
//   - c=1: one request after another, p50 ms, for the 451×300 PNG fixture, the same photo as
//     a JPEG, the 512×512 JPEG of the models benchmark and a 12 MP JPEG;
//   - throughput with hey: the best requests/s over the client counts (2 for the pod, its
//     containerConcurrency; 2, 4 and 8 for the server) with the 512×512 JPEG, and at 2 with
//     the 12 MP JPEG, each with the CPU time the server and its decoders spent per request
//     (of the process tree, which another tenant's load does not inflate as it does the
//     wall clock);
//   - memory of the server and its decoders: PSS (shared libraries split among the
//     processes sharing them), idle after warm-up and the highest sampled under load;
//   - head of line: the slowest of 10 photos sent one after another while a 48 MP
//     progressive JPEG (100 scans, ~1 s of decoding) is being decoded.
import { spawnSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { MODEL_NAMES } from '../contracts/models.ts';
import { jpegScanBomb } from '../functions/classify/test/bomb-images.ts';
import { processTree, treeCpuMs, treeMemory } from '../functions/classify/test/process-tree.ts';
import { fixture, ROOT } from '../test/support.ts';
import { cli, progress } from './cli.ts';
import { hasHey, hey, sampler, startServer, startupMarks, type Server } from './http.ts';
import { loadImagePath, SQUARE_IMAGE } from './load-image.ts';
import { loadAverage, median, percentile, rotated, round } from './stats.ts';

const { values: args } = cli(
  {
    options: {
      rounds: { type: 'string', default: '3' },
      seconds: { type: 'string', default: '8' },
      only: { type: 'string', default: '0,1,2,3' },
      baseline: { type: 'string' },
      setup: { type: 'string', default: 'pod' },
    },
  },
  'node --import tsx bench/decoders.ts [--rounds=3] [--seconds=8] [--only=0,2,baseline:2] [--baseline=<dist/classify of another build>] [--setup=pod|server]',
);
const ROUNDS = Number(args.rounds);
const SECONDS = Number(args.seconds);
const SETUP = args.setup === 'server' ? 'server' : 'pod';
const MB = 1e6;

/** A configuration: a decoder count, on this build or on the baseline's (`baseline:N`). */
interface Config {
  label: string;
  decoders: number;
  entry?: string;
}

const CONFIGS: Config[] = args.only.split(',').map((item) => {
  const [, baseline, n] = /^(baseline:)?(\d+)$/.exec(item.trim()) ?? [];
  if (n === undefined) throw new Error(`--only: "${item}" is neither a decoder count nor baseline:<count>`);
  if (!baseline) return { label: n === '0' ? '0 (in process)' : n, decoders: Number(n) };
  if (!args.baseline) throw new Error('--only names baseline:<count>, so --baseline=<dir> must name the other build');
  return { label: `${n}, baseline build`, decoders: Number(n), entry: path.resolve(args.baseline, 'main.js') };
});

const SETUPS = {
  /** The image's environment (Dockerfile) and the pod's sizing (Knative manifest). */
  pod: {
    env: { KLASSIFY_WORKERS: '1', KLASSIFY_INTRA_OP_THREADS: '1', KLASSIFY_QUEUE_SIZE: '4', UV_THREADPOOL_SIZE: '6', MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '4194304' },
    levels: [2],
    pinned: true,
  },
  /** The server's defaults, v1 fp32 alone, as the models benchmark runs it. */
  server: { env: { KLASSIFY_MODELS: MODEL_NAMES[0], KLASSIFY_MODEL_PRECISION: 'fp32' }, levels: [2, 4, 8], pinned: false },
} as const;

interface Sample {
  readyMs: number;
  /** The server's own start-up marks: process start → ready (ms). */
  ownReadyMs: number;
  firstMs: number;
  c1Png: number;
  c1SmallJpeg: number;
  c1Square: number;
  c1Jpeg: number;
  rpsSquare: number;
  /** The client count of the best req/s. */
  bestClients: number;
  cpuSquare: number;
  rpsJpeg: number;
  cpuJpeg: number;
  idlePss: number;
  peakPss: number;
  holMax: number;
  holMedian: number;
  processes: number;
}

type Bodies = Record<'png' | 'smallJpeg' | 'square' | 'jpeg' | 'slow', Uint8Array<ArrayBuffer>>;

/** Pins every thread of the server and of its decoders to one CPU; a decoder started later inherits it. */
function pin(pid: number, cpu: number): void {
  for (const p of processTree(pid)) spawnSync('taskset', ['-a', '-p', '-c', String(cpu), String(p)], { stdio: 'ignore' });
}

async function post(url: string, body: Uint8Array<ArrayBuffer>): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(`${url}/classify`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`status ${res.status}`);
  return performance.now() - t0;
}

async function sequential(url: string, body: Uint8Array<ArrayBuffer>, n: number): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) ms.push(await post(url, body));
  return ms;
}

async function measure(config: Config, files: { square: string; jpeg: string }, bodies: Bodies, cpu: number): Promise<Sample> {
  const setup = SETUPS[SETUP];
  const server: Server & { readyMs: number; log: string } = await startServer({ ...setup.env, KLASSIFY_DECODERS: String(config.decoders) }, config.entry);
  try {
    const firstMs = await post(server.url, bodies.square);
    if (setup.pinned) pin(server.pid, cpu);
    await sequential(server.url, bodies.png, 20);
    await sequential(server.url, bodies.jpeg, 5);
    const idle = treeMemory(server.pid);
    const c1Png = median(await sequential(server.url, bodies.png, 40));
    const c1SmallJpeg = median(await sequential(server.url, bodies.smallJpeg, 40));
    const c1Square = median(await sequential(server.url, bodies.square, 40));
    const c1Jpeg = median(await sequential(server.url, bodies.jpeg, 20));
    const memory = sampler(() => treeMemory(server.pid), 50);
    const load = async (file: string, clients: number) => {
      const cpu0 = treeCpuMs(server.pid);
      const h = await hey(server.url, file, clients, SECONDS);
      if (Object.keys(h.statusCodes).some((code) => code !== '200')) throw new Error(`non-200 answers: ${JSON.stringify(h.statusCodes)}`);
      return { clients, rps: h.rps, cpu: (treeCpuMs(server.pid) - cpu0) / h.requests };
    };
    const square = [];
    for (const clients of setup.levels) square.push(await load(files.square, clients));
    const best = square.reduce((a, b) => (b.rps > a.rps ? b : a));
    const jpeg = await load(files.jpeg, 2);
    const samples = await memory.stop();
    const slow = post(server.url, bodies.slow);
    await new Promise((r) => setTimeout(r, 50)); // the slow decode has started
    const hol = await sequential(server.url, bodies.png, 10);
    await slow;
    const marks = startupMarks(server.log);
    return {
      readyMs: server.readyMs,
      ownReadyMs: marks.ready ?? NaN,
      firstMs,
      c1Png,
      c1SmallJpeg,
      c1Square,
      c1Jpeg,
      rpsSquare: best.rps,
      bestClients: best.clients,
      cpuSquare: best.cpu,
      rpsJpeg: jpeg.rps,
      cpuJpeg: jpeg.cpu,
      idlePss: idle.pss,
      peakPss: Math.max(...samples.map((s) => s.pss)),
      holMax: Math.max(...hol),
      holMedian: median(hol),
      processes: idle.processes,
    };
  } finally {
    await server.stop();
  }
}

async function main() {
  if (!hasHey()) throw new Error('bench/decoders.ts needs hey (apt-get install -y hey)');
  const png = await fixture('chelsea.png');
  const smallJpeg = new Uint8Array(await sharp(png).jpeg({ quality: 85 }).toBuffer());
  const jpeg = new Uint8Array(await sharp(png).resize(4000, 3000, { fit: 'fill' }).jpeg({ quality: 90 }).toBuffer());
  const slow = new Uint8Array(await jpegScanBomb(100, 8000, 6000));
  const dir = path.join(ROOT, 'bench/results');
  await mkdir(dir, { recursive: true });
  const files = { square: await loadImagePath(SQUARE_IMAGE), jpeg: path.join(dir, 'decoders-12mp.jpg') };
  await writeFile(files.jpeg, jpeg);
  const square = new Uint8Array(await readFile(files.square));
  const cpu = os.availableParallelism() - 1;
  const loadBefore = await loadAverage();
  progress(`load ${loadBefore}; setup ${SETUP}; configurations ${CONFIGS.map((c) => c.label).join('; ')}; ${ROUNDS} rounds`);
  const samples = new Map<Config, Sample[]>(CONFIGS.map((c) => [c, []]));
  const loads: string[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    for (const config of rotated(CONFIGS, r)) {
      progress(`round ${r + 1}: KLASSIFY_DECODERS=${config.label}`);
      samples.get(config)!.push(await measure(config, files, { png, smallJpeg, square, jpeg, slow }, cpu));
    }
    loads.push(await loadAverage());
  }
  const loadAfter = await loadAverage();
  const m = (c: Config, key: keyof Sample) => median(samples.get(c)!.map((s) => s[key]));
  const base = CONFIGS[0];
  const where = SETUP === 'pod' ? `server pinned to CPU ${cpu}, 1 worker` : 'the server\'s defaults (2 workers), v1 fp32';
  console.log(`\n${new Date().toISOString()} · ${os.cpus()[0]?.model} · ${os.availableParallelism()} CPUs (${where}) · load before ${loadBefore}, after each round ${loads.join(' | ')} · ${ROUNDS} rounds, medians\n`);
  console.log('| KLASSIFY_DECODERS | spawn → ready (own log) | first answer | c=1 p50: PNG / JPEG 451×300 / 512² JPEG / 12 MP JPEG | best req/s 512² JPEG (clients), CPU ms/req | c=2 12 MP JPEG: req/s, CPU ms/req | PSS idle / peak | photo during a 1 s decode: median / slowest |');
  console.log('|---|--:|--:|--:|--:|--:|--:|--:|');
  for (const c of CONFIGS) {
    const ratio = (key: keyof Sample) => (c === base ? '' : ` (${round(m(c, key) / m(base, key), 2)}×)`);
    const ms = (key: keyof Sample) => `${round(m(c, key))}`;
    console.log(
      `| ${c.label} | ${round(m(c, 'readyMs'), 0)} ms (${round(m(c, 'ownReadyMs'), 0)})${ratio('readyMs')} | ${round(m(c, 'firstMs'))} ms | ${ms('c1Png')} / ${ms('c1SmallJpeg')} / ${ms('c1Square')}${ratio('c1Square')} / ${ms('c1Jpeg')} ms | ${ms('rpsSquare')} (${m(c, 'bestClients')}), ${ms('cpuSquare')}${ratio('cpuSquare')} | ${ms('rpsJpeg')}, ${ms('cpuJpeg')}${ratio('cpuJpeg')} | ${round(m(c, 'idlePss') / MB, 0)} / ${round(m(c, 'peakPss') / MB, 0)} MB | ${ms('holMedian')} / ${ms('holMax')} ms |`,
    );
  }
  const spread = (c: Config, key: keyof Sample) => `${round(percentile(samples.get(c)!.map((s) => s[key]), 0))}–${round(percentile(samples.get(c)!.map((s) => s[key]), 100))}`;
  console.log(`\nRange over rounds, c=1 512² JPEG p50 (ms): ${CONFIGS.map((c) => `${c.label}: ${spread(c, 'c1Square')}`).join('; ')}`);
  console.log(`Range over rounds, spawn → ready (ms): ${CONFIGS.map((c) => `${c.label}: ${spread(c, 'readyMs')}`).join('; ')}`);
  const raw = Object.fromEntries(CONFIGS.map((c) => [c.label, samples.get(c)]));
  await writeFile(path.join(dir, `${new Date().toISOString().slice(0, 19).replace(/:/g, '')}-decoders-${SETUP}.json`), JSON.stringify({ setup: SETUP, loadBefore, loads, rounds: ROUNDS, seconds: SECONDS, samples: raw }, null, 1));
}

await main();
