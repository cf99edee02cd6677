// Reads an uploaded image from a request: a raw body (image/* or application/octet-stream)
// or the `image` file of a multipart form (parsed by busboy). Both stop at the size limit
// without buffering the rest.
import type { IncomingMessage } from 'node:http';
import busboy from 'busboy';
import { EmptyBody, InvalidInput, PayloadTooLarge, UnsupportedMediaType } from '../errors.ts';
import { SUPPORTED_FORMATS } from '../preprocess.ts';

const RAW_TYPES = /^(image\/[\w.+-]+|application\/octet-stream)$/;

export function mediaType(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
}

/** Refuses a declared Content-Length over the limit before a byte is read. */
export function checkDeclaredLength(req: IncomingMessage, limit: number): void {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw new PayloadTooLarge(limit);
}

export async function readRaw(req: IncomingMessage, limit: number): Promise<Buffer> {
  checkDeclaredLength(req, limit);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      req.pause(); // stop pulling; the response closes the connection
      throw new PayloadTooLarge(limit);
    }
    chunks.push(chunk);
  }
  if (size === 0) throw new EmptyBody();
  return Buffer.concat(chunks, size);
}

export async function readImage(req: IncomingMessage, limit: number): Promise<Buffer> {
  const type = mediaType(req);
  if (type === 'multipart/form-data') return readMultipartImage(req, limit);
  if (RAW_TYPES.test(type)) return readRaw(req, limit);
  throw new UnsupportedMediaType(
    type
      ? `Content-Type ${type} is not accepted; send image/* or application/octet-stream bytes, or multipart/form-data with an "image" file.`
      : 'Content-Type is missing; send image/* or application/octet-stream bytes, or multipart/form-data with an "image" file.',
    SUPPORTED_FORMATS,
  );
}

function readMultipartImage(req: IncomingMessage, limit: number): Promise<Buffer> {
  checkDeclaredLength(req, limit);
  return new Promise((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({ headers: req.headers, limits: { fileSize: limit, files: 1, fields: 20, parts: 21 } });
    } catch (err) {
      return reject(new InvalidInput(`Malformed multipart request: ${(err as Error).message}.`, 'malformed-multipart'));
    }
    let image: Buffer | undefined;
    let failure: PayloadTooLarge | undefined;
    parser.on('file', (field, stream) => {
      if (field !== 'image') {
        stream.resume();
        return;
      }
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('limit', () => {
        failure = new PayloadTooLarge(limit);
        req.unpipe(parser);
        req.pause(); // stop reading; the 413 response closes the connection
        reject(failure);
      });
      stream.on('end', () => (image = Buffer.concat(chunks)));
    });
    parser.on('error', (err: Error) => {
      req.unpipe(parser);
      reject(failure ?? new InvalidInput(`Malformed multipart request: ${err.message}.`, 'malformed-multipart'));
    });
    parser.on('close', () => {
      if (failure) return reject(failure);
      if (image === undefined) return reject(new InvalidInput('The multipart form has no "image" file field.', 'missing-image-field'));
      if (image.length === 0) return reject(new EmptyBody());
      resolve(image);
    });
    req.pipe(parser);
  });
}
