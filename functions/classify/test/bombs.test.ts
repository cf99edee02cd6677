// Decompression bombs of every class, made at test time, through the core and over HTTP:
// each is refused with 422 and the right code, quickly and without the memory it declares,
// while a normal photo is still classified.
import { readFileSync, writeFileSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Classifier } from '../src/classifier.ts';
import { ClientClosed, ClientError, type ErrorCode } from '../src/errors.ts';
import { STATUS } from '../src/http/problems.ts';
import { startInference } from '../src/inference.ts';
import { createMetrics } from '../src/metrics.ts';
import type { RunningService } from '../src/server.ts';
import { CAT_LABELS, fixture, pollUntil, startTestService, testConfig } from '../../../test/support.ts';
import { silentLogger } from '../../../server-kit/log.ts';
import { avifBomb, gifBomb, jpegScanBomb, pngBomb, tiffBomb, tiledTiffBomb, webpBomb } from './bomb-images.ts';

const MB = 1e6;

/** Peak RSS since the last reset (Linux: VmHWM, reset through clear_refs). */
const peakRss = () => Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) * 1024;

/** Resets the kernel's peak-RSS mark; false where /proc does not allow it. */
function resetPeakRss(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

/** Runs fn and reports its wall time and how far the process's peak RSS rose above the start. */
async function measured<T>(fn: () => Promise<T>): Promise<{ ms: number; rssDelta: number; outcome: T | Error }> {
  const exact = resetPeakRss();
  const before = process.memoryUsage().rss;
  // Without the kernel's mark, sample: the decodes run off the main thread, so it is free.
  let sampled = before;
  const sampler = setInterval(() => (sampled = Math.max(sampled, process.memoryUsage().rss)), 2);
  const t0 = performance.now();
  try {
    const outcome = await fn().catch((err: Error) => err);
    return { ms: performance.now() - t0, rssDelta: (exact ? peakRss() : sampled) - before, outcome };
  } finally {
    clearInterval(sampler);
  }
}

interface Bomb {
  name: string;
  make: () => Promise<Buffer> | Buffer;
  code: ErrorCode;
  detail: RegExp;
}

// One bomb of each class, by format, aspect, bit depth and bands. Each would take from
// 200 MB to over 1 GB (or seconds of CPU) to decode.
const BOMBS: Bomb[] = [
  { name: 'PNG 50,000,000×1 RGBA 16-bit (400 MB row)', make: () => pngBomb({ width: 50_000_000, height: 1, colourType: 6, bitDepth: 16 }), code: 'image-too-large', detail: /50000000×1/ },
  { name: 'PNG 1×50,000,000 grey', make: () => pngBomb({ width: 1, height: 50_000_000 }), code: 'image-too-large', detail: /1×50000000/ },
  { name: 'PNG 8000×6000 RGBA 16-bit', make: () => pngBomb({ width: 8000, height: 6000, colourType: 6, bitDepth: 16, data: 'few-rows' }), code: 'image-too-large', detail: /8000×6000 image \(4 bands of 16 bits\)/ },
  { name: 'GIF declaring a 7000² frame', make: () => gifBomb({ width: 7000, height: 7000 }), code: 'image-too-large', detail: /7000×7000 image/ },
  { name: 'GIF with a 7000² frame on a 1×1 screen', make: () => gifBomb({ width: 1, height: 1 }, { width: 7000, height: 7000 }), code: 'image-too-large', detail: /7000×7000/ },
  { name: 'AVIF 7000² 12-bit', make: () => avifBomb(7000, 7000, 12), code: 'image-too-large', detail: /7000×7000 image \(3 bands of 12 bits\)/ },
  { name: 'AVIF 4000×3000 8-bit', make: () => avifBomb(4000, 3000, 8), code: 'image-too-large', detail: /4000×3000/ },
  { name: 'TIFF 7000² RGBA 16-bit', make: () => tiffBomb(7000, 7000, 4, 16), code: 'image-too-large', detail: /7000×7000 image \(4 bands of 16 bits\)/ },
  { name: 'TIFF 6400² RGBA in 4096² tiles', make: () => tiledTiffBomb(6400, 6400, 4096, 4), code: 'image-too-large', detail: /6400×6400 image \(4 bands of 8 bits\)/ },
  { name: 'TIFF 40000×1 grey', make: () => tiffBomb(40_000, 1, 1, 8), code: 'image-too-large', detail: /40000×1/ },
  { name: 'WebP 16383² with alpha', make: () => webpBomb(16383, 16383), code: 'image-too-large', detail: /16383×16383/ },
  { name: 'WebP 10000×4500', make: () => webpBomb(10_000, 4500, false), code: 'image-too-large', detail: /10000×4500 image/ },
  { name: 'progressive JPEG with 2,000 scans', make: () => jpegScanBomb(2000), code: 'image-too-large', detail: /2048×2048 JPEG has 2000 scans/ },
];

function assertRefused(outcome: unknown, bomb: Pick<Bomb, 'name' | 'code' | 'detail'>) {
  assert.instance(outcome, ClientError, `${bomb.name}: ${String(outcome)}`);
  const err = outcome as ClientError;
  assert.is(err.code, bomb.code, bomb.name);
  assert.is(STATUS[err.code], 422, bomb.name);
  assert.match(err.message, bomb.detail, bomb.name);
}

async function assertCat(classifier: Classifier, photo: Uint8Array) {
  const result = await classifier.classify(photo, { topk: 1, resize: 'stretch' });
  assert.ok(CAT_LABELS.includes(result.predictions[0].label), result.predictions[0].label);
}

let classifier: Classifier | undefined;
let photo: Uint8Array<ArrayBuffer>;

const core = suite('bombs through the core');
core.before(async () => {
  const config = testConfig();
  classifier = await Classifier.create(config, createMetrics(), startInference(config, silentLogger));
  photo = await fixture('chelsea.png');
});
core.after(async () => {
  await classifier?.close();
  classifier = undefined;
});
for (const bomb of BOMBS) {
  core(`${bomb.name}: 422 ${bomb.code} from the header, while a photo is classified`, async () => {
    const bytes = await bomb.make();
    assert.ok(bytes.length < 400_000, `${bytes.length} bytes`);
    const { ms, rssDelta, outcome } = await measured(async () => {
      const [refused] = await Promise.all([classifier!.classify(bytes, { topk: 1, resize: 'stretch' }).catch((err) => err), assertCat(classifier!, photo)]);
      if (refused instanceof Error) throw refused;
      return refused;
    });
    assertRefused(outcome, bomb);
    // Refused from the header: no decode ran. Decoding any of these takes seconds and
    // hundreds of MB; the bounds are loose for a loaded machine, far below that.
    assert.ok(ms < 5000, `${ms.toFixed(0)} ms`);
    assert.ok(rssDelta < 100 * MB, `RSS rose ${(rssDelta / MB).toFixed(0)} MB`);
  });
}
core.run();

/** Resolves once cond() holds, polling every millisecond: the decode gate's state changes fast. */
const until = (cond: () => boolean, what: string) => pollUntil(what, cond, { timeoutMs: 60_000, intervalMs: 1 });

/** A classifier that decodes scan bombs for real (scans uncapped), one decode at a time. */
async function uncappedClassifier(overrides: Record<string, string> = {}) {
  const config = testConfig({ KLASSIFY_MAX_JPEG_SCANS: '100000', KLASSIFY_DECODE_CONCURRENCY: '1', ...overrides });
  return Classifier.create(config, createMetrics(), startInference(config, silentLogger));
}

const budget = suite('decode time budget');
budget.before(async () => {
  classifier = await uncappedClassifier({ KLASSIFY_DECODE_TIMEOUT_S: '1' });
  photo = await fixture('chelsea.png');
});
budget.after(async () => {
  await classifier?.close();
  classifier = undefined;
});
budget('a decode past its time budget is answered 422 decode-timeout, and still holds its place until it ends', async () => {
  // 3,000 scans of a 4096² image: seconds of one core, well past the 1 s budget.
  const bomb = await jpegScanBomb(3000, 4096, 4096);
  const { ms, outcome } = await measured(() => classifier!.classify(bomb, { topk: 1, resize: 'stretch' }));
  assertRefused(outcome, { name: 'scan bomb, uncapped', code: 'decode-timeout', detail: /after 1 s/ });
  assert.ok(ms < 5000, `answered after ${ms.toFixed(0)} ms; the budget is 1 s`);
  assert.is(classifier!.decoding.decodes, 1, 'libvips is still decoding: its memory is still counted');
  await until(() => classifier!.decoding.decodes === 0, 'the decode gate drains once libvips returns');
  await assertCat(classifier!, photo);
});
budget.run();

const gone = suite('clients that go');
gone.before(async () => {
  classifier = await uncappedClassifier();
  photo = await fixture('chelsea.png');
});
gone.after(async () => {
  await classifier?.close();
  classifier = undefined;
});
gone('a request waiting for a decode slot leaves the queue when its client goes', async () => {
  const slow = classifier!.classify(await jpegScanBomb(1500), { topk: 1, resize: 'stretch' }).catch((err) => err);
  await until(() => classifier!.decoding.decodes === 1, 'the bomb is decoding');
  const client = new AbortController();
  const waiting = classifier!.classify(photo, { topk: 1, resize: 'stretch', signal: client.signal }).catch((err) => err);
  await until(() => classifier!.decoding.waiting === 1, 'the photo waits for the only slot');
  client.abort();
  assert.instance(await waiting, ClientClosed);
  assert.is(classifier!.decoding.decodes, 1, 'dropped at once, while the decode ahead of it still runs');
  assert.is(classifier!.decoding.waiting, 0);
  await slow;
});
gone('a request whose client has gone is not decoded, nor sent to inference', async () => {
  const already = new AbortController();
  already.abort();
  assert.instance(await classifier!.classify(photo, { topk: 1, resize: 'stretch', signal: already.signal }).catch((err) => err), ClientClosed);
  // Gone during the decode: the decode finishes (libvips cannot be told), inference is skipped.
  const during = new AbortController();
  const decoding = classifier!.classify(await jpegScanBomb(1500), { topk: 1, resize: 'stretch', signal: during.signal }).catch((err) => err);
  await until(() => classifier!.decoding.decodes === 1, 'the decode started');
  during.abort();
  assert.instance(await decoding, ClientClosed);
  await assertCat(classifier!, photo);
});
gone.run();

let svc: RunningService | undefined;
const http = suite('bombs over HTTP');
http.before(async () => {
  svc = await startTestService();
  photo = await fixture('chelsea.png');
});
http.after(() => svc?.shutdown());
http('bombs get a 422 problem naming the dimensions and the limit; the service keeps serving', async () => {
  for (const bomb of [BOMBS[0], BOMBS[3], BOMBS[5], BOMBS[11]]) {
    const body = new Uint8Array(await bomb.make());
    const [res, normal] = await Promise.all([
      fetch(svc!.url + '/classify', { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } }),
      fetch(svc!.url + '/classify', { method: 'POST', body: photo, headers: { 'content-type': 'image/png' } }),
    ]);
    assert.is(res.status, 422, bomb.name);
    assert.match(res.headers.get('content-type') ?? '', /application\/problem\+json/);
    const problem = await res.json();
    assert.is(problem.type, `https://klassify.dev/problems/${bomb.code}`, bomb.name);
    assert.match(problem.detail, bomb.detail, bomb.name);
    assert.type(problem.width, 'number', bomb.name);
    assert.ok(Object.keys(problem).some((k) => k.startsWith('limit')), `${bomb.name}: ${Object.keys(problem)}`);
    assert.is(normal.status, 200, bomb.name);
    assert.ok(CAT_LABELS.includes((await normal.json()).predictions[0].label));
  }
  assert.is((await fetch(svc!.url + '/health/readiness')).status, 200);
});
http.run();
