// `npm run bench -- --only=models`: the served models side by side, in one run on one machine,
// every measurement interleaved (the configurations rotate within each round) so that load
// from other processes meets them alike. Configurations: MobileNet v1 in fp32 and in our int8
// quantisation, and MobileNet v2 in Google's int8. For each:
//   - ms per image: the engine alone, 1 thread, batch 1, the six fixture photos in turn;
//   - HTTP: the built server (2 workers) under hey with the 512×512 JPEG at several client
//     counts: the best req/s, p50 at 1 client, RSS idle and the largest under load;
//   - one-core pod: scripts/pod-capacity.sh (the pod's settings, the server on one core);
//   - cold start: spawn → readiness, and → the first answer;
//   - ImageNet top-1 as published.
// Then what serving several models costs: RSS of a pod (1 worker) that serves one model or
// both, idle and with load on every served model at once.
// The default rule: v2 int8 becomes the default if its published top-1 is at least v1's and
// its best HTTP throughput at least 1.3× v1 fp32's.
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { MODEL_NAMES } from '../contracts/models.ts';
import { loadConfig } from '../functions/classify/src/config.ts';
import { createEngine } from '../functions/classify/src/engines/create.ts';
import type { Engine } from '../functions/classify/src/engines/engine.ts';
import { optimizedPathFor } from '../functions/classify/src/engines/onnx-cache.ts';
import { CATALOG } from '../functions/classify/src/model/catalog.ts';
import { prepareModel } from '../functions/classify/src/model/prepare.ts';
import { preprocess } from '../functions/classify/src/preprocess.ts';
import { FIXTURE_NAMES, ROOT, fixture } from '../test/support.ts';
import { baseEnv, freePort, hey, processCpuMs, rssMb, sampler, startServer } from './http.ts';
import { loadImagePath, SQUARE_IMAGE } from './load-image.ts';
import { progress } from './cli.ts';
import { loadAverage, median, rotated, round } from './stats.ts';

const [V1, V2] = MODEL_NAMES;

interface Setup {
  name: string;
  model: (typeof MODEL_NAMES)[number];
  precision: 'fp32' | 'int8';
  /** The server's environment for it. */
  env: Record<string, string>;
}

export const SETUPS: readonly Setup[] = [
  { name: 'v1 fp32', model: V1, precision: 'fp32', env: { KLASSIFY_MODELS: V1, KLASSIFY_MODEL_PRECISION: 'fp32' } },
  { name: 'v1 int8', model: V1, precision: 'int8', env: { KLASSIFY_MODELS: V1, KLASSIFY_MODEL_PRECISION: 'int8' } },
  { name: 'v2 int8', model: V2, precision: 'int8', env: { KLASSIFY_MODELS: V2 } },
];

/** Each round visits every setup once, starting one later each time. */
function* rotations<T>(items: readonly T[], rounds: number): Generator<[number, T[]]> {
  for (let r = 0; r < rounds; r++) yield [r, rotated(items, r)];
}

async function engineMs(quick: boolean): Promise<Record<string, number>> {
  const images = await Promise.all(FIXTURE_NAMES.map(async (f) => (await preprocess(await fixture(f), { resize: 'stretch', maxPixels: 5e7 })).rgb));
  const engines: Array<[Setup, Engine]> = [];
  for (const s of SETUPS) {
    const config = loadConfig({ ...baseEnv(), ...s.env });
    const files = await prepareModel(s.model, config);
    const engine = await createEngine({ ...files, optimizedPath: optimizedPathFor(files.onnxPath), engine: 'onnx', provider: 'cpu', providerFallback: false, intraOpThreads: 1 });
    engines.push([s, engine]);
  }
  const ms = new Map<string, number[]>(SETUPS.map((s) => [s.name, []]));
  try {
    for (const [, e] of engines) for (let i = 0; i < 5; i++) await e.run(images[i % images.length], 1);
    for (const [r, order] of rotations(engines, quick ? 10 : 40)) {
      for (const [s, e] of order) {
        const t0 = performance.now();
        await e.run(images[r % images.length], 1);
        ms.get(s.name)!.push(performance.now() - t0);
      }
    }
  } finally {
    for (const [, e] of engines) await e.dispose();
  }
  return Object.fromEntries([...ms].map(([k, v]) => [k, round(median(v), 2)]));
}

interface HttpSample {
  c: number;
  rps: number;
  /** CPU time of the server and its decoder processes (all threads) per answered request, ms. */
  cpuMs: number;
  p50: number;
  p99: number;
  rssMaxMb: number;
}

/** The built server per setup, all up at once (an idle one costs no CPU); hey per level, setups rotating. */
async function http(quick: boolean, seconds: number, rounds: number) {
  const image = await loadImagePath(SQUARE_IMAGE);
  const levels = quick ? [1, 8] : [1, 4, 8, 16];
  const servers: Array<Awaited<ReturnType<typeof startServer>>> = [];
  const samples = new Map<string, HttpSample[]>(SETUPS.map((s) => [s.name, []]));
  const loads: string[] = [];
  let idle: Record<string, number> = {};
  try {
    for (const s of SETUPS) servers.push(await startServer(s.env));
    idle = Object.fromEntries(SETUPS.map((s, i) => [s.name, round(rssMb(servers[i].pid))]));
    for (const server of servers) await hey(server.url, image, 2, 1);
    const pairs = SETUPS.map((s, i) => [s, servers[i]] as const);
    let turn = 0;
    for (let r = 0; r < rounds; r++) {
      for (const c of levels) {
        const order = rotated(pairs, turn);
        turn++;
        for (const [s, server] of order) {
          progress(`models, HTTP round ${r + 1}/${rounds}: ${s.name}, ${c} client(s)`);
          const rss = sampler(() => rssMb(server.pid), 200);
          const cpu0 = processCpuMs(server.pid);
          const h = await hey(server.url, image, c, seconds);
          const cpu = processCpuMs(server.pid) - cpu0;
          const rssSeen = await rss.stop();
          const ok = h.statusCodes['200'] ?? 0;
          samples.get(s.name)!.push({ c, rps: ok / h.seconds, cpuMs: cpu / Math.max(1, ok), p50: h.latencyMs.p50 ?? NaN, p99: h.latencyMs.p99 ?? NaN, rssMaxMb: Math.max(...rssSeen) });
        }
        loads.push(await loadAverage());
      }
    }
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
  const summary = Object.fromEntries(SETUPS.map((s) => {
    const mine = samples.get(s.name)!;
    const at = (c: number) => mine.filter((x) => x.c === c);
    const rpsByLevel = levels.map((c) => [c, median(at(c).map((x) => x.rps))] as const);
    const [bestC, bestRps] = rpsByLevel.reduce((a, b) => (b[1] > a[1] ? b : a));
    return [s.name, {
      bestRps: round(bestRps), bestAt: bestC, c1p50: round(median(at(1).map((x) => x.p50))),
      // What the neighbours' load barely changes, unlike req/s: the server's own CPU per answer.
      cpuMsPerRequest: round(median(mine.map((x) => x.cpuMs)), 2),
      rpsByLevel: Object.fromEntries(rpsByLevel.map(([c, v]) => [c, round(v)])),
      idleRssMb: idle[s.name], rssUnderLoadMb: round(Math.max(...mine.map((x) => x.rssMaxMb))),
    }];
  }));
  return { image: path.basename(image), levels, seconds, rounds, summary, samples: Object.fromEntries(samples), loads };
}

/**
 * scripts/pod-capacity.sh per setup, rotating (its default CPU quota of 1, the pod's limit);
 * the best req/s of each run and its RSS.
 */
async function pod(quick: boolean, seconds: number, rounds: number) {
  const levels = quick ? '1 2' : '1 2 4';
  const runs = new Map<string, Array<{ rps: number; rssMaxMb: number; rssIdleMb: number; load: string; confinement: string }>>(SETUPS.map((s) => [s.name, []]));
  for (const [r, order] of rotations(SETUPS, rounds)) {
    for (const s of order) {
      progress(`models, one-core pod round ${r + 1}/${rounds}: ${s.name}`);
      const out = path.join(ROOT, 'bench/results', `models-pod-${s.name.replace(' ', '-')}-${r + 1}`);
      // A port of its own: the script's default one may be another run's (a shared machine).
      const port = String(await freePort());
      await run('bash', ['scripts/pod-capacity.sh', '--port', port, '--levels', levels, '--duration', `${seconds}s`, '--pause', '1', '--out', out], { ...baseEnv(), ...s.env });
      const results = JSON.parse(await readFile(path.join(out, 'results.json'), 'utf8')) as { steps: Array<{ okRps: number }> };
      const rssCsv = (await readFile(path.join(out, 'rss.csv'), 'utf8')).trim().split('\n').slice(1).map((l) => Number(l.split(',')[1]));
      const podJson = JSON.parse(await readFile(path.join(out, 'pod.json'), 'utf8')) as { rssIdleMb: number; loadavgAfter: string; confinement: string };
      runs.get(s.name)!.push({ rps: Math.max(...results.steps.map((x) => x.okRps)), rssMaxMb: Math.max(...rssCsv), rssIdleMb: podJson.rssIdleMb, load: podJson.loadavgAfter, confinement: podJson.confinement });
    }
  }
  return {
    levels,
    seconds,
    summary: Object.fromEntries([...runs].map(([name, v]) => [name, { rps: round(median(v.map((x) => x.rps))), rssMaxMb: round(Math.max(...v.map((x) => x.rssMaxMb))), rssIdleMb: round(median(v.map((x) => x.rssIdleMb))) }])),
    runs: Object.fromEntries(runs),
  };
}

async function coldStart(quick: boolean) {
  const image = await readFile(await loadImagePath(SQUARE_IMAGE));
  const samples = new Map<string, Array<{ readyMs: number; firstMs: number }>>(SETUPS.map((s) => [s.name, []]));
  for (const [, order] of rotations(SETUPS, quick ? 2 : 5)) {
    for (const s of order) {
      const t0 = performance.now();
      const server = await startServer(s.env);
      try {
        const res = await fetch(`${server.url}/classify`, { method: 'POST', body: image, headers: { 'content-type': 'image/jpeg' } });
        await res.arrayBuffer();
        samples.get(s.name)!.push({ readyMs: server.readyMs, firstMs: performance.now() - t0 });
      } finally {
        await server.stop();
      }
    }
  }
  return Object.fromEntries([...samples].map(([k, v]) => [k, { readyMs: round(median(v.map((x) => x.readyMs))), firstResponseMs: round(median(v.map((x) => x.firstMs))) }]));
}

/**
 * RSS of one pod (1 worker, MALLOC_ARENA_MAX=2, as the manifest runs it) serving one model or
 * both: idle, and with 2 clients on every served model at once, so that every session in the
 * worker is busy; and its spawn → ready time, since one worker loads every model it serves.
 */
async function servingSeveral(seconds: number, rounds: number) {
  const image = await loadImagePath(SQUARE_IMAGE);
  const choices = [
    { name: `${V1} (fp32) only`, env: { KLASSIFY_MODELS: V1 }, models: [V1] },
    { name: `${V2} only`, env: { KLASSIFY_MODELS: V2 }, models: [V2] },
    { name: 'both', env: { KLASSIFY_MODELS: `${V1},${V2}` }, models: [V1, V2] },
  ];
  const seen = new Map<string, Array<{ idle: number; loaded: number; readyMs: number }>>(choices.map((c) => [c.name, []]));
  for (const [, order] of rotations(choices, rounds)) {
    for (const choice of order) {
      progress(`models, RSS serving ${choice.name}`);
      const server = await startServer({ ...choice.env, KLASSIFY_WORKERS: '1', MALLOC_ARENA_MAX: '2' });
      try {
        const idle = rssMb(server.pid);
        const rss = sampler(() => rssMb(server.pid), 200);
        await Promise.all(choice.models.map((m) => hey(server.url, image, 2, seconds, { path: `/classify?model=${m}` })));
        seen.get(choice.name)!.push({ idle, loaded: Math.max(...(await rss.stop())), readyMs: server.readyMs });
      } finally {
        await server.stop();
      }
    }
  }
  return Object.fromEntries([...seen].map(([k, v]) => [k, {
    idleRssMb: round(median(v.map((x) => x.idle))),
    rssUnderLoadMb: round(Math.max(...v.map((x) => x.loaded))),
    readyMs: round(median(v.map((x) => x.readyMs))),
  }]));
}

function run(cmd: string, args: string[], env: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}: ${stderr}`))));
  });
}

export async function runModels(quick: boolean, http_: boolean) {
  const seconds = quick ? 2 : 5;
  const rounds = quick ? 1 : 3;
  const loadAtStart = await loadAverage();
  progress('models: engines');
  const engines = await engineMs(quick);
  progress('models: cold start');
  const cold = await coldStart(quick);
  const httpResults = http_ ? await http(quick, seconds, rounds) : undefined;
  const podResults = http_ ? await pod(quick, seconds, quick ? 1 : 2) : undefined;
  const several = http_ ? await servingSeveral(seconds * 2, quick ? 1 : 2) : undefined;
  const loadAtEnd = await loadAverage();
  const published = (s: Setup) => CATALOG[s.model].publishedTop1;
  const rows = SETUPS.map((s) => ({
    setup: s.name,
    model: s.model,
    msPerImage: engines[s.name],
    bestHttpRps: httpResults?.summary[s.name].bestRps ?? NaN,
    bestAt: httpResults?.summary[s.name].bestAt ?? NaN,
    cpuMsPerRequest: httpResults?.summary[s.name].cpuMsPerRequest ?? NaN,
    c1p50Ms: httpResults?.summary[s.name].c1p50 ?? NaN,
    podRps: podResults?.summary[s.name].rps ?? NaN,
    coldReadyMs: cold[s.name].readyMs,
    coldFirstMs: cold[s.name].firstResponseMs,
    idleRssMb: httpResults?.summary[s.name].idleRssMb ?? NaN,
    rssUnderLoadMb: httpResults?.summary[s.name].rssUnderLoadMb ?? NaN,
    podRssMaxMb: podResults?.summary[s.name].rssMaxMb ?? NaN,
    // Our own int8 quantisation of v1 has no published figure: it agrees with fp32's top-1 on 94 % of photos.
    publishedTop1: s.name === 'v1 int8' ? null : published(s),
  }));
  const [v1fp32, , v2int8] = rows;
  const speedup = round(v2int8.bestHttpRps / v1fp32.bestHttpRps, 2);
  const accurate = (v2int8.publishedTop1 ?? 0) >= (v1fp32.publishedTop1 ?? Infinity);
  const decision = {
    v2AtLeastAsAccurate: accurate,
    httpSpeedupVsV1Fp32: speedup,
    /** The same ratio from CPU per answer: what the two cores would give the server alone. */
    cpuSpeedupVsV1Fp32: round(v1fp32.cpuMsPerRequest / v2int8.cpuMsPerRequest, 2),
    v2Default: accurate && speedup >= 1.3,
  };
  return { loadAtStart, loadAtEnd, rows, decision, http: httpResults, pod: podResults, servingSeveral: several, cold };
}
