// Image bytes → side×side RGB bytes, with sharp (libvips): the header read and the decode.
// In the service these run in a decoder process (decoder-process.ts), where a deadline and a
// memory allowance can stop them; preprocess() runs the same steps in this process, for
// tools and benchmarks that trust their input.
//
// Aspect ratio: the default `stretch` resizes the whole frame to 224×224, as the reference
// TF.js MobileNet does, so predictions match the published ones and nothing at the edges is
// lost. `center-crop` keeps proportions and cuts the long side, which suits subjects in the
// middle of wide photos.
import sharp from 'sharp';
import type { ResizePolicy } from './config.ts';
import { DEFAULT_DECODE_LIMITS, DEFAULT_DECODE_TIMEOUT_SECONDS, type DecodeLimits, type ImageHeader } from './decode-budget.ts';
import { decodeImage, inspectImage, judgeHeader, type DecodeJob, type DecodeSteps, type Decoded, type Inspected, type PixelJob, type Preprocessed } from './decode-image.ts';
import { DecodeTimeout, ImageTooLarge, UnprocessableImage } from './errors.ts';
import { isSrgbProfile } from './headers/index.ts';
import type { Format } from './image-format.ts';
import { INPUT_SIZE } from './model/mobilenet.ts';

// libvips parallelises within one image; our parallelism comes from concurrent requests,
// and one thread per image avoids oversubscribing the cores the inference workers use.
sharp.concurrency(1);
// The decoded-image cache only helps when the same file is read repeatedly.
sharp.cache(false);

/** Reads the header (no pixels): the sizes, bands and depth the decode estimate needs. */
export async function readHeader(bytes: Uint8Array, format: Format, maxPixels: number): Promise<ImageHeader> {
  try {
    // A header read costs the same whatever the size it declares; the pixel limit is
    // checked after it with the dimensions in the message, and again by libvips on decode.
    const meta = await sharp(bytes, { pages: 1, failOn: 'error', limitInputPixels: false }).metadata();
    const display = meta.autoOrient ?? { width: meta.width, height: meta.height };
    return {
      width: meta.width,
      height: meta.height,
      displayWidth: display.width,
      displayHeight: display.height,
      channels: meta.channels,
      depth: meta.depth,
      bitsPerSample: meta.bitsPerSample,
      srgb: isSrgbProfile(meta.icc),
    };
  } catch (err) {
    throw describeDecodeError(err as Error, format, maxPixels);
  }
}

/** Decodes an inspected image to side×side 8-bit sRGB, within the time budget. */
export async function decodePixels(bytes: Uint8Array, job: PixelJob): Promise<Uint8Array> {
  // pages: 1 takes the first frame of an animation; failOn 'error' rejects truncated
  // files instead of classifying a half-grey picture; limitInputPixels is a second guard
  // behind the header check.
  // Converting through an embedded sRGB profile to sRGB changes no pixel but costs 5–6 ms
  // a photo (lcms), about half the decode (docs/performance.md); other profiles
  // (Adobe RGB, Display P3, CMYK) are still converted.
  const input = { pages: 1, failOn: 'error', limitInputPixels: job.maxPixels, sequentialRead: true, ignoreIcc: job.srgb } as const;
  try {
    const { data } = await sharp(bytes, input)
      // libvips checks the clock between strips and stops the pipeline past it.
      .timeout({ seconds: job.timeoutSeconds })
      .rotate() // EXIF orientation
      // Composite transparent pixels over white, as browsers show them on a white page.
      .flatten({ background: '#ffffff' })
      .resize(job.side, job.side, { fit: job.resize === 'center-crop' ? 'cover' : 'fill', position: 'centre' })
      // Grey, CMYK, 16-bit and P3/Adobe RGB inputs all end up as 8-bit sRGB.
      .toColourspace('srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (data.length !== job.side * job.side * 3) throw new Error(`unexpected decoded size ${data.length}`);
    return new Uint8Array(data.buffer, data.byteOffset, data.length);
  } catch (err) {
    if (/timeout/i.test((err as Error).message ?? '')) throw new DecodeTimeout(job.timeoutSeconds);
    throw describeDecodeError(err as Error, job.format, job.maxPixels);
  }
}

/**
 * The header read, then, if the header's estimate passes the limits and is within the place
 * granted, the decode (decode-image.ts). `decoding` is called with that estimate as the
 * decode starts (a decoder process resets its deadline and allowance for it).
 */
export async function readAndDecode(bytes: Uint8Array, job: DecodeJob, decoding: (estimatedBytes: number) => void): Promise<Decoded> {
  const header = await readHeader(bytes, job.format, job.maxPixels);
  let estimatedBytes: number;
  try {
    estimatedBytes = judgeHeader(job.format, header, job, job.side, job.limits).bytes;
  } catch (err) {
    if (err instanceof ImageTooLarge) return { header }; // the server refuses it, as it would after a header step
    throw err;
  }
  if (estimatedBytes > job.grantedBytes) return { header };
  decoding(estimatedBytes);
  return { header, rgb: await decodePixels(bytes, { ...job, estimatedBytes, srgb: header.srgb }) };
}

/**
 * Answers DecodeTimeout once `seconds` (plus a grace for libvips' own stop) have passed,
 * even when libvips cannot stop sooner (it checks its clock only between strips). The
 * decode itself goes on until libvips returns: in this process, nothing can stop it.
 */
export function withDeadline<T>(decoding: Promise<T>, seconds: number): Promise<T> {
  if (!(seconds > 0)) return decoding;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DecodeTimeout(seconds)), seconds * 1000 + 250);
  });
  return Promise.race([decoding, deadline]).finally(() => clearTimeout(timer));
}

/** The header read and the decode in this process: the answer comes at the deadline, the work ends when libvips returns. */
export const IN_PROCESS: DecodeSteps = {
  header(bytes, job) {
    const reading = readHeader(bytes, job.format, job.maxPixels);
    return { result: reading, done: reading };
  },
  pixels(bytes, job) {
    const decoding = decodePixels(bytes, job);
    return { result: withDeadline(decoding, job.timeoutSeconds), done: decoding };
  },
};

type Options = { resize: ResizePolicy; timeoutSeconds?: number } & Partial<DecodeLimits>;

/** The header checks and the decode to the model's input in this process, with the default limits unless given. */
export function preprocess(bytes: Uint8Array, opts: Options): Promise<Preprocessed> {
  const { resize, timeoutSeconds = DEFAULT_DECODE_TIMEOUT_SECONDS, ...limits } = opts;
  return decodeImage(bytes, { resize }, { steps: IN_PROCESS, limits: { ...DEFAULT_DECODE_LIMITS, ...limits }, side: INPUT_SIZE, timeoutSeconds });
}

/** The header checks alone, in this process: what the decode would cost, or the refusal. */
export function inspect(bytes: Uint8Array, limits: DecodeLimits): Promise<Inspected> {
  return inspectImage(bytes, undefined, { steps: IN_PROCESS, limits, side: INPUT_SIZE, timeoutSeconds: DEFAULT_DECODE_TIMEOUT_SECONDS });
}

export function describeDecodeError(err: Error, format: Format, maxPixels: number): Error {
  const msg = err.message ?? '';
  if (/pixel limit/i.test(msg)) {
    return new ImageTooLarge('Image dimensions too large', `The image has more than ${maxPixels} pixels, the configured limit.`, { limitPixels: maxPixels });
  }
  if (/unexpected decoded size/.test(msg)) return err;
  // libvips messages name internal paths and buffers; keep the client message generic.
  return new UnprocessableImage(`The ${format.toUpperCase()} data is corrupt or truncated and cannot be decoded.`);
}

export type { Preprocessed } from './decode-image.ts';
export { sniffFormat, SUPPORTED_FORMATS } from './image-format.ts';
export { isSrgbProfile } from './headers/index.ts';
