// What decoder processes cost, against decoding in the server process: the built function
// (dist/classify/main.js; run `npm run build` first) with KLASSIFY_DECODERS = 0 (in
// process), 1, 2 and 3, side by side, configurations interleaved round by round. The
// server and its decoders are pinned to one CPU (taskset), as the pod's CPU limit of 1; the
// load runs on the other. One inference worker and a queue of 4, as in the pod.
//
//   node --import tsx bench/decoders.ts [--rounds=3] [--seconds=8] [--only=0,2]
//
// Per configuration (medians over the rounds):
//   - c=1: one request after another, p50 ms, for the 451×300 PNG fixture and a 12 MP JPEG;
//   - throughput at 2 in flight (the pod's containerConcurrency), requests/s, with hey, and
//     the CPU time the server and its decoders spent per request meanwhile (which another
//     tenant's load on the shared CPU does not inflate as it does the wall clock);
//   - memory of the server and its decoders: RSS and PSS (shared libraries split among
//     the processes sharing them), idle after warm-up and the highest sampled under load;
//   - head of line: the slowest of 10 photos sent one after another while a 48 MP
//     progressive JPEG (100 scans, ~1 s of decoding) is being decoded.
import { spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { jpegScanBomb } from '../functions/classify/test/bomb-images.ts';
import { processTree, treeCpuMs, treeMemory } from '../functions/classify/test/process-tree.ts';
import { fixture, ROOT } from '../test/support.ts';
import { hasHey, hey, sampler, startServer, type Server } from './http.ts';
import { loadAverage, median, percentile, round } from './stats.ts';

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const ROUNDS = Number(arg('rounds') ?? 3);
const SECONDS = Number(arg('seconds') ?? 8);
const CONFIGS = (arg('only') ?? '0,1,2,3').split(',').map(Number);
const MB = 1e6;
const progress = (msg: string) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

/** The image's environment (Dockerfile) and the pod's sizing (Knative manifest). */
const POD_ENV = { KLASSIFY_WORKERS: '1', KLASSIFY_INTRA_OP_THREADS: '1', KLASSIFY_QUEUE_SIZE: '4', UV_THREADPOOL_SIZE: '6', MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '4194304' };

interface Sample {
  c1Png: number;
  c1Jpeg: number;
  rpsPng: number;
  rpsJpeg: number;
  cpuPng: number;
  cpuJpeg: number;
  idleRss: number;
  idlePss: number;
  peakRss: number;
  peakPss: number;
  holMax: number;
  holMedian: number;
  processes: number;
}

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

async function measure(decoders: number, files: { png: string; jpeg: string }, bodies: Record<'png' | 'jpeg' | 'slow', Uint8Array<ArrayBuffer>>, cpu: number): Promise<Sample> {
  const server: Server = await startServer({ ...POD_ENV, KLASSIFY_DECODERS: String(decoders) });
  try {
    pin(server.pid, cpu);
    await sequential(server.url, bodies.png, 20);
    await sequential(server.url, bodies.jpeg, 5);
    const idle = treeMemory(server.pid);
    const c1Png = median(await sequential(server.url, bodies.png, 40));
    const c1Jpeg = median(await sequential(server.url, bodies.jpeg, 20));
    const memory = sampler(() => treeMemory(server.pid), 50);
    const load = async (file: string) => {
      const cpu0 = treeCpuMs(server.pid);
      const h = await hey(server.url, file, 2, SECONDS);
      if (Object.keys(h.statusCodes).some((code) => code !== '200')) throw new Error(`non-200 answers: ${JSON.stringify(h.statusCodes)}`);
      return { rps: h.rps, cpu: (treeCpuMs(server.pid) - cpu0) / h.requests };
    };
    const png = await load(files.png);
    const jpeg = await load(files.jpeg);
    const samples = await memory.stop();
    const slow = post(server.url, bodies.slow);
    await new Promise((r) => setTimeout(r, 50)); // the slow decode has started
    const hol = await sequential(server.url, bodies.png, 10);
    await slow;
    return {
      c1Png,
      c1Jpeg,
      rpsPng: png.rps,
      rpsJpeg: jpeg.rps,
      cpuPng: png.cpu,
      cpuJpeg: jpeg.cpu,
      idleRss: idle.rss,
      idlePss: idle.pss,
      peakRss: Math.max(...samples.map((s) => s.rss)),
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
  const jpeg = new Uint8Array(await sharp(png).resize(4000, 3000, { fit: 'fill' }).jpeg({ quality: 90 }).toBuffer());
  const slow = new Uint8Array(await jpegScanBomb(100, 8000, 6000));
  const dir = path.join(ROOT, 'bench/results');
  await mkdir(dir, { recursive: true });
  const files = { png: path.join(dir, 'decoders-photo.png'), jpeg: path.join(dir, 'decoders-12mp.jpg') };
  await writeFile(files.png, png);
  await writeFile(files.jpeg, jpeg);
  const cpu = os.availableParallelism() - 1;
  const loadBefore = await loadAverage();
  progress(`load ${loadBefore}; configurations ${CONFIGS.join(', ')}; ${ROUNDS} rounds`);
  const samples = new Map<number, Sample[]>(CONFIGS.map((c) => [c, []]));
  for (let round = 0; round < ROUNDS; round++) {
    // Rotate the order each round, so that no configuration always runs first.
    const order = CONFIGS.map((_, i) => CONFIGS[(i + round) % CONFIGS.length]);
    for (const decoders of order) {
      progress(`round ${round + 1}: KLASSIFY_DECODERS=${decoders}`);
      samples.get(decoders)!.push(await measure(decoders, files, { png, jpeg, slow }, cpu));
    }
  }
  const loadAfter = await loadAverage();
  const m = (d: number, key: keyof Sample) => median(samples.get(d)!.map((s) => s[key]));
  const base = CONFIGS[0];
  console.log(`\n${new Date().toISOString()} · ${os.cpus()[0]?.model} · ${os.availableParallelism()} CPUs (server pinned to CPU ${cpu}) · load before ${loadBefore}, after ${loadAfter} · ${ROUNDS} rounds, medians\n`);
  console.log('| KLASSIFY_DECODERS | processes | c=1 PNG p50 | c=1 12 MP JPEG p50 | c=2 PNG: req/s, CPU ms/req | c=2 JPEG: req/s, CPU ms/req | idle RSS / PSS | peak RSS / PSS under load | photo during a 1 s decode: median / slowest |');
  console.log('|---|--:|--:|--:|--:|--:|--:|--:|--:|');
  for (const d of CONFIGS) {
    const ratio = (key: keyof Sample) => (d === base ? '' : ` (${round(m(d, key) / m(base, key), 2)}×)`);
    console.log(
      `| ${d === 0 ? '0 (in process)' : d} | ${m(d, 'processes')} | ${round(m(d, 'c1Png'))} ms${ratio('c1Png')} | ${round(m(d, 'c1Jpeg'))} ms${ratio('c1Jpeg')} | ${round(m(d, 'rpsPng'))}, ${round(m(d, 'cpuPng'))}${ratio('cpuPng')} | ${round(m(d, 'rpsJpeg'))}, ${round(m(d, 'cpuJpeg'))}${ratio('cpuJpeg')} | ${round(m(d, 'idleRss') / MB, 0)} / ${round(m(d, 'idlePss') / MB, 0)} MB | ${round(m(d, 'peakRss') / MB, 0)} / ${round(m(d, 'peakPss') / MB, 0)} MB | ${round(m(d, 'holMedian'))} / ${round(m(d, 'holMax'))} ms |`,
    );
  }
  const spread = (d: number, key: keyof Sample) => `${round(percentile(samples.get(d)!.map((s) => s[key]), 0))}–${round(percentile(samples.get(d)!.map((s) => s[key]), 100))}`;
  console.log(`\nRange over rounds, c=1 PNG p50 (ms): ${CONFIGS.map((d) => `${d}: ${spread(d, 'c1Png')}`).join('; ')}`);
  await writeFile(path.join(dir, `${new Date().toISOString().slice(0, 10)}-decoders.json`), JSON.stringify({ loadBefore, loadAfter, rounds: ROUNDS, seconds: SECONDS, samples: Object.fromEntries(samples) }, null, 1));
}

await main();
