// Decompression bombs of every class, and files whose cost is in what the header read
// touches, made at test time, through the core and over HTTP: each is answered with the
// right status quickly and without the memory it could cost, while a normal photo is still
// classified. Memory is the RSS of this process and its decoder processes together,
// sampled every 2 ms (the decodes run in the decoder processes).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Classifier } from '../src/classifier.ts';
import { ClientClosed, ClientError, type ErrorCode } from '../src/errors.ts';
import { STATUS } from '../src/http/problems.ts';
import { startInference } from '../src/inference.ts';
import { createMetrics } from '../src/metrics.ts';
import type { RunningService } from '../src/server.ts';
import { CLASSIFIED, SUBMITTED } from '../../../contracts/events.ts';
import { CAT_LABELS, fixture, pollUntil, startTestService, testConfig } from '../../../test/support.ts';
import { silentLogger } from '../../../server-kit/log.ts';
import { avifBomb, gifBomb, jpegScanBomb, pngBomb, tiffBomb, TIFF_TYPES, tiledTiffBomb, webpBomb } from './bomb-images.ts';
import { animatedGif, animatedWebp, iccProfile, multiScanBaselineJpeg, pngIccBomb, pngTextBomb, tiffDirectoryChain, withIccProfile, withStrayByte } from './header-bombs.ts';
import { treeRss, withPeakRss } from './process-tree.ts';

const MB = 1e6;

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
  { name: 'progressive JPEG with 2,000 scans', make: () => jpegScanBomb(2000), code: 'image-too-large', detail: /2048×2048 JPEG has more than 100 scans, the limit/ },
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

/** Gives a suite's tests a classifier (configured by `overrides`) and the photo; closed after them. */
function withClassifier(tests: ReturnType<typeof suite>, overrides: Record<string, string> = {}) {
  tests.before(async () => {
    const config = testConfig(overrides);
    classifier = await Classifier.create(config, createMetrics(), startInference(config, silentLogger), silentLogger);
    photo = await fixture('chelsea.png');
  });
  tests.after(async () => {
    await classifier?.close();
    classifier = undefined;
  });
}

const core = suite('bombs through the core');
withClassifier(core);
for (const bomb of BOMBS) {
  core(`${bomb.name}: 422 ${bomb.code} from the header, while a photo is classified`, async () => {
    const bytes = await bomb.make();
    assert.ok(bytes.length < 400_000, `${bytes.length} bytes`);
    const { ms, rise, outcome } = await withPeakRss(async () => {
      const [refused] = await Promise.all([classifier!.classify(bytes, { topk: 1, resize: 'stretch' }).catch((err) => err), assertCat(classifier!, photo)]);
      if (refused instanceof Error) throw refused;
      return refused;
    });
    assertRefused(outcome, bomb);
    // Refused from the header: no decode ran. Decoding any of these takes seconds and
    // hundreds of MB; the bounds are loose for a loaded machine, far below that.
    assert.ok(ms < 5000, `${ms.toFixed(0)} ms`);
    assert.ok(rise < 100 * MB, `RSS rose ${(rise / MB).toFixed(0)} MB`);
  });
}
core.run();

interface HeaderCase {
  name: string;
  make: () => Promise<Buffer> | Buffer;
  /** How many are sent at once. */
  parallel?: number;
  /** 200, or the 422 refusal expected. */
  refusal?: { code: ErrorCode; detail: RegExp };
  /** Bounds, loose for a loaded machine; without the fix each took far more. */
  maxMs: number;
  maxRise: number;
}

const ICC_LOOP = (format: 'jpeg' | 'tiff' | 'webp') => () => withIccProfile(format, iccProfile(2 ** 32 - 1));
const sharpProgressive444 = async (side: number) => {
  const { default: sharp } = await import('sharp');
  return sharp({ create: { width: side, height: side, channels: 3, background: '#336699' } }).jpeg({ progressive: true, chromaSubsampling: '4:4:4' }).toBuffer();
};

// Each was measured before the fix (docs/reliability.md): the ICC loops blocked the server
// for minutes, a text bomb took +2.7 GB, the CMYK JPEG +391 MB, the stray bytes let 2,000
// scans and a 7070² 4:4:4 progressive JPEG (+577 MB) through, 226,000 WebP frames took
// minutes of CPU.
const HEADER_CASES: HeaderCase[] = [
  { name: 'JPEG with an ICC profile declaring 2^32−1 tags', make: ICC_LOOP('jpeg'), maxMs: 5000, maxRise: 100 * MB },
  { name: 'TIFF with an ICC profile declaring 2^32−1 tags', make: ICC_LOOP('tiff'), maxMs: 5000, maxRise: 100 * MB },
  { name: 'WebP with an ICC profile declaring 2^32−1 tags', make: ICC_LOOP('webp'), maxMs: 5000, maxRise: 100 * MB },
  { name: 'PNG with 50 zTXt chunks of 7.9 MB, 4 at once', make: () => pngTextBomb('zTXt'), parallel: 4, maxMs: 10_000, maxRise: 150 * MB },
  { name: 'PNG with 50 iTXt chunks of 7.9 MB, 4 at once', make: () => pngTextBomb('iTXt'), parallel: 4, maxMs: 10_000, maxRise: 150 * MB },
  { name: 'PNG whose colour profile inflates to 64 MB', make: () => pngIccBomb(64 * 2 ** 20), refusal: { code: 'image-too-large', detail: /colour profile inflates to more than/ }, maxMs: 5000, maxRise: 100 * MB },
  { name: '7070² CMYK baseline JPEG, a scan per component, 4 at once', make: () => multiScanBaselineJpeg(7070), parallel: 4, refusal: { code: 'image-too-large', detail: /7070×7070 image \(4 bands of 8 bits\) would take about 382 MiB/ }, maxMs: 5000, maxRise: 100 * MB },
  { name: 'progressive JPEG, 2,000 scans, a stray byte after DQT', make: async () => withStrayByte(await jpegScanBomb(2000)), refusal: { code: 'image-too-large', detail: /2048×2048 JPEG has more than 100 scans, the limit/ }, maxMs: 5000, maxRise: 100 * MB },
  { name: '7070² progressive 4:4:4 JPEG, a stray byte after DQT', make: async () => withStrayByte(await sharpProgressive444(7070)), refusal: { code: 'image-too-large', detail: /7070×7070 image \(3 bands of 8 bits\) would take about 286 MiB/ }, maxMs: 5000, maxRise: 100 * MB },
  { name: 'WebP of 226,000 one-pixel frames (11 MB)', make: () => animatedWebp(226_000), refusal: { code: 'image-too-large', detail: /WebP has more than 1000 frames/ }, maxMs: 5000, maxRise: 100 * MB },
  { name: 'GIF of 600,000 one-pixel frames (9 MB)', make: () => animatedGif(600_000), refusal: { code: 'image-too-large', detail: /GIF has more than 1000 frames/ }, maxMs: 5000, maxRise: 100 * MB },
  { name: 'TIFF of 70,000 pages', make: () => tiffDirectoryChain(70_000), refusal: { code: 'image-too-large', detail: /TIFF has more than 1000 pages/ }, maxMs: 5000, maxRise: 100 * MB },
  { name: 'TIFF 6400² RGBA in 4096² tiles, tile size typed SLONG', make: () => tiledTiffBomb(6400, 6400, 4096, 4, TIFF_TYPES.SLONG), refusal: { code: 'image-too-large', detail: /6400×6400 image \(4 bands of 8 bits\) would take about 284 MiB/ }, maxMs: 5000, maxRise: 100 * MB },
];

const headers = suite('header reads that cost more than the header says');
withClassifier(headers);
for (const c of HEADER_CASES) {
  const answer = c.refusal ? `422 ${c.refusal.code}` : 'classified';
  headers(`${c.name}: ${answer}, while a photo is classified`, async () => {
    const bytes = await c.make();
    const { ms, rise, outcome } = await withPeakRss(async () => {
      const sent = Array.from({ length: c.parallel ?? 1 }, () => classifier!.classify(bytes, { topk: 1, resize: 'stretch' }).catch((err: Error) => err));
      const [answers] = await Promise.all([Promise.all(sent), assertCat(classifier!, photo)]);
      return answers;
    });
    assert.not.instance(outcome, Error, String(outcome));
    for (const one of outcome as unknown[]) {
      if (c.refusal) assertRefused(one, { name: c.name, ...c.refusal });
      else assert.not.instance(one, Error, `${c.name}: ${String(one)}`);
    }
    assert.ok(ms < c.maxMs, `${c.name}: ${ms.toFixed(0)} ms`);
    assert.ok(rise < c.maxRise, `${c.name}: RSS rose ${(rise / MB).toFixed(0)} MB`);
  });
}
headers.run();

/** Resolves once cond() holds, polling every millisecond: the decode gate's state changes fast. */
const until = (cond: () => boolean, what: string, timeoutMs = 60_000) => pollUntil(what, cond, { timeoutMs, intervalMs: 1 });

/** Scan bombs decoded for real (scans uncapped), one decode at a time. */
const UNCAPPED = { KLASSIFY_MAX_JPEG_SCANS: '100000', KLASSIFY_DECODE_CONCURRENCY: '1' };

const budget = suite('decodes past their deadline');
withClassifier(budget, { ...UNCAPPED, KLASSIFY_DECODE_TIMEOUT_S: '1', KLASSIFY_DECODE_CONCURRENCY: '2' });
budget('are killed at the deadline: answered 422, their memory returned at once, and photos succeed right after', async () => {
  // 3,000 scans of a 4096² image: seconds of one core inside one libjpeg call, which
  // libvips' own timeout cannot interrupt; each holds ~50 MB of coefficients. Four at once,
  // on two decoder processes: two run, two wait for the gate.
  const bomb = await jpegScanBomb(3000, 4096, 4096);
  const before = treeRss();
  const photos: { ms: number; ok: boolean }[] = [];
  let attacking = true;
  const meanwhile = (async () => {
    while (attacking) {
      const t0 = performance.now();
      const ok = await assertCat(classifier!, photo).then(() => true, () => false);
      photos.push({ ms: performance.now() - t0, ok });
    }
  })();
  const { ms, outcome } = await withPeakRss(() => Promise.all(Array.from({ length: 4 }, () => classifier!.classify(bomb, { topk: 1, resize: 'stretch' }).catch((err: Error) => err))));
  attacking = false;
  await meanwhile;
  for (const one of outcome as unknown[]) assertRefused(one, { name: 'scan bomb, uncapped', code: 'decode-timeout', detail: /after 1 s/ });
  assert.ok(ms < 20_000, `four answered after ${ms.toFixed(0)} ms; two at a time, 1.25 s each, and a process start between`);
  await until(() => classifier!.decoding.decodes === 0, 'the gate drains as the processes are killed', 2000);
  assert.ok(photos.every((p) => p.ok), `photos meanwhile: ${JSON.stringify(photos)}`);
  const t0 = performance.now();
  await assertCat(classifier!, photo);
  assert.ok(performance.now() - t0 < 3000, `a photo after took ${(performance.now() - t0).toFixed(0)} ms`);
  await until(() => classifier!.decoderProcesses.ready === 2, 'both decoders replaced');
  const after = treeRss();
  assert.ok(after - before < 60 * MB, `RSS ${((after - before) / MB).toFixed(0)} MB above where it was`);
});
budget.run();

const gone = suite('clients that go');
withClassifier(gone, UNCAPPED);
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
gone('a request whose client has gone is not decoded, nor sent to inference; a decode under way is stopped', async () => {
  const already = new AbortController();
  already.abort();
  assert.instance(await classifier!.classify(photo, { topk: 1, resize: 'stretch', signal: already.signal }).catch((err) => err), ClientClosed);
  // Gone during a decode of many seconds: answered at once, its process killed after the
  // grace, so its place in the gate comes back long before the decode would have ended.
  const during = new AbortController();
  const decoding = classifier!.classify(await jpegScanBomb(3000, 4096, 4096), { topk: 1, resize: 'stretch', signal: during.signal }).catch((err) => err);
  await until(() => classifier!.decoding.bytes > 10 * MB, 'the decode started');
  const t0 = performance.now();
  during.abort();
  assert.instance(await decoding, ClientClosed);
  await until(() => classifier!.decoding.decodes === 0, 'the place comes back', 3000);
  assert.ok(performance.now() - t0 < 3000, `${(performance.now() - t0).toFixed(0)} ms`);
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
const classifyPhoto = () => fetch(svc!.url + '/classify', { method: 'POST', body: photo, headers: { 'content-type': 'image/png' } });
http('ICC tag loops through /classify and as CloudEvents are answered at once, while liveness answers', async () => {
  const lags: number[] = [];
  let probing = true;
  const probe = (async () => {
    while (probing) {
      const t0 = performance.now();
      await (await fetch(svc!.url + '/health/liveness')).arrayBuffer();
      lags.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  try {
    for (const format of ['jpeg', 'tiff', 'webp'] as const) {
      const body = new Uint8Array(await withIccProfile(format, iccProfile(2 ** 32 - 1)));
      const event = { 'ce-specversion': '1.0', 'ce-id': `icc-${format}`, 'ce-source': '/test/bombs', 'ce-type': SUBMITTED, 'content-type': `image/${format}` };
      const t0 = performance.now();
      const [direct, delivered, normal] = await Promise.all([
        fetch(svc!.url + '/classify', { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } }),
        fetch(svc!.url + '/', { method: 'POST', body, headers: event }),
        classifyPhoto(),
      ]);
      const ms = performance.now() - t0;
      assert.is(direct.status, 200, `${format}: ${await direct.clone().text()}`);
      assert.is((await direct.json()).image.width, 1);
      assert.is(delivered.status, 200, format);
      assert.is(delivered.headers.get('ce-type'), CLASSIFIED, format);
      await delivered.arrayBuffer();
      assert.is(normal.status, 200, format);
      await normal.arrayBuffer();
      assert.ok(ms < 5000, `${format}: ${ms.toFixed(0)} ms`);
    }
  } finally {
    probing = false;
    await probe;
  }
  assert.ok(lags.length > 0);
  assert.ok(Math.max(...lags) < 1000, `liveness took up to ${Math.max(...lags).toFixed(0)} ms`);
});
http('PNG text bombs, zTXt and iTXt, four of each at once: classified, at a few MB', async () => {
  const [ztxt, itxt] = [new Uint8Array(await pngTextBomb('zTXt')), new Uint8Array(await pngTextBomb('iTXt'))];
  const { ms, rise, outcome } = await withPeakRss(async () => {
    const sent = [ztxt, ztxt, ztxt, ztxt, itxt, itxt, itxt, itxt].map((body) => fetch(svc!.url + '/classify', { method: 'POST', body, headers: { 'content-type': 'image/png' } }));
    const [answers, normal] = await Promise.all([Promise.all(sent), classifyPhoto()]);
    return { statuses: answers.map((a) => a.status), normal: normal.status };
  });
  assert.equal(outcome, { statuses: Array(8).fill(200), normal: 200 });
  assert.ok(ms < 15_000, `${ms.toFixed(0)} ms`);
  assert.ok(rise < 200 * MB, `RSS rose ${(rise / MB).toFixed(0)} MB; before the fix, each took 2.7 GB`);
});
http('a WebP of 200,000 frames (10 MB, under the body limit) is refused from its raw bytes', async () => {
  const body = new Uint8Array(await animatedWebp(200_000));
  const t0 = performance.now();
  const [res, normal] = await Promise.all([fetch(svc!.url + '/classify', { method: 'POST', body, headers: { 'content-type': 'image/webp' } }), classifyPhoto()]);
  assert.is(res.status, 422);
  const problem = await res.json();
  assert.is(problem.limitFrames, 1000);
  assert.match(problem.detail, /more than 1000 frames/);
  assert.ok(performance.now() - t0 < 5000, `${(performance.now() - t0).toFixed(0)} ms`);
  assert.is(normal.status, 200);
});
http.run();
