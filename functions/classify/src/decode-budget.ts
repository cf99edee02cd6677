// What decoding an image will cost, read from its header before any pixel is decoded, and
// the limits that cost must fit.
//
// A pixel count alone does not bound the cost: bytes per sample, bands, the codec's own
// buffers and the number of JPEG scans multiply it. A 389 KB PNG of 50,000,000×1 RGBA
// 16-bit is "only" 50 MP, yet one row is 400 MB; a 34-byte GIF declaring 7000×7000 makes
// the decoder fill a 196 MB canvas. So each format gets an estimate of the bytes libvips
// really holds while decoding the one frame or page we read (`pages: 1`), measured with
// the production pipeline (bench/decode-bombs.ts prints the peaks):
//   JPEG, one scan     (w/s)·(h/s)·bands, s = sharp's shrink-on-load factor (1, 2, 4 or 8)
//   JPEG, more scans   also libjpeg's coefficient buffer, 2 bytes a sample per component,
//                      kept whole until the last scan: 144 MB for a 48 MP 4:2:0 photo.
//                      libjpeg keeps it for any JPEG with more than one scan, progressive
//                      or not (a baseline CMYK JPEG with a scan per component), and the
//                      estimate assumes it, every component at full resolution, when the
//                      marker walk could not see a frame header and a scan
//   PNG, TIFF          w·h·bands·bytes per sample (16-bit is 2; palettes decode to RGB(A))
//   TIFF, tiled        also two tiles: libtiff's decode buffer and libvips' own, each a
//                      whole tile (a 6400² RGBA TIFF in 4096² tiles: 164 MB of pixels, 243–262 MB peak)
//   GIF                w·h·5: libnsgif's RGBA canvas plus libvips' copy of the frame
//   WebP               w·h·4: libwebp decodes to ARGB
//   AVIF               w·h·20 (8-bit) or w·h·24 (10/12-bit): libheif's YUV planes, its RGB
//                      conversion and the AV1 decoder's frames, measured 19 and 24 B/px
import type { JpegStructure } from './headers/jpeg.ts';
import type { TiffLayout } from './headers/tiff.ts';
import { ImageTooLarge } from './errors.ts';

const MiB = 1024 * 1024;

export interface DecodeLimits {
  /** Pixels of the decoded frame (libvips' limitInputPixels, checked here first). */
  maxPixels: number;
  /** Estimated bytes held while decoding one image. */
  maxDecodedBytes: number;
  /** Longest side, in pixels: bounds per-row buffers and per-row work (1×50,000,000). */
  maxDimension: number;
  /** Scans in one JPEG: libjpeg walks every coefficient block once per scan. */
  maxJpegScans: number;
  /** Frames of a GIF or WebP, pages of a TIFF: their header read costs time per frame. */
  maxFrames: number;
}

/**
 * A 48 MP phone photo (8000×6000, 8-bit RGB) passes with room to spare, progressive or
 * not; a 50 MP RGBA PNG, a 7000² GIF or a 12 MP AVIF does not.
 */
export const DEFAULT_DECODE_LIMITS: Readonly<DecodeLimits> = Object.freeze({
  maxPixels: 50_000_000,
  maxDecodedBytes: 160 * MiB,
  maxDimension: 32_768,
  // libjpeg's standard progressive script has 10 scans for colour and 6 for grey;
  // mozjpeg's optimised scripts stay under 20.
  maxJpegScans: 100,
  // 100 s of animation at 10 frames a second. libwebp's header read grows with the square
  // of the frame count: about 2 ms at 1,000 frames, 150 ms at 10,000, a minute at 226,000
  // (docs/reliability.md).
  maxFrames: 1000,
});

/**
 * The backstop behind the header checks: a 48 MP progressive JPEG takes about 2.5 s on a
 * loaded core. libvips checks the clock between strips, so one long libjpeg call (all the
 * scans of a progressive JPEG are read in one) is not cut short: the scan cap bounds that.
 */
export const DEFAULT_DECODE_TIMEOUT_SECONDS = 10;

/** What the header read (sharp's metadata(), in a decoder process) reports: plain data. */
export interface ImageHeader {
  /** As stored, before EXIF orientation. */
  width: number;
  height: number;
  /** As displayed, after EXIF orientation (a portrait phone photo is taller than wide). */
  displayWidth: number;
  displayHeight: number;
  channels: number;
  /** libvips' band format: uchar, ushort, float… */
  depth: string;
  bitsPerSample?: number;
  /** Whether the embedded colour profile is sRGB, so converting through it can be skipped. */
  srgb: boolean;
}

const BYTES_PER_SAMPLE: Record<string, number> = { uchar: 1, char: 1, ushort: 2, short: 2, uint: 4, int: 4, float: 4, complex: 8, double: 8, dpcomplex: 16 };

/**
 * The integer shrink sharp asks libjpeg for when the output is `side`×`side` (the model's
 * input), from sharp's pipeline.cc: the smaller of the two axis shrinks, rounded down to 8,
 * 4 or 2, and halved when it is exactly that (a libjpeg rounding workaround).
 */
export function jpegShrinkOnLoad(width: number, height: number, side: number): number {
  const shrink = Math.min(width, height) / side;
  let factor = shrink >= 8 ? 8 : shrink >= 4 ? 4 : shrink >= 2 ? 2 : 1;
  if (factor > 1 && Math.trunc(shrink) === factor) factor /= 2;
  return factor;
}

export interface DecodeCost {
  /** As stored, before EXIF orientation. */
  width: number;
  height: number;
  bands: number;
  bitsPerSample: number;
  /** Estimated bytes held while decoding (see the table at the top of this file). */
  bytes: number;
}

/** What the estimate reads of a header: the one the header read reports, or the one the raw bytes declare. */
export type SizedHeader = Pick<ImageHeader, 'width' | 'height' | 'channels' | 'depth' | 'bitsPerSample'>;

/** Estimates what decoding the first frame to `side`×`side` costs; `format` is the sniffed one. */
export function estimateDecodeCost(format: string, header: SizedHeader, side: number, jpeg?: JpegStructure, tiffTile?: TiffLayout['tile']): DecodeCost {
  const { width, height } = header;
  const pixels = width * height;
  const bytesPerSample = BYTES_PER_SAMPLE[header.depth] ?? 1;
  const bands = header.channels;
  const cost = { width, height, bands, bitsPerSample: header.bitsPerSample ?? bytesPerSample * 8 };
  switch (format) {
    case 'jpeg': {
      const s = jpegShrinkOnLoad(width, height, side);
      const output = Math.ceil(width / s) * Math.ceil(height / s) * bands;
      const seen = jpeg?.complete && jpeg.components.length > 0;
      if (seen && !jpeg.progressive && jpeg.scans <= 1) return { ...cost, bytes: output };
      // More than one scan, or a walk that could not tell: libjpeg keeps one 64-coefficient
      // block of 2-byte values per 8×8 samples of each component.
      const components = seen ? jpeg.components : Array.from({ length: bands }, () => ({ h: 1, v: 1 }));
      const hMax = Math.max(...components.map((c) => c.h));
      const vMax = Math.max(...components.map((c) => c.v));
      const coefficients = components.reduce((sum, c) => sum + Math.ceil((width * c.h) / hMax / 8) * Math.ceil((height * c.v) / vMax / 8) * 128, 0);
      return { ...cost, bytes: Math.max(output, coefficients) };
    }
    case 'gif':
      return { ...cost, bands: 4, bitsPerSample: 8, bytes: pixels * 5 };
    case 'webp':
      return { ...cost, bands: 4, bitsPerSample: 8, bytes: pixels * 4 };
    case 'avif':
      return { ...cost, bytes: pixels * ((header.bitsPerSample ?? 8) > 8 ? 24 : 20) };
    default: {
      // png, tiff
      const tiles = tiffTile ? 2 * tiffTile.width * tiffTile.height * bands * bytesPerSample : 0;
      return { ...cost, bytes: pixels * bands * bytesPerSample + tiles };
    }
  }
}

/**
 * The RSS a decoder process may add for one step (decoder-pool.ts): its estimated bytes with
 * half again for what the estimate leaves out (codec state, libvips' regions), twice the
 * input (the decoder's copy and libvips' own), and 64 MiB for a small image's fixed costs (a
 * 48 MP baseline JPEG estimated at 2 MB peaks at about 20 MB).
 */
export function memoryAllowance(estimatedBytes: number, inputBytes: number): number {
  return Math.ceil(1.5 * estimatedBytes) + 2 * inputBytes + 64 * MiB;
}

/**
 * Refuses, with the image's dimensions and the limit it broke, anything whose decode would
 * cost more than the limits allow. `display` is the size as shown (after EXIF orientation).
 */
export function checkDecodeCost(cost: DecodeCost, display: { width: number; height: number }, limits: DecodeLimits, jpeg?: JpegStructure): void {
  const { width, height } = display;
  const size = `${width}×${height}`;
  const facts = { width, height };
  const longest = Math.max(width, height);
  if (longest > limits.maxDimension) {
    throw new ImageTooLarge('Image dimensions too large', `The image is ${size} pixels; its longest side may be at most ${limits.maxDimension} pixels.`, {
      ...facts,
      limitDimension: limits.maxDimension,
    });
  }
  if (width * height > limits.maxPixels) {
    throw new ImageTooLarge('Image dimensions too large', `The image is ${size} pixels (${width * height}), more than ${limits.maxPixels} pixels, the configured limit.`, {
      ...facts,
      pixels: width * height,
      limitPixels: limits.maxPixels,
    });
  }
  if (cost.bytes > limits.maxDecodedBytes) {
    const mib = (n: number) => `${(n / MiB).toFixed(0)} MiB`;
    throw new ImageTooLarge(
      'Image too costly to decode',
      `Decoding this ${size} image (${cost.bands} bands of ${cost.bitsPerSample} bits) would take about ${mib(cost.bytes)} of memory; the limit is ${mib(limits.maxDecodedBytes)}.`,
      { ...facts, bands: cost.bands, bitsPerSample: cost.bitsPerSample, estimatedBytes: cost.bytes, limitBytes: limits.maxDecodedBytes },
    );
  }
  // The marker walk stops counting one past the limit.
  if (jpeg && jpeg.scans > limits.maxJpegScans) {
    throw new ImageTooLarge('Too many JPEG scans', `This ${size} JPEG has more than ${limits.maxJpegScans} scans, the limit (a progressive JPEG usually has about 10).`, {
      ...facts,
      limitScans: limits.maxJpegScans,
    });
  }
}
