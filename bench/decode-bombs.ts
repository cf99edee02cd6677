// Decode bombs against a running service on loopback: for each class, its answer, the
// time to it, how far the RSS of the service and its decoder processes rose, and what a
// legitimate photo sent meanwhile saw, each case in a fresh process. Also the largest images
// the default limits still accept, alone and four at once, which is the worst case the
// limits allow, and what the decoder processes stop when the header checks are lifted.
// Prints a Markdown table (docs/reliability.md quotes it).
//
//   node --import tsx bench/decode-bombs.ts [--only=<substring>] [--unguarded] [--malloc-default]
//
// --unguarded raises every decode limit to show what they prevent: it can take gigabytes
// and minutes per case, so pick cases with --only. The service runs with the pod's two
// workers and the image's UV_THREADPOOL_SIZE, MALLOC_ARENA_MAX and MALLOC_MMAP_THRESHOLD_
// (the bench re-runs itself to set those not already set).
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import sharp from 'sharp';
import type { RunningService } from '../functions/classify/src/server.ts';
import { avifBomb, gifBomb, jpegScanBomb, pngBomb, tiffBomb, TIFF_TYPES, tiledTiffBomb, webpBomb } from '../functions/classify/test/bomb-images.ts';
import { animatedGif, animatedWebp, iccProfile, multiScanBaselineJpeg, pngTextBomb, tiffDirectoryChain, withIccProfile, withStrayByte } from '../functions/classify/test/header-bombs.ts';
import { treeRss } from '../functions/classify/test/process-tree.ts';
import { fixture, startTestService } from '../test/support.ts';
import { cli } from './cli.ts';

if (!process.env.UV_THREADPOOL_SIZE) {
  const env: NodeJS.ProcessEnv = { UV_THREADPOOL_SIZE: '6', MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '4194304', ...process.env };
  if (process.argv.includes('--malloc-default')) delete env.MALLOC_MMAP_THRESHOLD_; // glibc's own, for comparison
  const child = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit', env });
  process.exit(child.status ?? 1);
}

const { values: args } = cli(
  {
    options: {
      only: { type: 'string' },
      unguarded: { type: 'boolean', default: false },
      'malloc-default': { type: 'boolean', default: false },
      // Internal: the case a child process runs (-1: the quiet baseline).
      child: { type: 'string' },
    },
  },
  'node --import tsx bench/decode-bombs.ts [--only=<case name part>] [--unguarded] [--malloc-default]',
);
const { only, unguarded } = args;

interface Case {
  name: string;
  make: () => Promise<Buffer> | Buffer;
  /** How many copies are sent at once. */
  parallel?: number;
  /** Configuration for this case: a header check lifted, to show what the decoder processes stop. */
  env?: Record<string, string>;
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
  { name: 'TIFF 6400² RGBA in 4096² tiles', make: () => tiledTiffBomb(6400, 6400, 4096, 4) },
  { name: 'WebP 16383² (declared)', make: () => webpBomb(16383, 16383) },
  { name: 'JPEG 2048², 2,000 scans', make: () => jpegScanBomb(2000) },
  { name: 'JPEG 2048², 2,000 scans, 4 at once', make: () => jpegScanBomb(2000), parallel: 4 },
  { name: 'JPEG 7000², 2,000 scans', make: () => jpegScanBomb(2000, 7000, 7000) },
  // What the header read itself would pay for.
  { name: 'JPEG, ICC profile declaring 2^32−1 tags', make: () => withIccProfile('jpeg', iccProfile(2 ** 32 - 1)) },
  { name: 'PNG, 50 zTXt chunks of 7.9 MB, 4 at once', make: () => pngTextBomb('zTXt'), parallel: 4 },
  { name: 'PNG, 50 iTXt chunks of 7.9 MB, 4 at once', make: () => pngTextBomb('iTXt'), parallel: 4 },
  { name: 'JPEG 7070² CMYK baseline, a scan per component, 4 at once', make: () => multiScanBaselineJpeg(7070), parallel: 4 },
  { name: 'JPEG 2048², 2,000 scans, a stray byte after DQT', make: async () => withStrayByte(await jpegScanBomb(2000)) },
  { name: 'JPEG 7070² progressive 4:4:4, a stray byte after DQT', make: async () => withStrayByte(await sharp({ create: { width: 7070, height: 7070, channels: 3, background: '#336699' } }).jpeg({ progressive: true, chromaSubsampling: '4:4:4' }).toBuffer()) },
  { name: 'WebP, 226,000 one-pixel frames, 6 at once', make: () => animatedWebp(226_000), parallel: 6 },
  { name: 'GIF, 600,000 one-pixel frames', make: () => animatedGif(600_000) },
  { name: 'TIFF, 70,000 pages', make: () => tiffDirectoryChain(70_000) },
  { name: 'TIFF 6400² RGBA in 4096² tiles typed SLONG', make: () => tiledTiffBomb(6400, 6400, 4096, 4, TIFF_TYPES.SLONG) },
  // The second line alone: the scan limit lifted, so only the deadline stops them.
  { name: 'JPEG 2048², 20,000 scans, scan limit lifted, 4 at once', make: () => jpegScanBomb(20_000), parallel: 4, env: { KLASSIFY_MAX_JPEG_SCANS: '100000' } },
  // The largest the default limits accept: what an attacker can still make us do.
  { name: 'accepted: JPEG 8000×6000 progressive, 100 scans', make: () => phoneProgressive(100) },
  { name: 'accepted: same, 4 at once', make: () => phoneProgressive(100), parallel: 4 },
  { name: 'accepted: PNG 7000² RGB 8-bit', make: () => pngBomb({ width: 7000, height: 7000, colourType: 2 }) },
  { name: 'accepted: TIFF 7000² RGB in 1024² tiles', make: () => tiledTiffBomb(7000, 7000, 1024, 3) },
  // Passes the header check; its empty LZW data then fails the decode, after the canvas.
  { name: 'accepted: GIF 5600² frame (empty)', make: () => gifBomb({ width: 5600, height: 5600 }) },
  { name: 'accepted: 48 MP baseline JPEG', make: async () => sharp(await fixture('chelsea.png')).resize(8000, 6000, { fit: 'fill' }).jpeg({ quality: 90 }).toBuffer() },
];


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

interface Row {
  answers: string;
  ms: number;
  rise: number;
  legitMax: number;
  legitCount: number;
  legitStatuses: string;
  size: number;
}

/** One case in this (fresh) process, so that memory freed by an earlier case cannot hide its peak. */
async function runCase(c: Case): Promise<Row> {
  const limits: Record<string, string> = unguarded
    ? { KLASSIFY_MAX_DECODED_BYTES: String(64 * 1024 ** 3), KLASSIFY_MAX_DIMENSION: '1000000', KLASSIFY_MAX_JPEG_SCANS: '100000', KLASSIFY_DECODE_MEMORY: String(64 * 1024 ** 3), KLASSIFY_DECODE_TIMEOUT_S: '600' }
    : {};
  const svc = await startTestService({ KLASSIFY_WORKERS: '2', KLASSIFY_BODY_LIMIT: String(20 * 1024 * 1024), ...limits, ...c.env });
  try {
    const photo = await fixture('chelsea.png');
    const body: Uint8Array<ArrayBuffer> = new Uint8Array(await c.make());
    for (let i = 0; i < 20; i++) await post(svc, photo); // warm: heaps and arenas settle
    // This process and its decoder processes, sampled every 2 ms.
    const before = treeRss();
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, treeRss())), 2);
    const t0 = performance.now();
    const attack = Promise.all(Array.from({ length: c.parallel ?? 1 }, () => post(svc, body)));
    const meanwhile = await legitimateLoop(svc, photo, attack);
    const answers = await attack;
    clearInterval(sampler);
    return {
      answers: [...new Set(answers.map((a) => `${a.status} ${a.code}`))].join(', '),
      ms: performance.now() - t0,
      rise: (peak - before) / 1e6,
      legitMax: Math.max(...meanwhile.map((r) => r.ms)),
      legitCount: meanwhile.length,
      legitStatuses: [...new Set(meanwhile.map((r) => r.status))].join('/'),
      size: body.length,
    };
  } finally {
    await svc.shutdown();
  }
}

/** A photo alone, 20 in a row, and the warm service's RSS. */
async function runQuiet() {
  const svc = await startTestService({ KLASSIFY_WORKERS: '2' });
  try {
    const photo = await fixture('chelsea.png');
    for (let i = 0; i < 5; i++) await post(svc, photo);
    const ms = (await legitimateLoop(svc, photo, Promise.resolve(), 20)).map((r) => r.ms).sort((a, b) => a - b);
    return { median: ms[10], max: ms[19], rss: process.memoryUsage().rss / 1e6 };
  } finally {
    await svc.shutdown();
  }
}

/** Runs `--child=<n>` (n = -1: the quiet baseline) in a fresh process and parses its JSON. */
function inChild<T>(n: number): T {
  const child = spawnSync(process.execPath, [...process.execArgv, process.argv[1], `--child=${n}`, ...(unguarded ? ['--unguarded'] : [])], {
    env: process.env,
    encoding: 'utf8',
    timeout: 600_000,
  });
  const line = child.stdout.trim().split('\n').pop() ?? '';
  if (child.status !== 0 || !line.startsWith('{')) throw new Error(`case ${n} failed (${child.status ?? child.signal}): ${child.stderr.slice(-2000)}`);
  return JSON.parse(line) as T;
}

async function main() {
  if (args.child !== undefined) {
    const n = Number(args.child);
    console.log(JSON.stringify(n < 0 ? await runQuiet() : await runCase(CASES[n])));
    return;
  }
  const quiet = inChild<{ median: number; max: number; rss: number }>(-1);
  console.log(`\n${new Date().toISOString()} · ${os.cpus().length} CPUs · load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} · UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE} MALLOC_ARENA_MAX=${process.env.MALLOC_ARENA_MAX} MALLOC_MMAP_THRESHOLD_=${process.env.MALLOC_MMAP_THRESHOLD_ ?? '(glibc default)'}${unguarded ? ' · UNGUARDED' : ''}`);
  console.log(`A photo alone (chelsea.png, 20 in a row): median ${fmt(quiet.median)} ms, max ${fmt(quiet.max)} ms`);
  console.log(`RSS of the warm service (two workers, in-process, under tsx; its decoder processes not counted): ${fmt(quiet.rss)} MB\n`);
  console.log('| case | file | answer | time | peak RSS rise | photo meanwhile: slowest (count × status) |');
  console.log('|---|---|---|---|---|---|');
  CASES.forEach((c, n) => {
    if (only && !c.name.includes(only)) return;
    const r = inChild<Row>(n);
    const size = r.size >= 1e6 ? `${(r.size / 1e6).toFixed(1)} MB` : r.size >= 1e3 ? `${(r.size / 1e3).toFixed(1)} KB` : `${r.size} B`;
    console.log(`| ${c.name} | ${size} | ${r.answers} | ${fmt(r.ms)} ms | ${fmt(r.rise)} MB | ${fmt(r.legitMax)} ms (${r.legitCount}× ${r.legitStatuses}) |`);
  });
  console.log(`\nload after: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
}

await main();
