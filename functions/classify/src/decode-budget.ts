// What decoding an image will cost, read from its header before any pixel is decoded, and
// the limits that cost must fit.
//
// A pixel count alone does not bound the cost: bytes per sample, bands, the codec's own
// buffers and the number of JPEG scans multiply it. A 389 KB PNG of 50,000,000×1 RGBA
// 16-bit is "only" 50 MP, yet one row is 400 MB; a 34-byte GIF declaring 7000×7000 makes
// the decoder fill a 196 MB canvas. So each format gets an estimate of the bytes libvips
// really holds while decoding the one frame or page we read (`pages: 1`), measured with
// the production pipeline (bench/decode-bombs.ts prints the peaks):
//   JPEG, baseline     (w/s)·(h/s)·bands, s = sharp's shrink-on-load factor (1, 2, 4 or 8)
//   JPEG, progressive  also libjpeg's coefficient buffer, 2 bytes a sample per component,
//                      kept whole until the last scan: 144 MB for a 48 MP 4:2:0 photo
//   PNG, TIFF          w·h·bands·bytes per sample (16-bit is 2; palettes decode to RGB(A))
//   TIFF, tiled        also two tiles: libtiff's decode buffer and libvips' own, each a
//                      whole tile (a 6400² RGBA TIFF in 4096² tiles: 164 MB of pixels, 243–262 MB peak)
//   GIF                w·h·5: libnsgif's RGBA canvas plus libvips' copy of the frame
//   WebP               w·h·4: libwebp decodes to ARGB
//   AVIF               w·h·20 (8-bit) or w·h·24 (10/12-bit): libheif's YUV planes, its RGB
//                      conversion and the AV1 decoder's frames, measured 19 and 24 B/px
import type { Metadata } from 'sharp';
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
});

/**
 * The backstop behind the header checks: a 48 MP progressive JPEG takes about 2.5 s on a
 * loaded core. libvips checks the clock between strips, so one long libjpeg call (all the
 * scans of a progressive JPEG are read in one) is not cut short: the scan cap bounds that.
 */
export const DEFAULT_DECODE_TIMEOUT_SECONDS = 10;

export interface JpegStructure {
  progressive: boolean;
  /** Start-of-scan segments, counted by walking the segment structure. */
  scans: number;
  /** Sampling factors of each frame component, from the SOF segment. */
  components: { h: number; v: number }[];
}

/**
 * Walks a JPEG's marker segments from SOI, skipping each segment by its length and each
 * scan's entropy-coded data up to the next marker, so an `FF DA` inside an APP segment (an
 * EXIF thumbnail is a whole JPEG) or in stuffed data is not counted. Stops at EOI or at
 * anything malformed: libjpeg judges the rest when it decodes.
 */
export function readJpegStructure(bytes: Uint8Array): JpegStructure {
  const out: JpegStructure = { progressive: false, scans: 0, components: [] };
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 2; // after SOI
  while (pos + 1 < buf.length) {
    if (buf[pos] !== 0xff) break;
    let marker = buf[pos + 1];
    while (marker === 0xff && pos + 2 < buf.length) marker = buf[++pos + 1]; // fill bytes
    pos += 2;
    if (marker === 0xd9) break; // EOI
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) continue; // no length
    if (pos + 2 > buf.length) break;
    const length = buf.readUInt16BE(pos);
    if (length < 2) break;
    const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isSof && pos + 8 <= buf.length) {
      out.progressive = marker === 0xc2 || marker === 0xc6 || marker === 0xca || marker === 0xce;
      const count = buf[pos + 7];
      out.components = [];
      for (let i = 0; i < count && pos + 8 + i * 3 + 2 <= buf.length; i++) {
        const factors = buf[pos + 8 + i * 3 + 1];
        out.components.push({ h: factors >> 4 || 1, v: factors & 0x0f || 1 });
      }
    }
    pos += length;
    if (marker === 0xda) {
      out.scans++;
      pos = nextMarker(buf, pos);
    }
  }
  return out;
}

/** The next marker after entropy-coded data: an FF that is not stuffing (FF 00) or a restart. */
function nextMarker(buf: Buffer, from: number): number {
  let pos = from;
  for (;;) {
    pos = buf.indexOf(0xff, pos);
    if (pos < 0 || pos + 1 >= buf.length) return buf.length;
    const next = buf[pos + 1];
    if (next === 0x00 || next === 0xff || (next >= 0xd0 && next <= 0xd7)) pos++;
    else return pos;
  }
}

/** A tiled TIFF's tile size, from the first IFD (the page read); undefined for strips. */
export interface TiffTile {
  width: number;
  height: number;
}

/**
 * Reads TileWidth (322) and TileLength (323) from a classic TIFF's first IFD. Anything
 * malformed reads as untiled: libtiff judges the file when it decodes.
 */
export function readTiffTile(bytes: Uint8Array): TiffTile | undefined {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 8) return undefined;
  const le = buf[0] === 0x49;
  const u16 = (at: number) => (le ? buf.readUInt16LE(at) : buf.readUInt16BE(at));
  const u32 = (at: number) => (le ? buf.readUInt32LE(at) : buf.readUInt32BE(at));
  const ifd = u32(4);
  if (ifd + 2 > buf.length) return undefined;
  const tile: Partial<TiffTile> = {};
  for (let i = 0, n = u16(ifd); i < n && ifd + 2 + i * 12 + 12 <= buf.length; i++) {
    const at = ifd + 2 + i * 12;
    const tag = u16(at);
    if (tag !== 322 && tag !== 323) continue;
    const type = u16(at + 2);
    const value = type === 3 ? u16(at + 8) : type === 4 ? u32(at + 8) : 0; // SHORT or LONG
    if (tag === 322) tile.width = value;
    else tile.height = value;
  }
  return tile.width && tile.height ? { width: tile.width, height: tile.height } : undefined;
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

/** Estimates what decoding the first frame to `side`×`side` costs; `format` is the sniffed one. */
export function estimateDecodeCost(format: string, meta: Metadata, side: number, jpeg?: JpegStructure, tiffTile?: TiffTile): DecodeCost {
  const { width, height } = meta;
  const pixels = width * height;
  const bytesPerSample = BYTES_PER_SAMPLE[meta.depth] ?? 1;
  const bands = meta.channels;
  const cost = { width, height, bands, bitsPerSample: meta.bitsPerSample ?? bytesPerSample * 8 };
  switch (format) {
    case 'jpeg': {
      const s = jpegShrinkOnLoad(width, height, side);
      const output = Math.ceil(width / s) * Math.ceil(height / s) * bands;
      if (!jpeg?.progressive || jpeg.components.length === 0) return { ...cost, bytes: output };
      // One 64-coefficient block of 2-byte values per 8×8 samples of each component.
      const hMax = Math.max(...jpeg.components.map((c) => c.h));
      const vMax = Math.max(...jpeg.components.map((c) => c.v));
      const coefficients = jpeg.components.reduce((sum, c) => sum + Math.ceil((width * c.h) / hMax / 8) * Math.ceil((height * c.v) / vMax / 8) * 128, 0);
      return { ...cost, bytes: Math.max(output, coefficients) };
    }
    case 'gif':
      return { ...cost, bands: 4, bitsPerSample: 8, bytes: pixels * 5 };
    case 'webp':
      return { ...cost, bands: 4, bitsPerSample: 8, bytes: pixels * 4 };
    case 'avif':
      return { ...cost, bytes: pixels * ((meta.bitsPerSample ?? 8) > 8 ? 24 : 20) };
    default: {
      // png, tiff
      const tiles = tiffTile ? 2 * tiffTile.width * tiffTile.height * bands * bytesPerSample : 0;
      return { ...cost, bytes: pixels * bands * bytesPerSample + tiles };
    }
  }
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
  if (jpeg && jpeg.scans > limits.maxJpegScans) {
    throw new ImageTooLarge('Too many JPEG scans', `This ${size} JPEG has ${jpeg.scans} scans; the limit is ${limits.maxJpegScans} (a progressive JPEG usually has about 10).`, {
      ...facts,
      scans: jpeg.scans,
      limitScans: limits.maxJpegScans,
    });
  }
}
