// Reads an uploaded image from a request: a raw body (image/* or application/octet-stream)
// or the `image` (or `file`) file of a multipart form, parsed by busboy.
//
// Every body is read through consume(), which owns the failure paths: it counts every byte
// read from the request (whatever part of a form they are in) against the limit, enforces
// the time policy that app.ts registers for the request, and settles exactly once, also
// when the client aborts or the connection closes. Nothing here can throw asynchronously:
// every emitter (request, parser, each file stream) has an `error` listener.
import type { IncomingMessage } from 'node:http';
import busboy from 'busboy';
import { ClientClosed, EmptyBody, InvalidInput, PayloadTooLarge, RequestTimeout, UnsupportedMediaType } from '../errors.ts';
import { SUPPORTED_FORMATS } from '../preprocess.ts';

const RAW_TYPES = /^(image\/[\w.+-]+|application\/octet-stream)$/;
/** The file fields a form may carry the image in; the first one wins. */
export const FILE_FIELDS = ['image', 'file'];
/** Form fields read alongside the file (the query string wins when both are given). */
export const FORM_PARAMS = ['topk', 'resize'];
/** What a form may add around the file: boundaries, part headers and small fields. */
export const MULTIPART_OVERHEAD_BYTES = 64 * 1024;

/**
 * How slowly a client may send a body (nginx's client_body_timeout plus Apache
 * mod_reqtimeout's MinRate). The body may take `graceMs` plus one second for every
 * `minRateBytesPerSec` bytes received, never more than `timeoutMs` in all, and never more
 * than `idleTimeoutMs` between two reads.
 */
export interface BodyTiming {
  idleTimeoutMs: number;
  graceMs: number;
  minRateBytesPerSec: number;
  timeoutMs: number;
}

/** What app.ts knows about a request that any body reader must honour. */
export interface BodyGuard {
  timing?: BodyTiming;
  /** Aborted when the client goes away; the read then ends at once. */
  signal?: AbortSignal;
}

// A request-scoped context, so that every reader of a body (this module's and the
// CloudEvents handler's, through readRaw) applies the same policy without threading it
// through each signature.
const guards = new WeakMap<IncomingMessage, BodyGuard>();

export function guardBody(req: IncomingMessage, guard: BodyGuard): void {
  guards.set(req, guard);
}

export interface Upload {
  bytes: Buffer;
  /** topk/resize sent as form fields; empty for a raw body. */
  params: URLSearchParams;
}

export function mediaType(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
}

/**
 * Refuses a declared Content-Length over `allowed` before a byte is read. `limit` is the
 * limit the client is told about (a form is allowed a little more than its file).
 */
export function checkDeclaredLength(req: IncomingMessage, allowed: number, limit = allowed): void {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > allowed) throw new PayloadTooLarge(limit);
}

/**
 * Reads the request body, handing each chunk to `onChunk`, and resolves with its size once
 * it has ended. Rejects with PayloadTooLarge past `allowed` bytes, RequestTimeout when the
 * client is too slow, ClientClosed when it goes away, or `cancel`'s reason. On failure the
 * request is paused: the error reply closes the connection instead of draining the rest.
 */
function consume(
  req: IncomingMessage,
  { allowed, limit }: { allowed: number; limit: number },
  onChunk: (chunk: Buffer) => void,
  cancel?: AbortSignal,
): Promise<number> {
  const { timing, signal } = guards.get(req) ?? {};
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
      if (size > allowed) return settle(new PayloadTooLarge(limit));
      try {
        onChunk(chunk);
      } catch (err) {
        settle(err);
      }
    };
    const onEnd = () => settle();
    // 'close' before 'end', 'aborted' or a socket error all mean the client has gone.
    const onGone = () => settle(new ClientClosed());
    const onCancel = () => settle(cancel!.reason);

    if (signal?.aborted || req.destroyed) return settle(new ClientClosed());
    if (cancel?.aborted) return onCancel();
    if (req.readableEnded) return settle(); // nothing left to read
    signal?.addEventListener('abort', onGone);
    cancel?.addEventListener('abort', onCancel);
    req.on('data', onData).on('end', onEnd).on('aborted', onGone).on('close', onGone).on('error', onGone);
    if (timing) {
      const { idleTimeoutMs, graceMs, minRateBytesPerSec, timeoutMs } = timing;
      const check = () => {
        const now = performance.now();
        if (now - last > idleTimeoutMs) {
          settle(new RequestTimeout(`No body data arrived for ${idleTimeoutMs} ms; the upload was stopped.`));
        } else if (now - started > timeoutMs) {
          settle(new RequestTimeout(`The body took longer than ${timeoutMs} ms to arrive; the upload was stopped.`));
        } else if (now - started > graceMs + (size / minRateBytesPerSec) * 1000) {
          settle(
            new RequestTimeout(
              `The body arrived slower than ${minRateBytesPerSec} bytes/s (${size} bytes in ${Math.round(now - started)} ms); the upload was stopped.`,
            ),
          );
        }
      };
      timer = setInterval(check, Math.max(20, Math.min(1000, idleTimeoutMs / 4, graceMs / 4)));
      timer.unref();
    }
  });
}

export async function readRaw(req: IncomingMessage, limit: number): Promise<Buffer> {
  checkDeclaredLength(req, limit);
  const chunks: Buffer[] = [];
  const size = await consume(req, { allowed: limit, limit }, (chunk) => chunks.push(chunk));
  if (size === 0) throw new EmptyBody();
  return Buffer.concat(chunks, size);
}

/** The image from a raw body or a multipart form, with any form fields. */
export async function readUpload(req: IncomingMessage, limit: number): Promise<Upload> {
  const type = mediaType(req);
  if (type === 'multipart/form-data') return readMultipart(req, limit);
  if (RAW_TYPES.test(type)) return { bytes: await readRaw(req, limit), params: new URLSearchParams() };
  throw new UnsupportedMediaType(
    type
      ? `Content-Type ${type} is not accepted; send image/* or application/octet-stream bytes, or multipart/form-data with an "image" file.`
      : 'Content-Type is missing; send image/* or application/octet-stream bytes, or multipart/form-data with an "image" file.',
    SUPPORTED_FORMATS,
  );
}

const malformed = (err: Error) => new InvalidInput(`Malformed multipart request: ${err.message}.`, 'malformed-multipart');

async function readMultipart(req: IncomingMessage, limit: number): Promise<Upload> {
  // The whole form is bounded, not only the file: bytes in other parts count too.
  const total = limit + MULTIPART_OVERHEAD_BYTES;
  checkDeclaredLength(req, total, limit);
  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: req.headers,
      limits: { fileSize: limit, files: 4, fields: 16, parts: 20, fieldSize: 1024, headerPairs: 16 },
    });
  } catch (err) {
    throw malformed(err as Error);
  }
  const params = new URLSearchParams();
  const parsed = new Promise<Upload>((resolve, reject) => {
    let image: Buffer | undefined;
    let taken = false;
    parser.on('file', (field, file) => {
      file.on('error', (err: Error) => reject(malformed(err)));
      if (taken || !FILE_FIELDS.includes(field)) return void file.resume();
      taken = true;
      const chunks: Buffer[] = [];
      file.on('data', (c: Buffer) => chunks.push(c));
      file.on('limit', () => reject(new PayloadTooLarge(limit)));
      file.on('end', () => (image = Buffer.concat(chunks)));
    });
    parser.on('field', (field, value) => {
      if (FORM_PARAMS.includes(field) && !params.has(field)) params.set(field, value);
    });
    parser.on('error', (err: Error) => reject(malformed(err)));
    parser.on('close', () => {
      if (image === undefined) return reject(new InvalidInput('The multipart form has no "image" (or "file") file field.', 'missing-image-field'));
      if (image.length === 0) return reject(new EmptyBody());
      resolve({ bytes: image, params });
    });
  });
  // A parse error ends the read at once, instead of reading a body nobody will parse.
  const cancel = new AbortController();
  parsed.catch((err) => cancel.abort(err));
  try {
    await consume(
      req,
      { allowed: total, limit },
      (chunk) => {
        if (parser.write(chunk)) return;
        req.pause();
        parser.once('drain', () => cancel.signal.aborted || req.resume());
      },
      cancel.signal,
    );
  } catch (err) {
    parser.destroy(); // its error, if any, lands on the listeners above and is ignored
    throw err;
  }
  parser.end();
  return parsed;
}
