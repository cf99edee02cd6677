// Image bytes → 224×224 RGB bytes, with sharp (libvips).
//
// The format is sniffed from the bytes, never from Content-Type. Only raster formats that
// sharp's prebuilt libvips decodes are passed on; SVG is refused before it reaches a
// decoder, because rendering it server-side can fetch external resources.
//
// Aspect ratio: the default `stretch` resizes the whole frame to 224×224, as the reference
// TF.js MobileNet does, so predictions match the published ones and nothing at the edges is
// lost. `center-crop` keeps proportions and cuts the long side, which suits subjects in the
// middle of wide photos.
import icc from 'icc';
import sharp, { type Metadata } from 'sharp';
import type { ResizePolicy } from './config.ts';
import { checkDecodeCost, DEFAULT_DECODE_LIMITS, DEFAULT_DECODE_TIMEOUT_SECONDS, estimateDecodeCost, readJpegStructure, readTiffTile, type DecodeCost, type DecodeLimits } from './decode-budget.ts';
import { INPUT_SIZE } from './model/mobilenet.ts';
import { DecodeTimeout, ImageTooLarge, UnprocessableImage, UnsupportedMediaType } from './errors.ts';

export const SUPPORTED_FORMATS = ['jpeg', 'png', 'webp', 'gif', 'avif', 'tiff'] as const;
type Format = (typeof SUPPORTED_FORMATS)[number];

// libvips parallelises within one image; our parallelism comes from concurrent requests,
// and one thread per image avoids oversubscribing the cores the inference workers use.
sharp.concurrency(1);
// The decoded-image cache only helps when the same file is read repeatedly.
sharp.cache(false);

export interface Preprocessed {
  rgb: Uint8Array;
  format: Format;
  /** As displayed, after EXIF orientation (a portrait phone photo is taller than wide). */
  width: number;
  height: number;
}

/** An image whose header has been read and whose decode cost fits the limits. */
export interface Inspected {
  bytes: Uint8Array;
  format: Format;
  /** As displayed, after EXIF orientation. */
  width: number;
  height: number;
  cost: DecodeCost;
  srgb: boolean;
  maxPixels: number;
}

export interface DecodeOptions {
  resize: ResizePolicy;
  /** Wall-clock budget for one decode, in whole seconds (libvips' granularity); 0 = none. */
  timeoutSeconds: number;
}

const ascii = (bytes: Uint8Array, start: number, end: number) => Buffer.from(bytes.subarray(start, end)).toString('latin1');

/** Names the format from magic bytes; unsupported formats get a 415 that says which. */
export function sniffFormat(bytes: Uint8Array): Format {
  const b = bytes;
  if (b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (ascii(b, 0, 8) === '\x89PNG\r\n\x1a\n') return 'png';
  if (ascii(b, 0, 6) === 'GIF87a' || ascii(b, 0, 6) === 'GIF89a') return 'gif';
  if (ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 12) === 'WEBP') return 'webp';
  if (ascii(b, 0, 4) === 'II*\0' || ascii(b, 0, 4) === 'MM\0*') return 'tiff';
  if (ascii(b, 4, 8) === 'ftyp') {
    const brand = ascii(b, 8, 12);
    if (brand === 'avif' || brand === 'avis') return 'avif';
    if (/^(heic|heix|hevc|mif1|msf1)$/.test(brand)) throw unsupported('HEIC/HEIF is not supported: convert it to JPEG');
  }
  if (ascii(b, 0, 2) === 'BM') throw unsupported('BMP is not supported');
  if (ascii(b, 0, 4) === '%PDF') throw unsupported('PDF is not an image format we accept');
  const head = ascii(b, 0, 512).replace(/^\ufeff/, '').trimStart().toLowerCase();
  if (head.includes('<svg')) {
    throw unsupported('SVG is not supported: vector images are not rendered on the server');
  }
  throw unsupported('The body is not a recognised image');
}

function unsupported(what: string) {
  return new UnsupportedMediaType(`${what}. Supported formats: ${SUPPORTED_FORMATS.join(', ')}.`, SUPPORTED_FORMATS);
}

/**
 * Reads the header (no pixels) and refuses, before anything is decoded, an image whose
 * decode would cost more than the limits allow (decode-budget.ts).
 */
export async function inspect(bytes: Uint8Array, limits: DecodeLimits): Promise<Inspected> {
  const format = sniffFormat(bytes);
  // The scan count comes from the markers: libjpeg's header read stops at the first scan.
  const jpeg = format === 'jpeg' ? readJpegStructure(bytes) : undefined;
  let meta: Metadata;
  try {
    // A header read costs the same whatever the size it declares; the pixel limit is
    // checked below with the dimensions in the message, and again by libvips on decode.
    meta = await sharp(bytes, { pages: 1, failOn: 'error', limitInputPixels: false }).metadata();
  } catch (err) {
    throw describeDecodeError(err as Error, format, limits.maxPixels);
  }
  const display = meta.autoOrient ?? { width: meta.width, height: meta.height };
  const cost = estimateDecodeCost(format, meta, INPUT_SIZE, jpeg, format === 'tiff' ? readTiffTile(bytes) : undefined);
  checkDecodeCost(cost, display, limits, jpeg);
  return { bytes, format, width: display.width, height: display.height, cost, srgb: isSrgbProfile(meta.icc), maxPixels: limits.maxPixels };
}

/** Decodes an inspected image to 224×224 8-bit sRGB, within the time budget. */
export async function decode(image: Inspected, opts: DecodeOptions): Promise<Preprocessed> {
  // pages: 1 takes the first frame of an animation; failOn 'error' rejects truncated
  // files instead of classifying a half-grey picture; limitInputPixels is a second guard
  // behind inspect().
  // Converting through an embedded sRGB profile to sRGB changes no pixel but costs 5–6 ms
  // a photo (lcms), about half the decode (docs/performance.md); other profiles
  // (Adobe RGB, Display P3, CMYK) are still converted.
  const input = { pages: 1, failOn: 'error', limitInputPixels: image.maxPixels, sequentialRead: true, ignoreIcc: image.srgb } as const;
  try {
    const { data } = await sharp(image.bytes, input)
      // libvips checks the clock between strips and stops the pipeline past it.
      .timeout({ seconds: opts.timeoutSeconds })
      .rotate() // EXIF orientation
      // Composite transparent pixels over white, as browsers show them on a white page.
      .flatten({ background: '#ffffff' })
      .resize(INPUT_SIZE, INPUT_SIZE, { fit: opts.resize === 'center-crop' ? 'cover' : 'fill', position: 'centre' })
      // Grey, CMYK, 16-bit and P3/Adobe RGB inputs all end up as 8-bit sRGB.
      .toColourspace('srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (data.length !== INPUT_SIZE * INPUT_SIZE * 3) throw new Error(`unexpected decoded size ${data.length}`);
    return { rgb: new Uint8Array(data.buffer, data.byteOffset, data.length), format: image.format, width: image.width, height: image.height };
  } catch (err) {
    if (/timeout/i.test((err as Error).message ?? '')) throw new DecodeTimeout(opts.timeoutSeconds);
    throw describeDecodeError(err as Error, image.format, image.maxPixels);
  }
}

/**
 * Answers DecodeTimeout once `seconds` (plus a grace for libvips' own stop) have passed,
 * even when libvips cannot stop sooner (it checks its clock only between strips). The
 * decode itself goes on until libvips returns: its caller keeps accounting for it.
 */
export function withDeadline<T>(decoding: Promise<T>, seconds: number): Promise<T> {
  if (!(seconds > 0)) return decoding;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DecodeTimeout(seconds)), seconds * 1000 + 250);
  });
  return Promise.race([decoding, deadline]).finally(() => clearTimeout(timer));
}

/** inspect() then decode() within the deadline, with the default limits unless given. */
export async function preprocess(
  bytes: Uint8Array,
  opts: { resize: ResizePolicy; timeoutSeconds?: number } & Partial<DecodeLimits>,
): Promise<Preprocessed> {
  const { resize, timeoutSeconds = DEFAULT_DECODE_TIMEOUT_SECONDS, ...limits } = opts;
  return withDeadline(decode(await inspect(bytes, { ...DEFAULT_DECODE_LIMITS, ...limits }), { resize, timeoutSeconds }), timeoutSeconds);
}

/**
 * Whether an ICC profile is sRGB, by its description: cameras, browsers and libvips embed
 * "sRGB IEC61966-2.1", "sRGB" (v4, Android) or "sRGB built-in". Anything else, or anything
 * unreadable, counts as not sRGB and is converted.
 */
export function isSrgbProfile(profile: Uint8Array | undefined): boolean {
  if (!profile) return false;
  try {
    const { colorSpace, description } = icc.parse(Buffer.from(profile.buffer, profile.byteOffset, profile.byteLength));
    return colorSpace === 'RGB' && /^sRGB( IEC61966-2[.-]1| built-in)?$/.test((description ?? '').trim());
  } catch {
    return false;
  }
}

function describeDecodeError(err: Error, format: Format, maxPixels: number): Error {
  const msg = err.message ?? '';
  if (/pixel limit/i.test(msg)) {
    return new ImageTooLarge('Image dimensions too large', `The image has more than ${maxPixels} pixels, the configured limit.`, { limitPixels: maxPixels });
  }
  if (/unexpected decoded size/.test(msg)) return err;
  // libvips messages name internal paths and buffers; keep the client message generic.
  return new UnprocessableImage(`The ${format.toUpperCase()} data is corrupt or truncated and cannot be decoded.`);
}
