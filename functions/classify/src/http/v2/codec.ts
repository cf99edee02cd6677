// The Open Inference Protocol's wire format, with no model in it: a JSON object, optionally
// followed by binary tensor data (Triton's binary tensor data extension). The request's
// Inference-Header-Content-Length header gives the JSON's length; each binary tensor
// follows in input order, its size in its `binary_data_size` parameter. Binary data is
// little-endian, row-major; a BYTES element is a 4-byte little-endian length, then its bytes.
import zlib from 'node:zlib';
import { InvalidInput, PayloadTooLarge } from '../../errors.ts';
import { QUOTE, stringEnd } from '../../json-scan.ts';

export const HEADER_LENGTH = 'inference-header-content-length';

/** The request body's JSON object and the binary data after it. */
export interface SplitBody {
  json: Buffer;
  binary: Buffer;
}

/**
 * Splits a body at the length Inference-Header-Content-Length gives; without it, the whole
 * body is JSON. A length of 0 is Triton's "raw binary request", meant for models with one
 * input: ours have two, so the JSON object must say which one is sent.
 */
export function splitBody(body: Buffer, headerLength: string | string[] | undefined): SplitBody {
  if (headerLength === undefined) return { json: body, binary: body.subarray(body.length) };
  const value = Array.isArray(headerLength) ? headerLength.join(',') : headerLength.trim();
  if (!/^\d{1,15}$/.test(value)) {
    throw new InvalidInput(`Inference-Header-Content-Length must be a byte count; got ${JSON.stringify(value.slice(0, 40))}.`);
  }
  const length = Number(value);
  if (length === 0) {
    throw new InvalidInput(
      'Inference-Header-Content-Length: 0 (a raw binary request) needs a model with one input; this one has two (image, pixels). Send the JSON inference request first and give its length.',
    );
  }
  if (length > body.length) {
    throw new InvalidInput(`Inference-Header-Content-Length is ${length}, past the end of the ${body.length}-byte body.`);
  }
  return { json: body.subarray(0, length), binary: body.subarray(length) };
}

/**
 * Undoes a Content-Encoding that tritonclient may apply (gzip or deflate), into at most
 * `limit` bytes: a small body that inflates past the body limit is refused like a large one.
 */
export function decodeContent(body: Buffer, encoding: string | undefined, limit: number): Buffer {
  const name = (encoding ?? '').trim().toLowerCase();
  if (name === '' || name === 'identity') return body;
  if (name !== 'gzip' && name !== 'deflate') {
    throw new InvalidInput(`Content-Encoding ${JSON.stringify(name.slice(0, 40))} is not supported; send identity, gzip or deflate.`);
  }
  try {
    return name === 'gzip' ? zlib.gunzipSync(body, { maxOutputLength: limit }) : zlib.inflateSync(body, { maxOutputLength: limit });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw new PayloadTooLarge(limit);
    throw new InvalidInput(`The ${name} body cannot be decompressed: ${(err as Error).message}.`);
  }
}

/** What a valid request's JSON can hold, to bound what parsing it may cost. */
export interface JsonBounds {
  /** Arrays and objects nested in each other. */
  maxDepth: number;
  /** Arrays and objects in all. */
  maxContainers: number;
  /** Commas: every array element or object member but the first of each. */
  maxSeparators: number;
}

/**
 * JSON.parse is quick on honest text, but hostile text costs main-thread time and heap out
 * of proportion to its bytes: 10 MiB of `[[],[],…]` took 0.7 s and 150 MB of heap, 5 M
 * nested brackets 1.6 s and 300 MB (Node 20). So the text is walked first, skipping
 * strings, and refused as soon as it holds more structure than a valid request can.
 */
export function parseJson(text: Buffer, bounds: JsonBounds): unknown {
  let depth = 0;
  let containers = 0;
  let separators = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === QUOTE) {
      i = stringEnd(text, i);
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > bounds.maxDepth) throw new InvalidInput(`The request JSON nests arrays and objects deeper than ${bounds.maxDepth} levels; a valid request needs fewer.`);
      if (++containers > bounds.maxContainers) throw new InvalidInput(`The request JSON holds more than ${bounds.maxContainers} arrays and objects; a valid request needs fewer.`);
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    } else if (c === 0x2c && ++separators > bounds.maxSeparators) {
      throw new InvalidInput(`The request JSON holds more than ${bounds.maxSeparators} values; a valid request needs fewer.`);
    }
  }
  try {
    return JSON.parse(text.toString('utf8'));
  } catch (err) {
    throw new InvalidInput(`The inference request is not valid JSON: ${(err as Error).message}.`);
  }
}

/** Reads `count` BYTES elements that must fill `data` exactly. */
export function readBytesElements(data: Buffer, count: number, what: string): Buffer[] {
  const elements: Buffer[] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    if (data.length - at < 4) throw new InvalidInput(`${what}: element ${i} has no 4-byte length; the binary data ends after ${i} of ${count} elements.`);
    const length = data.readUInt32LE(at);
    at += 4;
    if (length > data.length - at) throw new InvalidInput(`${what}: element ${i} declares ${length} bytes, past the end of the binary data (${data.length - at} bytes left).`);
    elements.push(data.subarray(at, at + length));
    at += length;
  }
  if (at !== data.length) throw new InvalidInput(`${what}: ${data.length - at} bytes follow the last of its ${count} elements.`);
  return elements;
}

/** BYTES elements in the binary format: each a 4-byte little-endian length, then its bytes. */
export function writeBytesElements(elements: readonly string[]): Buffer {
  const parts = elements.map((element) => Buffer.from(element, 'utf8'));
  const out = Buffer.alloc(parts.reduce((sum, part) => sum + 4 + part.length, 0));
  let at = 0;
  for (const part of parts) {
    at = out.writeUInt32LE(part.length, at);
    at += part.copy(out, at);
  }
  return out;
}

/** FP32 values, little-endian whatever the host's byte order. */
export function writeFp32(values: Float32Array): Buffer {
  const out = Buffer.alloc(values.length * 4);
  for (let i = 0; i < values.length; i++) out.writeFloatLE(values[i], i * 4);
  return out;
}

export interface OutputTensor {
  name: string;
  datatype: 'FP32' | 'BYTES';
  shape: number[];
  data: Float32Array | readonly string[];
  /** Sent after the JSON (binary tensor data extension) rather than in it. */
  binary: boolean;
}

export interface EncodedResponse {
  body: Buffer;
  headers: Record<string, string>;
}

/**
 * $inference_response, with each binary output's data after the JSON in output order. Only
 * a response that holds binary data carries Inference-Header-Content-Length.
 */
export function encodeResponse(head: Record<string, unknown>, outputs: readonly OutputTensor[]): EncodedResponse {
  const binaries: Buffer[] = [];
  const described = outputs.map(({ name, datatype, shape, data, binary }) => {
    if (!binary) return { name, datatype, shape, data: Array.from(data as ArrayLike<number | string>) };
    const bytes = datatype === 'BYTES' ? writeBytesElements(data as readonly string[]) : writeFp32(data as Float32Array);
    binaries.push(bytes);
    return { name, datatype, shape, parameters: { binary_data_size: bytes.length } };
  });
  const json = Buffer.from(JSON.stringify({ ...head, outputs: described }), 'utf8');
  if (binaries.length === 0) return { body: json, headers: { 'content-type': 'application/json' } };
  return {
    body: Buffer.concat([json, ...binaries]),
    headers: { 'content-type': 'application/octet-stream', [HEADER_LENGTH]: String(json.length) },
  };
}
