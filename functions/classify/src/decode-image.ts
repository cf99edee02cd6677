// Image bytes → the model's input (side×side RGB, 224² for MobileNet), through two lines
// of defence.
//
// The first is the header: the raw-byte parsers (headers/) refuse what a header read would
// pay for (frames, text chunks) and read what the estimate needs (JPEG scans, TIFF tiles);
// then the header read, and an estimate of the decode's memory that must fit the limits
// (decode-budget.ts). The second does not depend on parsing correctly: the header read and
// the decode are steps that run where they can be stopped (a decoder process with a
// deadline and a memory allowance, decoder-pool.ts), each holding a place in the decode gate
// for its estimated bytes until its memory is really returned.
//
// Where the steps run in a decoder process, each costs a round trip. So where the raw bytes
// declare the image (a JPEG's frame header, a PNG's IHDR) and the limits allow what they
// declare, the header read and the decode are one step, holding a place for the larger of
// their two estimates: the decoder reads the header, judges it as the server would, and
// decodes only if it passes the limits and fits that place. If it does not, the step answers
// with the header alone, and the server goes on as with two steps: it refuses the image, or
// decodes it with a place for the header's estimate.
//
// Protocol-free: the classifier and any other transport call decodeImage() with the bytes,
// the resize policy and the client's abort signal.
import type { ResizePolicy } from './config.ts';
import { checkDecodeCost, estimateDecodeCost, type DecodeCost, type DecodeLimits, type ImageHeader } from './decode-budget.ts';
import type { DecodeGate } from './decode-gate.ts';
import { ClientClosed, ImageTooLarge } from './errors.ts';
import { readStructure, type ImageStructure } from './headers/index.ts';
import { sniffFormat, type Format } from './image-format.ts';

export interface Preprocessed {
  rgb: Uint8Array;
  format: Format;
  /** As displayed, after EXIF orientation (a portrait phone photo is taller than wide). */
  width: number;
  height: number;
}

export interface DecodeRequest {
  resize: ResizePolicy;
  /** Aborts when the client has gone: work not yet started for it is not started. */
  signal?: AbortSignal;
}

/** What a step is asked to do; `estimatedBytes` sizes its memory allowance. */
export interface HeaderJob {
  format: Format;
  maxPixels: number;
  /** Wall-clock budget, in whole seconds (libvips' granularity). */
  timeoutSeconds: number;
  estimatedBytes: number;
}

export interface PixelJob extends HeaderJob {
  /** The output is side×side RGB: the model's input size. */
  side: number;
  resize: ResizePolicy;
  /** The embedded profile is sRGB: converting through it changes nothing. */
  srgb: boolean;
}

/**
 * The header read and the decode as one step. `estimatedBytes` sizes the header read's
 * allowance; the decode runs only if the header's estimate passes `limits` and is within
 * `grantedBytes` (the place held in the gate), and its allowance comes from that estimate.
 */
export interface DecodeJob extends Omit<PixelJob, 'srgb'> {
  limits: DecodeLimits;
  jpeg?: ImageStructure['jpeg'];
  tiffTile?: ImageStructure['tiffTile'];
  grantedBytes: number;
}

/** A one-step answer: the header, and the pixels unless the decode did not fit. */
export interface Decoded {
  header: ImageHeader;
  rgb?: Uint8Array;
}

/** A step under way: its answer, and when its work has really ended and its memory is back. */
export interface Running<T> {
  result: Promise<T>;
  done: Promise<unknown>;
}

/** Where the sharp calls run: in this process, or in a decoder process. */
export interface DecodeSteps {
  header(bytes: Uint8Array, job: HeaderJob, signal?: AbortSignal): Running<ImageHeader>;
  pixels(bytes: Uint8Array, job: PixelJob, signal?: AbortSignal): Running<Uint8Array>;
  /** Both as one step: where each step costs a round trip to another process. */
  decode?(bytes: Uint8Array, job: DecodeJob, signal?: AbortSignal): Running<Decoded>;
}

export interface DecodeContext {
  steps: DecodeSteps;
  limits: DecodeLimits;
  /** The output is side×side RGB: the model's input size. */
  side: number;
  timeoutSeconds: number;
  /** Bounds the bytes and the number of steps running at once; none for tools. */
  gate?: DecodeGate;
}

/** An image whose header has been read and whose decode cost fits the limits. */
export interface Inspected {
  format: Format;
  structure: ImageStructure;
  header: ImageHeader;
  cost: DecodeCost;
}

/**
 * What a header read holds: the input, which the decoder copies, and libvips' copy of the
 * metadata. Text chunks, which could be large, are gone by then (headers/png.ts).
 */
const headerBytes = (input: Uint8Array) => 2 * input.length;

/** The raw-byte checks, then the header read, then the estimate against the limits. */
export async function inspectImage(bytes: Uint8Array, signal: AbortSignal | undefined, ctx: DecodeContext): Promise<Inspected> {
  throwIfGone(signal);
  const format = sniffFormat(bytes);
  return inspectStructure(format, readStructure(format, bytes, ctx.limits), signal, ctx);
}

async function inspectStructure(format: Format, structure: ImageStructure, signal: AbortSignal | undefined, ctx: DecodeContext): Promise<Inspected> {
  const job: HeaderJob = { format, maxPixels: ctx.limits.maxPixels, timeoutSeconds: ctx.timeoutSeconds, estimatedBytes: headerBytes(structure.bytes) };
  const header = await gated(ctx, job.estimatedBytes, signal, () => ctx.steps.header(structure.bytes, job, signal));
  return { format, structure, header, cost: judgeHeader(format, header, structure, ctx.side, ctx.limits) };
}

/** The header's decode estimate, or the refusal (ImageTooLarge) naming the limit it breaks. */
export function judgeHeader(format: Format, header: ImageHeader, structure: Pick<ImageStructure, 'jpeg' | 'tiffTile'>, side: number, limits: DecodeLimits): DecodeCost {
  const cost = estimateDecodeCost(format, header, side, structure.jpeg, structure.tiffTile);
  checkDecodeCost(cost, { width: header.displayWidth, height: header.displayHeight }, limits, structure.jpeg);
  return cost;
}

/** bytes → side×side RGB: the checks on the raw bytes, the header read, and the decode, each holding a place in the gate for its estimate. */
export async function decodeImage(bytes: Uint8Array, req: DecodeRequest, ctx: DecodeContext): Promise<Preprocessed> {
  throwIfGone(req.signal);
  const format = sniffFormat(bytes);
  const structure = readStructure(format, bytes, ctx.limits);
  const place = ctx.steps.decode && placeForOneStep(format, structure, ctx);
  if (!place) return decodeInspected(await inspectStructure(format, structure, req.signal, ctx), req, ctx);
  const job: DecodeJob = {
    format,
    maxPixels: ctx.limits.maxPixels,
    timeoutSeconds: ctx.timeoutSeconds,
    estimatedBytes: headerBytes(structure.bytes),
    side: ctx.side,
    resize: req.resize,
    limits: ctx.limits,
    jpeg: structure.jpeg,
    tiffTile: structure.tiffTile,
    grantedBytes: place,
  };
  const { header, rgb } = await gated(ctx, place, req.signal, () => ctx.steps.decode!(structure.bytes, job, req.signal));
  // The server judges the header as the decoder did: the same refusal as with two steps.
  const cost = judgeHeader(format, header, structure, ctx.side, ctx.limits);
  if (rgb) return { rgb, format, width: header.displayWidth, height: header.displayHeight };
  // The raw bytes declared less than the header read found.
  return decodeInspected({ format, structure, header, cost }, req, ctx);
}

/** The decode of an inspected image, with a place in the gate for the header's estimate. */
async function decodeInspected({ format, structure, header, cost }: Inspected, req: DecodeRequest, ctx: DecodeContext): Promise<Preprocessed> {
  const job: PixelJob = { format, maxPixels: ctx.limits.maxPixels, timeoutSeconds: ctx.timeoutSeconds, estimatedBytes: cost.bytes, side: ctx.side, resize: req.resize, srgb: header.srgb };
  const rgb = await gated(ctx, cost.bytes, req.signal, () => ctx.steps.pixels(structure.bytes, job, req.signal));
  return { rgb, format, width: header.displayWidth, height: header.displayHeight };
}

/**
 * The place a one-step header read and decode holds: the larger of the header read's weight
 * and the decode's estimate from what the raw bytes declare. None (two steps) when they
 * declare nothing, or an image the limits refuse: its header read, which weighs little,
 * decides the refusal, without taking the gate's whole budget meanwhile.
 */
function placeForOneStep(format: Format, structure: ImageStructure, ctx: DecodeContext): number | undefined {
  const { declared } = structure;
  if (!declared) return undefined;
  const cost = estimateDecodeCost(format, declared, ctx.side, structure.jpeg, structure.tiffTile);
  try {
    checkDecodeCost(cost, declared, ctx.limits, structure.jpeg);
  } catch (err) {
    if (err instanceof ImageTooLarge) return undefined;
    throw err;
  }
  return Math.max(headerBytes(structure.bytes), cost.bytes);
}

/** Runs a step holding a place in the gate for `bytes`, released once the step's work has ended. */
async function gated<T>(ctx: DecodeContext, bytes: number, signal: AbortSignal | undefined, start: () => Running<T>): Promise<T> {
  const release = ctx.gate ? await ctx.gate.acquire(bytes, signal) : () => {};
  let running: Running<T>;
  try {
    throwIfGone(signal);
    running = start();
  } catch (err) {
    release();
    throw err;
  }
  running.done.then(release, release);
  return running.result;
}

function throwIfGone(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new ClientClosed();
}
