// HTTP-side benchmark helpers: start the built function (dist/classify/main.js) as a child
// process with a given environment, drive it with hey, and read its /metrics and RSS.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { treeCpuMs, treeMemory } from '../functions/classify/test/process-tree.ts';
import { parseHey, type HeySummary } from './load-report.ts';
import { ROOT, scrapeMetrics, type MetricSamples } from '../test/support.ts';

export interface Server {
  url: string;
  pid: number;
  child: ChildProcess;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export function baseEnv(): Record<string, string> {
  return {
    ...(process.env as Record<string, string>),
    HOST: '127.0.0.1',
    KLASSIFY_MODEL_CACHE: path.join(ROOT, '.cache/model'),
    KLASSIFY_MODEL_FETCH: 'never',
  };
}

/**
 * Spawns the built server; resolves once readiness is 200 and every worker has joined.
 * Readiness is polled only once the server logs that it listens: polling a closed port
 * makes every attempt throw, and under tsx (source maps on) each thrown error costs the
 * bench process enough CPU to slow the server it is timing on a 2-core machine.
 */
export async function startServer(env: Record<string, string> = {}, entry = path.join(ROOT, 'dist/classify/main.js')): Promise<Server & { readyMs: number; log: string }> {
  const port = await freePort();
  const t0 = performance.now();
  const child = spawn(process.execPath, [entry], {
    env: { ...baseEnv(), ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let log = '';
  const keepLog = (d: Buffer) => {
    if (log.length < 64 * 1024) log += d;
  };
  child.stdout!.on('data', keepLog);
  child.stderr!.on('data', (d) => {
    if (stderr.length < 64 * 1024) stderr += d;
  });
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}: ${stderr}`);
    if (performance.now() - t0 > 30_000) {
      await stop();
      throw new Error(`server not ready after 30 s: ${stderr}`);
    }
    if (/ listening on /.test(log)) {
      try {
        const res = await fetch(`${url}/health/readiness`);
        await res.arrayBuffer();
        const readyMs = performance.now() - t0;
        // Ready means one warm worker; the measurements want the whole pool.
        if (res.status === 200) {
          const workers = async () => ((await (await fetch(`${url}/health/readiness`)).json()) as { workers: { ready: number; total: number } }).workers;
          for (let w = await workers(); w.ready < w.total; w = await workers()) await new Promise((r) => setTimeout(r, 10));
          // The start-up timeline line follows readiness by a tick.
          for (let i = 0; i < 100 && Object.keys(startupMarks(log)).length === 0; i++) await new Promise((r) => setTimeout(r, 5));
          child.stdout!.off('data', keepLog);
          child.stdout!.resume();
          return { url, pid: child.pid!, child, stop, readyMs, log };
        }
      } catch {
        // the connection failed: retry
      }
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The server's own start-up marks (ms since its process started), from its JSON-lines log. */
export function startupMarks(log: string): Record<string, number> {
  const messages = log.split('\n').map((text) => {
    try {
      const entry = JSON.parse(text) as { msg?: unknown };
      return typeof entry?.msg === 'string' ? entry.msg : text;
    } catch {
      return text;
    }
  });
  const line = /^start-up \(ms since process start\): (.*)$/m.exec(messages.join('\n'))?.[1] ?? '';
  return Object.fromEntries([...line.matchAll(/([a-zA-Z ]+?) (\d+)(?:, |$)/g)].map((m) => [m[1].trim(), Number(m[2])]));
}

export function hasHey(): boolean {
  return !spawnSync('hey', ['-n', '0'], { stdio: 'ignore' }).error;
}

export interface HeyRequest {
  path?: string;
  contentType?: string;
  headers?: Record<string, string>;
}

/** Runs hey for `seconds` at `concurrency` without blocking this event loop: POST `body` (a file) to /classify, or as `request` says. */
export function hey(url: string, body: string, concurrency: number, seconds: number, request: HeyRequest = {}): Promise<HeySummary> {
  const { path: route = '/classify', contentType = 'image/jpeg', headers = {} } = request;
  const extra = Object.entries(headers).flatMap(([name, value]) => ['-H', `${name}: ${value}`]);
  return new Promise((resolve, reject) => {
    const child = spawn('hey', ['-z', `${seconds}s`, '-c', String(concurrency), '-m', 'POST', '-T', contentType, ...extra, '-D', body, `${url}${route}`]);
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(parseHey(out)) : reject(new Error(`hey exited with ${code}`))));
  });
}

/** The server's /metrics, parsed (test/metrics.ts). */
export const scrape = (url: string): Promise<MetricSamples> => scrapeMetrics(url);

/** Mean ms per stage between two /metrics scrapes. */
export function stageMeans(before: MetricSamples, after: MetricSamples): Record<string, number> {
  const out: Record<string, number> = {};
  for (const stage of ['decode', 'queue', 'inference', 'total']) {
    const delta = (name: string) => after.value(name, { stage }) - before.value(name, { stage });
    const sum = delta('klassify_stage_seconds_sum');
    const count = delta('klassify_stage_seconds_count');
    out[stage] = count > 0 ? (sum / count) * 1000 : NaN;
  }
  return out;
}

/** Mean images per inference call between two scrapes. */
export function meanBatch(before: MetricSamples, after: MetricSamples): number {
  const sum = after.value('klassify_batch_size_sum') - before.value('klassify_batch_size_sum');
  const count = after.value('klassify_batch_size_count') - before.value('klassify_batch_size_count');
  return count > 0 ? sum / count : NaN;
}

/**
 * CPU ms the server has used, its decoder processes included: decoding runs there, so the
 * server's own counters would leave out most of what a photo costs.
 */
export function processCpuMs(pid: number): number {
  return treeCpuMs(pid);
}

/**
 * Memory of the server with its decoder processes, in MB: the sum of their PSS, which
 * counts a page the processes share (the node binary, libvips) once, as a pod's memory
 * limit counts it.
 */
export function rssMb(pid: number): number {
  return treeMemory(pid).pss / (1024 * 1024);
}

/** Calls fn every `ms` until stop() is called; returns what it collected. */
export function sampler<T>(fn: () => T | Promise<T>, ms: number): { stop(): Promise<T[]> } {
  const values: T[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        values.push(await fn());
      } catch {
        // a failed sample is skipped
      }
      await new Promise((r) => setTimeout(r, ms));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return values;
    },
  };
}

/** Latency of one GET in ms (the body is read). */
export async function timedGet(url: string): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(url);
  await res.arrayBuffer();
  return performance.now() - t0;
}
