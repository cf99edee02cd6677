// Decode bombs against a running service on loopback: for each class, its answer, the
// time to it, how far the process's peak RSS rose, and what a legitimate photo sent
// meanwhile saw. Also the largest images the default limits still accept, alone and four
// at once, which is the worst case the limits allow. Prints a Markdown table
// (docs/reliability.md quotes it).
//
//   node --import tsx bench/decode-bombs.ts [--only=<substring>] [--unguarded]
//
// --unguarded raises every decode limit to show what they prevent: it can take gigabytes
// and minutes per case, so pick cases with --only. The service runs with the pod's two
// workers and UV_THREADPOOL_SIZE=6, as deployed (the bench re-runs itself to set it).
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import sharp from 'sharp';
import type { RunningService } from '../functions/classify/src/server.ts';
import { avifBomb, gifBomb, jpegScanBomb, pngBomb, tiffBomb, webpBomb } from '../functions/classify/test/bomb-images.ts';
import { fixture, startTestService } from '../test/support.ts';

if (!process.env.UV_THREADPOOL_SIZE) {
  const child = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit', env: { ...process.env, UV_THREADPOOL_SIZE: '6' } });
  process.exit(child.status ?? 1);
}

const args = process.argv.slice(2);
const only = args.find((a) => a.startsWith('--only='))?.slice('--only='.length);
const unguarded = args.includes('--unguarded');

interface Case {
  name: string;
  make: () => Promise<Buffer> | Buffer;
  /** How many copies are sent at once. */
  parallel?: number;
}

/** A progressive 48 MP JPEG (one colour) padded with valid scans to `scans` scans. */
async function phoneProgressive(scans: number): Promise<Buffer> {
  return jpegScanBomb(scans, 8000, 6000);
}

const CASES: Case[] = [
  { name: 'PNG 50,000,000×1 RGBA 16-bit', make: () => pngBomb({ width: 50_000_000, height: 1, colourType: 6, bitDepth: 16 }) },
  { name: 'PNG 1×50,000,000 grey', make: () => pngBomb({ width: 1, height: 50_000_000 }) },
  { name: 'PNG 7000² RGBA 16-bit', make: () => pngBomb({ width: 7000, height: 7000, colourType: 6, bitDepth: 16 }) },
  { name: 'GIF 7000² frame', make: () => gifBomb({ width: 7000, height: 7000 }) },
  { name: 'GIF 7000² frame, 4 at once', make: () => gifBomb({ width: 7000, height: 7000 }), parallel: 4 },
  { name: 'AVIF 7000² 12-bit (declared)', make: () => avifBomb(7000, 7000, 12) },
  { name: 'TIFF 7000² RGBA 16-bit', make: () => tiffBomb(7000, 7000, 4, 16) },
  { name: 'WebP 16383² (declared)', make: () => webpBomb(16383, 16383) },
  { name: 'JPEG 2048², 2,000 scans', make: () => jpegScanBomb(2000) },
  { name: 'JPEG 2048², 2,000 scans, 4 at once', make: () => jpegScanBomb(2000), parallel: 4 },
  { name: 'JPEG 7000², 2,000 scans', make: () => jpegScanBomb(2000, 7000, 7000) },
  // The largest the default limits accept: what an attacker can still make us do.
  { name: 'accepted: JPEG 8000×6000 progressive, 100 scans', make: () => phoneProgressive(100) },
  { name: 'accepted: same, 4 at once', make: () => phoneProgressive(100), parallel: 4 },
  { name: 'accepted: PNG 7000² RGB 8-bit', make: () => pngBomb({ width: 7000, height: 7000, colourType: 2 }) },
  // Passes the header check; its empty LZW data then fails the decode, after the canvas.
  { name: 'accepted: GIF 5600² frame (empty)', make: () => gifBomb({ width: 5600, height: 5600 }) },
  { name: 'accepted: 48 MP baseline JPEG', make: async () => sharp(await fixture('chelsea.png')).resize(8000, 6000, { fit: 'fill' }).jpeg({ quality: 90 }).toBuffer() },
];

const peakRss = () => Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) * 1024;
const resetPeak = () => writeFileSync('/proc/self/clear_refs', '5');

async function post(svc: RunningService, body: Uint8Array<ArrayBuffer>): Promise<{ status: number; code: string; ms: number }> {
  const t0 = performance.now();
  const res = await fetch(svc.url + '/classify', { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });
  const json = (await res.json()) as { type?: string };
  return { status: res.status, code: res.ok ? 'ok' : (json.type ?? '').split('/').pop()!, ms: performance.now() - t0 };
}

/** Sends the photo one request after another until `until` settles (at least `min` times). */
async function legitimateLoop(svc: RunningService, photo: Uint8Array<ArrayBuffer>, until: Promise<unknown>, min = 3) {
  let done = false;
  until.finally(() => (done = true));
  const seen: { status: number; ms: number }[] = [];
  while (!done || seen.length < min) seen.push(await post(svc, photo));
  return seen;
}

const fmt = (n: number) => (n >= 100 ? n.toFixed(0) : n.toFixed(1));

async function main() {
  const limits: Record<string, string> = unguarded
    ? { KLASSIFY_MAX_DECODED_BYTES: String(64 * 1024 ** 3), KLASSIFY_MAX_DIMENSION: '1000000', KLASSIFY_MAX_JPEG_SCANS: '100000', KLASSIFY_DECODE_MEMORY: String(64 * 1024 ** 3), KLASSIFY_DECODE_TIMEOUT_S: '600' }
    : {};
  const svc = await startTestService({ KLASSIFY_WORKERS: '2', KLASSIFY_BODY_LIMIT: String(20 * 1024 * 1024), ...limits });
  try {
    const photo = await fixture('chelsea.png');
    for (let i = 0; i < 5; i++) await post(svc, photo); // warm
    const quiet = await legitimateLoop(svc, photo, Promise.resolve(), 20);
    const quietMs = quiet.map((r) => r.ms).sort((a, b) => a - b);
    console.log(`\n${new Date().toISOString()} · ${os.cpus().length} CPUs · load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} · UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE}${unguarded ? ' · UNGUARDED' : ''}`);
    console.log(`A photo alone (chelsea.png, 20 in a row): median ${fmt(quietMs[10])} ms, max ${fmt(quietMs[19])} ms`);
    console.log(`RSS of the warm service (two workers, in this process): ${fmt(process.memoryUsage().rss / 1e6)} MB\n`);
    console.log('| case | file | answer | time | peak RSS rise | photo meanwhile: max (statuses) |');
    console.log('|---|---|---|---|---|---|');
    for (const c of CASES.filter((c) => !only || c.name.includes(only))) {
      const body: Uint8Array<ArrayBuffer> = new Uint8Array(await c.make());
      const n = c.parallel ?? 1;
      resetPeak();
      const before = process.memoryUsage().rss;
      const t0 = performance.now();
      const attack = Promise.all(Array.from({ length: n }, () => post(svc, body)));
      const meanwhile = await legitimateLoop(svc, photo, attack);
      const answers = await attack;
      const ms = performance.now() - t0;
      const rise = (peakRss() - before) / 1e6;
      const codes = [...new Set(answers.map((a) => `${a.status} ${a.code}`))].join(', ');
      const legitMax = Math.max(...meanwhile.map((r) => r.ms));
      const statuses = [...new Set(meanwhile.map((r) => r.status))].join('/');
      const size = body.length >= 1e6 ? `${(body.length / 1e6).toFixed(1)} MB` : body.length >= 1e3 ? `${(body.length / 1e3).toFixed(1)} KB` : `${body.length} B`;
      console.log(`| ${c.name} | ${size} | ${codes} | ${fmt(ms)} ms | ${fmt(rise)} MB | ${fmt(legitMax)} ms (${meanwhile.length}× ${statuses}) |`);
    }
  } finally {
    await svc.shutdown();
  }
}

await main();
