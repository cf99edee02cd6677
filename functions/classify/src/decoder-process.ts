// A decoder process: `node decoder-process.js`, forked by decoder-pool.ts. It loads sharp
// and nothing of the service, runs one header read or decode at a time, and can be killed
// at any moment: it holds no state but the task in hand.
//
// While a task runs, it compares its own RSS with what it had when the task began, every
// few milliseconds (the work runs on a libuv thread, so this thread is free), and reports a
// task past its allowance; the pool then kills it. It also volunteers as the first process
// the kernel's OOM killer takes, so that a decode the estimate missed ends here, not in the
// server.
import { writeFileSync } from 'node:fs';
import sharp from 'sharp';
import { memoryAllowance, type ImageHeader } from './decode-budget.ts';
import type { DecodeJob, Decoded, HeaderJob, PixelJob } from './decode-image.ts';
import { ClientError } from './errors.ts';
import { decodePixels, readAndDecode, readHeader } from './preprocess.ts';

/**
 * One task: a header read, a decode, or both in one ('decode', decode-image.ts). `bytes` is
 * left out when this process already holds the image: a decode that follows a header read
 * of the same image usually runs in the same process, so the image crosses the process
 * boundary once. `memoryBytes` is the task's allowance (for 'decode', the header read's).
 */
export type ToDecoder =
  | { id: number; op: 'header'; bytes?: Uint8Array; job: HeaderJob; memoryBytes: number }
  | { id: number; op: 'pixels'; bytes?: Uint8Array; job: PixelJob; memoryBytes: number }
  | { id: number; op: 'decode'; bytes?: Uint8Array; job: DecodeJob; memoryBytes: number };

export type FromDecoder =
  | { type: 'ready' }
  /** A 'decode' task's header passed: its decode starts now, with this allowance. */
  | { type: 'decoding'; id: number; memoryBytes: number }
  | { type: 'done'; id: number; value: ImageHeader | Uint8Array | Decoded }
  | { type: 'failed'; id: number; error: SentError }
  | { type: 'over-memory'; id: number; rss: number };

/** A ClientError as data (code, title, detail, facts); anything else only as a message. */
export type SentError = { code?: ClientError['code']; title?: string; message: string; details?: Record<string, unknown> };

const WATCH_MS = 5;
/** `gc`, with --expose-gc (decoder-pool.ts passes it). */
const collectGarbage = (globalThis as { gc?: (options: { type: 'minor' | 'major' }) => void }).gc;

function send(msg: FromDecoder): void {
  // The server may be gone (the channel closes before 'disconnect' is handled): a failed
  // send is not an error here, and 'disconnect' ends this process.
  if (process.connected) process.send?.(msg, undefined, undefined, () => {});
}

function toSent(err: unknown): SentError {
  if (err instanceof ClientError) return { code: err.code, title: err.title, message: err.message, details: err.details };
  return { message: String((err as Error)?.message ?? err) };
}

/**
 * The image of the latest task, until its decode is done, copied into one buffer that lives
 * as long as the process (as large as the largest image it has read). Kept as the Buffer the
 * message arrived in, across tasks, images were not freed: the process held 45 MB more
 * after 30 photos of 0.8 MB. Copied, each message is young garbage that the collection
 * after every task frees (about 0.1 ms, and 0.1 ms a MB for the copy).
 */
let slab = Buffer.alloc(0);
let input: Uint8Array | undefined;

function take(bytes: Uint8Array): Uint8Array {
  if (slab.length < bytes.length) slab = Buffer.allocUnsafeSlow(bytes.length);
  slab.set(bytes);
  return slab.subarray(0, bytes.length);
}

async function run(msg: ToDecoder): Promise<void> {
  if (msg.bytes) input = take(msg.bytes);
  const bytes = input;
  if (msg.op === 'pixels') input = undefined; // the last step for this image
  if (!bytes) return send({ type: 'failed', id: msg.id, error: { message: 'no image was sent with the task' } });
  const base = process.memoryUsage.rss();
  let allowance = msg.memoryBytes;
  const watchdog = setInterval(() => {
    const rise = process.memoryUsage.rss() - base;
    if (rise <= allowance) return;
    clearInterval(watchdog);
    send({ type: 'over-memory', id: msg.id, rss: rise });
  }, WATCH_MS);
  // A one-step decode's allowance is its header's estimate; RSS still counts from the task's start.
  const decoding = (estimatedBytes: number) => {
    allowance = memoryAllowance(estimatedBytes, bytes.length);
    send({ type: 'decoding', id: msg.id, memoryBytes: allowance });
  };
  try {
    let value: ImageHeader | Uint8Array | Decoded;
    if (msg.op === 'header') value = await readHeader(bytes, msg.job.format, msg.job.maxPixels);
    else if (msg.op === 'pixels') value = await decodePixels(bytes, msg.job);
    else {
      value = await readAndDecode(bytes, msg.job, decoding);
      if (value.rgb) input = undefined; // decoded: the last step; otherwise a decode step may follow
    }
    send({ type: 'done', id: msg.id, value });
  } catch (err) {
    send({ type: 'failed', id: msg.id, error: toSent(err) });
  } finally {
    clearInterval(watchdog);
    // The message and the answer are young garbage that V8, with a heap this small, would
    // collect only after tens of MB of them.
    collectGarbage?.({ type: 'minor' });
  }
}

async function main(): Promise<void> {
  try {
    writeFileSync('/proc/self/oom_score_adj', '1000'); // Linux; raising one's own needs no privilege
  } catch {
    // elsewhere, the deadline and the allowance still hold
  }
  // The server going away (even by SIGKILL) closes the channel: nothing is left running.
  process.on('disconnect', () => process.exit(0));
  // The first decode loads codecs and libvips' type system; do it before reporting ready.
  const warm = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#808080' } }).jpeg().toBuffer();
  await decodePixels(warm, { format: 'jpeg', maxPixels: 64, timeoutSeconds: 10, estimatedBytes: 0, side: 8, resize: 'stretch', srgb: false });
  process.on('message', (msg: ToDecoder) => void run(msg));
  send({ type: 'ready' });
}

await main();
