/**
 * Reading a request body within bounds of bytes and time. consumeBody() owns the failure
 * paths: it counts every byte against the limit, enforces the time policy, and settles
 * exactly once: at the end of the body, past the limit, past a time bound, when the client
 * aborts or the connection closes, or when the caller cancels. It never throws
 * asynchronously: every listener it adds is removed when it settles, and the request's
 * `error` is one of the events it settles on.
 *
 * Failures are BodyErrors with a reason and no protocol in them; each server maps them to
 * its own problems (413, 408, ...).
 */
import type { IncomingMessage } from 'node:http';

export type BodyFailure = 'too-large' | 'too-slow' | 'closed';

export class BodyError extends Error {
  override name = 'BodyError';
  constructor(
    readonly reason: BodyFailure,
    message: string,
    /** With too-large: the byte limit that was passed. */
    readonly limit?: number,
  ) {
    super(message);
  }
}

/**
 * How slowly a client may send a body (nginx's client_body_timeout plus Apache
 * mod_reqtimeout's MinRate). The whole body must arrive within `timeoutMs`; two reads may
 * be at most `idleTimeoutMs` apart; and with `minRateBytesPerSec`, the body may take
 * `graceMs` plus one second for every `minRateBytesPerSec` bytes received.
 */
export interface BodyTiming {
  timeoutMs: number;
  idleTimeoutMs?: number;
  graceMs?: number;
  minRateBytesPerSec?: number;
}

export interface BodyOptions {
  /** Bytes allowed in all; one more fails with too-large. */
  maxBytes: number;
  timing?: BodyTiming;
  /** Aborted when the client goes away: the read ends at once with `closed`. */
  signal?: AbortSignal;
  /** Aborted by the caller (e.g. a parser gave up): the read ends with the signal's reason. */
  cancel?: AbortSignal;
}

/** Refuses a declared Content-Length over `maxBytes` before a byte is read. */
export function checkDeclaredLength(req: IncomingMessage, maxBytes: number): void {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge(maxBytes);
}

function tooLarge(maxBytes: number): BodyError {
  return new BodyError('too-large', `The body exceeds the limit of ${maxBytes} bytes.`, maxBytes);
}

/**
 * Reads the body, handing each chunk to `onChunk`, and resolves with its size once it has
 * ended. A throw from `onChunk` ends the read with that error. On failure the request is
 * paused: the error reply should close the connection rather than drain an endless body.
 */
export function consumeBody(req: IncomingMessage, { maxBytes, timing, signal, cancel }: BodyOptions, onChunk: (chunk: Buffer) => void): Promise<number> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const started = performance.now();
    let last = started;
    let timer: NodeJS.Timeout | undefined;
    let settled = false;

    const settle = (err?: unknown) => {
      if (settled) return;
      settled = true;
      clearInterval(timer);
      req.off('data', onData).off('end', onEnd).off('aborted', onGone).off('close', onGone).off('error', onGone);
      signal?.removeEventListener('abort', onGone);
      cancel?.removeEventListener('abort', onCancel);
      if (err === undefined) return resolve(size);
      req.pause();
      reject(err);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      last = performance.now();
      if (size > maxBytes) return settle(tooLarge(maxBytes));
      try {
        onChunk(chunk);
      } catch (err) {
        settle(err);
      }
    };
    const onEnd = () => settle();
    // 'close' before 'end', 'aborted' or a socket error all mean the client has gone.
    const onGone = () => settle(new BodyError('closed', 'The client closed the connection before the body ended.'));
    const onCancel = () => settle(cancel!.reason);

    if (signal?.aborted || req.destroyed) return onGone();
    if (cancel?.aborted) return onCancel();
    if (req.readableEnded) return settle(); // nothing left to read
    signal?.addEventListener('abort', onGone);
    cancel?.addEventListener('abort', onCancel);
    req.on('data', onData).on('end', onEnd).on('aborted', onGone).on('close', onGone).on('error', onGone);
    if (timing) {
      const { timeoutMs, idleTimeoutMs = Infinity, graceMs = Infinity, minRateBytesPerSec } = timing;
      const check = () => {
        const now = performance.now();
        if (now - last > idleTimeoutMs) {
          settle(new BodyError('too-slow', `No body data arrived for ${idleTimeoutMs} ms; the upload was stopped.`));
        } else if (now - started > timeoutMs) {
          settle(new BodyError('too-slow', `The body took longer than ${timeoutMs} ms to arrive; the upload was stopped.`));
        } else if (minRateBytesPerSec && now - started > graceMs + (size / minRateBytesPerSec) * 1000) {
          settle(
            new BodyError(
              'too-slow',
              `The body arrived slower than ${minRateBytesPerSec} bytes/s (${size} bytes in ${Math.round(now - started)} ms); the upload was stopped.`,
            ),
          );
        }
      };
      // Checked often enough that each bound is kept to within a quarter of itself (and 1 s).
      timer = setInterval(check, Math.max(20, Math.min(1000, timeoutMs / 4, idleTimeoutMs / 4, graceMs / 4)));
      timer.unref();
    }
  });
}

/** The whole body in one buffer, read with consumeBody(). */
export async function readBody(req: IncomingMessage, options: BodyOptions): Promise<Buffer> {
  checkDeclaredLength(req, options.maxBytes);
  const chunks: Buffer[] = [];
  const size = await consumeBody(req, options, (chunk) => chunks.push(chunk));
  return Buffer.concat(chunks, size);
}
