// The decoder processes alone: a header read and a decode run in a process that is killed
// at its deadline, past its memory allowance, or when its client has gone; its memory comes
// back, and a replacement takes the next task. Real images where a real image can cause
// it; a stand-in process (fault-decoder.mjs) for crashes and failed starts.
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { DEFAULT_DECODE_LIMITS, memoryAllowance } from '../src/decode-budget.ts';
import type { DecodeJob, HeaderJob, PixelJob, Running } from '../src/decode-image.ts';
import { readJpegStructure } from '../src/headers/index.ts';
import { ABORT_GRACE_MS, DecoderPool, type DecoderLoss, type DecoderPoolOptions } from '../src/decoder-pool.ts';
import { ClientClosed, ClientError, DecodeTimeout, UnprocessableImage, WorkerUnavailable } from '../src/errors.ts';
import { fixture, pollUntil } from '../../../test/support.ts';
import { jpegScanBomb } from './bomb-images.ts';
import { multiScanBaselineJpeg } from './header-bombs.ts';
import { treeRss, withPeakRss } from './process-tree.ts';

const MB = 1e6;
const FAULT = fileURLToPath(new URL('./fault-decoder.mjs', import.meta.url));

const headerJob = (over: Partial<HeaderJob> = {}): HeaderJob => ({ format: 'jpeg', maxPixels: 50e6, timeoutSeconds: 10, estimatedBytes: 0, ...over });
const pixelJob = (over: Partial<PixelJob> = {}): PixelJob => ({ ...headerJob(), side: 224, resize: 'stretch', srgb: false, ...over });
const decodeJob = (over: Partial<DecodeJob> = {}): DecodeJob => ({ ...headerJob(), side: 224, resize: 'stretch', limits: DEFAULT_DECODE_LIMITS, grantedBytes: 10 * MB, ...over });

let pool: DecoderPool | undefined;
let losses: DecoderLoss[] = [];
let logged: string[] = [];

async function start(opts: Partial<DecoderPoolOptions> = {}): Promise<DecoderPool> {
  losses = [];
  logged = [];
  pool = await DecoderPool.start({ processes: 1, log: { warn: (m) => logged.push(m) }, onLoss: (r) => losses.push(r), ...opts });
  await pool.allReady();
  return pool;
}

const until = (cond: () => boolean, what: string) => pollUntil(what, cond, { timeoutMs: 20_000, intervalMs: 5 });

const settled = async (p: Promise<unknown>) => p.then((v) => v, (e: Error) => e);

/** Aborts a running task's client: it is answered at once, and its process killed after the grace. */
async function abortAndExpectKill(running: Running<unknown>, client: AbortController): Promise<void> {
  const t0 = performance.now();
  client.abort();
  assert.instance(await settled(running.result), ClientClosed);
  assert.ok(performance.now() - t0 < 200, 'answered at once');
  await running.done;
  const ms = performance.now() - t0;
  assert.ok(ms >= ABORT_GRACE_MS - 10 && ms < ABORT_GRACE_MS + 3000, `process killed ${ms.toFixed(0)} ms after the client went`);
  assert.equal(losses, ['client-gone']);
}

const work = suite('decoder processes');
work.after.each(async () => {
  await pool?.close();
  pool = undefined;
  delete process.env.KLASSIFY_FAULT_DECODER_START;
});
work('read a header and decode a photo; the image crosses to the process once', async () => {
  const p = await start({ processes: 2 });
  assert.equal(p.processes, { ready: 2, total: 2 });
  const photo = await fixture('chelsea.png');
  const header = await p.header(photo, headerJob({ format: 'png' })).result;
  assert.equal([header.width, header.height, header.channels, header.srgb], [451, 300, 3, true]);
  const rgb = await p.pixels(photo, pixelJob({ format: 'png', srgb: true })).result;
  assert.is(rgb.length, 224 * 224 * 3);
  await p.close();
  // The stand-in answers 255 when the image came with the decode, 128 when it was held.
  const fault = await start({ entry: FAULT });
  const image = new Uint8Array([7, 7, 7]);
  await fault.header(image, headerJob()).result;
  assert.is((await fault.pixels(image, pixelJob()).result)[0], 128, 'the decode used the image sent with the header read');
  await fault.header(image, headerJob()).result;
  assert.is((await fault.pixels(Uint8Array.from(image), pixelJob()).result)[0], 255, 'another image object is sent');
});
work('a decode past its deadline is killed at the deadline, and its memory comes back', async () => {
  const p = await start();
  // 3,000 scans of a 4096² progressive JPEG: seconds of one core inside one libjpeg call,
  // which libvips' own timeout cannot interrupt; its coefficients hold ~50 MB.
  const bomb = await jpegScanBomb(3000, 4096, 4096);
  const before = treeRss();
  let doneAt = 0;
  const { ms, outcome } = await withPeakRss(async () => {
    const running = p.pixels(bomb, pixelJob({ timeoutSeconds: 1, estimatedBytes: 4096 * 4096 * 3 }));
    running.done.then(() => (doneAt = performance.now()));
    return running.result;
  });
  const answeredAt = performance.now();
  assert.instance(outcome, DecodeTimeout, String(outcome));
  assert.ok(ms >= 1000 && ms < 6000, `answered after ${ms.toFixed(0)} ms; the deadline is 1 s + 250 ms`);
  await until(() => doneAt > 0, 'the process exits');
  assert.ok(doneAt - answeredAt < 2000, `memory returned ${(doneAt - answeredAt).toFixed(0)} ms after the answer`);
  assert.equal(losses, ['timed-out']);
  await until(() => p.processes.ready === 1, 'a replacement is ready');
  const after = treeRss();
  assert.ok(after - before < 30 * MB, `RSS ${((after - before) / MB).toFixed(0)} MB above where it was`);
  assert.is((await p.pixels(await fixture('chelsea.png'), pixelJob({ format: 'png' })).result).length, 224 * 224 * 3);
});
work('a decode past its memory allowance is killed long before its real cost', async () => {
  const p = await start();
  // A baseline CMYK JPEG with a scan per component keeps 400 MB of coefficients; told it
  // costs nothing, its allowance is 64 MiB and twice the input.
  const bomb = multiScanBaselineJpeg(7070);
  const { rise, outcome } = await withPeakRss(() => p.pixels(bomb, pixelJob({ estimatedBytes: 0 })).result);
  assert.instance(outcome, ClientError, String(outcome));
  assert.is((outcome as ClientError).code, 'image-too-large');
  assert.match((outcome as Error).message, /took more than 65 MiB of memory, its allowance; it was stopped/);
  assert.ok(rise < 250 * MB, `RSS rose ${(rise / MB).toFixed(0)} MB; the decode needs 400 MB`);
  assert.equal(losses, ['over-memory']);
  await until(() => p.processes.ready === 1, 'a replacement is ready');
  assert.is((await p.header(await fixture('chelsea.png'), headerJob({ format: 'png' })).result).width, 451);
});
work('a task whose client goes: dropped while queued; answered at once while running, and killed after the grace', async () => {
  const p = await start();
  const first = new AbortController();
  const slow = p.pixels(await jpegScanBomb(3000, 4096, 4096), pixelJob(), first.signal);
  const client = new AbortController();
  const queued = p.header(await fixture('chelsea.png'), headerJob({ format: 'png' }), client.signal);
  client.abort();
  assert.instance(await settled(queued.result), ClientClosed);
  await queued.done; // at once: it never ran
  await abortAndExpectKill(slow, first);
});
work('a short task whose client goes is finished, not killed: a process costs more to start', async () => {
  const p = await start({ entry: FAULT });
  const client = new AbortController();
  const running = p.header(new Uint8Array([0]), headerJob(), client.signal);
  client.abort();
  assert.instance(await settled(running.result), ClientClosed);
  await running.done;
  await new Promise((r) => setTimeout(r, ABORT_GRACE_MS + 100));
  assert.equal(losses, []);
  assert.equal(p.processes, { ready: 1, total: 1 });
});
work('a process that dies in a task answers unprocessable-image and is replaced at once', async () => {
  const p = await start({ entry: FAULT });
  const outcome = await settled(p.pixels(new Uint8Array([1]), pixelJob({ format: 'gif' })).result);
  assert.instance(outcome, UnprocessableImage);
  assert.match((outcome as Error).message, /The GIF decoder stopped while reading this image/);
  assert.equal(losses, ['crashed']);
  await until(() => p.processes.ready === 1, 'a replacement is ready');
  assert.is((await p.header(new Uint8Array([0]), headerJob()).result).width, 1);
});
work('a process that cannot start fails the start; replacements that keep failing back off, and waiting tasks get 503', async () => {
  process.env.KLASSIFY_FAULT_DECODER_START = 'exit';
  try {
    await DecoderPool.start({ processes: 1, entry: FAULT, log: { warn: () => {} } });
    assert.unreachable('start must fail');
  } catch (err) {
    assert.match((err as Error).message, /decoder process exited \(code 3\) before it was ready/);
  }
  delete process.env.KLASSIFY_FAULT_DECODER_START;
  const p = await start({ entry: FAULT, respawnDelayMs: { initial: 50, max: 200 } });
  process.env.KLASSIFY_FAULT_DECODER_START = 'exit'; // replacements now die at start
  await settled(p.header(new Uint8Array([1]), headerJob()).result);
  const t0 = performance.now();
  const waiting = await settled(p.header(new Uint8Array([0]), headerJob({ timeoutSeconds: 1 })).result);
  assert.instance(waiting, WorkerUnavailable);
  assert.ok(performance.now() - t0 < 5000, 'answered without waiting for its deadline');
  const delays = () => logged.map((m) => Number(/in (\d+) ms/.exec(m)?.[1])).filter(Number.isFinite);
  await until(() => delays().length >= 4, 'four failed starts');
  assert.equal(delays().slice(0, 4), [50, 100, 200, 200], logged.join('\n'));
});
work('one task reads the header and decodes, only if the header passes the limits and fits the place granted', async () => {
  const p = await start();
  const photo = await fixture('chelsea.png');
  const both = await p.decode(photo, decodeJob({ format: 'png' })).result;
  assert.equal([both.header.width, both.header.height, both.header.srgb, both.rgb?.length], [451, 300, true, 224 * 224 * 3]);
  // 451×300 RGB: 406 KB; granted less, the step answers with the header alone.
  const short = await p.decode(photo, decodeJob({ format: 'png', grantedBytes: 400_000 })).result;
  assert.equal([short.header.width, short.rgb], [451, undefined]);
  const refused = await p.decode(photo, decodeJob({ format: 'png', limits: { ...DEFAULT_DECODE_LIMITS, maxPixels: 100_000 } })).result;
  assert.equal([refused.header.width, refused.rgb], [451, undefined], 'over the pixel limit: the server refuses it');
  assert.is((await p.pixels(photo, pixelJob({ format: 'png', srgb: true })).result).length, 224 * 224 * 3, 'the decode step that follows');
  await p.close();
  // The process keeps the image after a step that did not decode, and lets it go after one that did.
  const fault = await start({ entry: FAULT });
  const image = new Uint8Array([3]);
  assert.is((await fault.decode(image, decodeJob()).result).rgb, undefined);
  assert.is((await fault.pixels(image, pixelJob()).result)[0], 128, 'the decode used the image it held');
  const decoded = new Uint8Array([0]);
  assert.is((await fault.decode(decoded, decodeJob()).result).rgb?.[0], 255);
  assert.is((await fault.pixels(decoded, pixelJob()).result)[0], 255, 'sent again once the process let it go');
});
work('a one-step decode that the raw bytes and the header both underestimate is killed by its allowance', async () => {
  const p = await start();
  // The 7070² CMYK baseline JPEG with a scan per component holds 400 MB of coefficients.
  // Described as one scan (as a walk that missed the others would), the header's estimate
  // is its shrunk output, 3 MB: it fits, it decodes, and its allowance stops it.
  const bomb = multiScanBaselineJpeg(7070);
  const fooled = { ...readJpegStructure(bomb), scans: 1 };
  const { rise, outcome } = await withPeakRss(() => p.decode(bomb, decodeJob({ jpeg: fooled, grantedBytes: 100 * MB })).result);
  assert.instance(outcome, ClientError, String(outcome));
  assert.is((outcome as ClientError).code, 'image-too-large');
  assert.match((outcome as Error).message, /took more than \d+ MiB of memory, its allowance; it was stopped/);
  assert.is((outcome as ClientError).details.limitBytes, memoryAllowance(884 * 884 * 4, bomb.length), 'the allowance of the header\'s estimate');
  assert.ok(rise < 250 * MB, `RSS rose ${(rise / MB).toFixed(0)} MB; the decode needs 400 MB`);
  assert.equal(losses, ['over-memory']);
  await until(() => p.processes.ready === 1, 'a replacement is ready');
});
work('a one-step task has a deadline for its header read, and one for its decode from when that starts', async () => {
  const fault = await start({ entry: FAULT });
  // The stand-in reads the header for 800 ms, then never ends its decode.
  const t0 = performance.now();
  const outcome = await settled(fault.decode(new Uint8Array([4]), decodeJob({ timeoutSeconds: 1 })).result);
  const ms = performance.now() - t0;
  assert.instance(outcome, DecodeTimeout);
  assert.ok(ms >= 1900 && ms < 6000, `killed after ${ms.toFixed(0)} ms: 800 ms, then the decode's 1 s + 250 ms`);
  assert.equal(losses, ['timed-out']);
  await fault.close();
  // A real decode past its deadline, in one step (scans uncapped so that it passes the header).
  const p = await start();
  const bomb = await jpegScanBomb(3000, 4096, 4096);
  const job = decodeJob({ jpeg: readJpegStructure(bomb), timeoutSeconds: 1, limits: { ...DEFAULT_DECODE_LIMITS, maxJpegScans: 100_000 }, grantedBytes: 150 * MB });
  const real = await withPeakRss(() => p.decode(bomb, job).result);
  assert.instance(real.outcome, DecodeTimeout, String(real.outcome));
  assert.ok(real.ms >= 1000 && real.ms < 6000, `answered after ${real.ms.toFixed(0)} ms`);
  assert.equal(losses, ['timed-out']);
});
work('a one-step task whose client goes is answered at once and its process killed after the grace', async () => {
  const p = await start();
  const bomb = await jpegScanBomb(3000, 4096, 4096);
  const job = decodeJob({ jpeg: readJpegStructure(bomb), limits: { ...DEFAULT_DECODE_LIMITS, maxJpegScans: 100_000 }, grantedBytes: 150 * MB });
  const client = new AbortController();
  const running = p.decode(bomb, job, client.signal);
  await new Promise((r) => setTimeout(r, 300)); // decoding by now
  await abortAndExpectKill(running, client);
});
work('close() lets a running task end, refuses queued ones and stops every process', async () => {
  const p = await start({ entry: FAULT });
  const running = p.header(new Uint8Array([2]), headerJob()); // answers after 400 ms
  const queued = p.header(new Uint8Array([0]), headerJob());
  const closing = p.close();
  assert.instance(await settled(queued.result), WorkerUnavailable);
  assert.is((await running.result).width, 1);
  await closing;
  assert.equal(p.processes, { ready: 0, total: 0 });
  assert.instance(await settled(p.header(new Uint8Array([0]), headerJob()).result), WorkerUnavailable);
});
work.run();
