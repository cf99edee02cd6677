// Reads an uploaded image from a request: a raw body (image/* or application/octet-stream)
// or the `image` (or `file`) file of a multipart form, parsed by busboy.
//
// Every body is read through server-kit's consumeBody(), which owns the failure paths: it
// counts every byte read from the request (whatever part of a form they are in) against
// the limit, enforces the time policy that app.ts passes in for the request, and settles
// exactly once, also when the client aborts or the connection closes. Nothing here can
// throw asynchronously: every emitter (request, parser, each file stream) has an `error`
// listener.
import type { IncomingMessage } from 'node:http';
import busboy from 'busboy';
import { BodyError, checkDeclaredLength, consumeBody, type BodyTiming } from '../../../../server-kit/body.ts';
import { ClientClosed, EmptyBody, InvalidInput, PayloadTooLarge, RequestTimeout, UnsupportedMediaType } from '../errors.ts';
import { SUPPORTED_FORMATS } from '../image-format.ts';

const RAW_TYPES = /^(image\/[\w.+-]+|application\/octet-stream)$/;
/** The file fields a form may carry the image in; the first one wins. */
export const FILE_FIELDS = ['image', 'file'];
/** Form fields read alongside the file (the query string wins when both are given). */
export const FORM_PARAMS = ['topk', 'resize', 'model'];
/** What a form may add around the file: boundaries, part headers and small fields. */
export const MULTIPART_OVERHEAD_BYTES = 64 * 1024;

export type { BodyTiming };

/** What app.ts knows about a request that any body reader must honour. */
export interface BodyGuard {
  timing?: BodyTiming;
  /** Aborted when the client goes away; the read then ends at once. */
  signal?: AbortSignal;
  /**
   * Aborted by admission when this client's slow uploads are past its share: the read ends
   * at once with the signal's reason (TooManyUploads), which the request answers.
   */
  cut?: AbortSignal;
}

export interface Upload {
  bytes: Buffer;
  /** topk/resize/model sent as form fields; empty for a raw body. */
  params: URLSearchParams;
}

export function mediaType(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
}

/** The body's failures as the function's own errors; anything else (a parser's) as is. */
function clientError(err: unknown, limit: number): unknown {
  if (!(err instanceof BodyError)) return err;
  if (err.reason === 'too-large') return new PayloadTooLarge(limit);
  if (err.reason === 'too-slow') return new RequestTimeout(err.message);
  return new ClientClosed();
}

/** Refuses a declared Content-Length over `allowed` before a byte is read. */
function refuseDeclared(req: IncomingMessage, allowed: number, limit: number): void {
  try {
    checkDeclaredLength(req, allowed);
  } catch (err) {
    throw clientError(err, limit);
  }
}

/**
 * Reads the request body with the request's guard (server-kit/body.ts), handing each
 * chunk to `onChunk`. `allowed` bytes may be read; `limit` is the one a 413 names (a form
 * is allowed a little more than its file).
 */
async function consume(
  req: IncomingMessage,
  { allowed, limit }: { allowed: number; limit: number },
  { timing, signal, cut }: BodyGuard,
  onChunk: (chunk: Buffer) => void,
  cancel?: AbortSignal,
): Promise<number> {
  const cancels = [cancel, cut].filter((s): s is AbortSignal => s !== undefined);
  try {
    return await consumeBody(req, { maxBytes: allowed, timing, signal, cancel: cancels.length > 1 ? AbortSignal.any(cancels) : cancels[0] }, onChunk);
  } catch (err) {
    throw clientError(err, limit);
  }
}

export async function readRaw(req: IncomingMessage, limit: number, guard: BodyGuard): Promise<Buffer> {
  refuseDeclared(req, limit, limit);
  const chunks: Buffer[] = [];
  const size = await consume(req, { allowed: limit, limit }, guard, (chunk) => chunks.push(chunk));
  if (size === 0) throw new EmptyBody();
  return Buffer.concat(chunks, size);
}

/** The image from a raw body or a multipart form, with any form fields. */
export async function readUpload(req: IncomingMessage, limit: number, guard: BodyGuard): Promise<Upload> {
  const type = mediaType(req);
  if (type === 'multipart/form-data') return readMultipart(req, limit, guard);
  if (RAW_TYPES.test(type)) return { bytes: await readRaw(req, limit, guard), params: new URLSearchParams() };
  throw new UnsupportedMediaType(
    type
      ? `Content-Type ${type} is not accepted; send image/* or application/octet-stream bytes, or multipart/form-data with an "image" file.`
      : 'Content-Type is missing; send image/* or application/octet-stream bytes, or multipart/form-data with an "image" file.',
    SUPPORTED_FORMATS,
  );
}

const malformed = (err: Error) => new InvalidInput(`Malformed multipart request: ${err.message}.`, 'malformed-multipart');

async function readMultipart(req: IncomingMessage, limit: number, guard: BodyGuard): Promise<Upload> {
  // The whole form is bounded, not only the file: bytes in other parts count too.
  const total = limit + MULTIPART_OVERHEAD_BYTES;
  refuseDeclared(req, total, limit);
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
      guard,
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
