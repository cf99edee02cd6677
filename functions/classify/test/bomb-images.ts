// Decompression bombs, made at test time (never committed): small files whose headers
// declare images that cost far more to decode than their size suggests. Where sharp can
// make one small and fast it does; otherwise the header is written by hand with valid
// checksums, and the pixel data is real (zeros, deflated) so that a decoder without a
// guard would pay the full price.
import { createDeflate } from 'node:zlib';
import sharp from 'sharp';

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

export function crc32(buf: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of buf) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** zlib-deflates `length` zero (or `fill`) bytes without holding them: a 400 MB row is ~400 KB. */
export async function deflatedZeros(length: number, fill = 0): Promise<Buffer> {
  const deflate = createDeflate({ level: 9, memLevel: 9 });
  const out: Buffer[] = [];
  deflate.on('data', (c: Buffer) => out.push(c));
  const done = new Promise<void>((resolve, reject) => deflate.on('end', resolve).on('error', reject));
  const block = Buffer.alloc(1 << 20, fill);
  for (let left = length; left > 0; left -= block.length) {
    const chunk = left >= block.length ? block : block.subarray(0, left);
    if (!deflate.write(chunk)) await new Promise((r) => deflate.once('drain', r));
  }
  deflate.end();
  await done;
  return Buffer.concat(out);
}

export interface PngBomb {
  width: number;
  height: number;
  /** 0 grey, 2 RGB, 3 palette, 4 grey+alpha, 6 RGBA. */
  colourType?: 0 | 2 | 3 | 4 | 6;
  bitDepth?: 1 | 2 | 4 | 8 | 16;
  /** Deflate every row (a real bomb) or only the first few (header-only). */
  data?: 'full' | 'few-rows';
}

const PNG_CHANNELS = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 } as const;

export function pngChunk(type: string, data: Uint8Array): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const out = Buffer.alloc(body.length + 8);
  out.writeUInt32BE(data.length, 0);
  body.copy(out, 4);
  out.writeUInt32BE(crc32(body), body.length + 4);
  return out;
}

/** A PNG whose IHDR declares width×height at the given colour type and depth. */
export async function pngBomb({ width, height, colourType = 0, bitDepth = 8, data = 'full' }: PngBomb): Promise<Buffer> {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = bitDepth;
  ihdr[9] = colourType;
  const rowBytes = 1 + Math.ceil((width * PNG_CHANNELS[colourType] * bitDepth) / 8);
  // Each row starts with a filter-type byte; 0 (none) keeps the whole stream zeros.
  const rows = data === 'full' ? height : Math.min(height, 4);
  const chunks = [pngChunk('IHDR', ihdr)];
  if (colourType === 3) chunks.push(pngChunk('PLTE', Buffer.from([0, 0, 0, 255, 255, 255])));
  chunks.push(pngChunk('IDAT', await deflatedZeros(rowBytes * rows)), pngChunk('IEND', Buffer.alloc(0)));
  return Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), ...chunks]);
}

/**
 * A GIF whose logical screen is `screen` and whose one frame is `frame`, with a two-colour
 * palette and an LZW stream of just clear + end: under 40 bytes. A decoder still fills a
 * whole RGBA canvas for it.
 */
export function gifBomb(screen: { width: number; height: number }, frame = screen): Buffer {
  const u16 = (n: number) => [n & 0xff, n >> 8];
  return Buffer.from([
    ...Buffer.from('GIF89a', 'latin1'),
    ...u16(screen.width), ...u16(screen.height), 0x80, 0, 0, // global colour table of 2
    0, 0, 0, 255, 255, 255,
    0x2c, 0, 0, 0, 0, ...u16(frame.width), ...u16(frame.height), 0, // image descriptor
    2, 1, 0x2c, 0, // LZW min code size 2; one sub-block: clear (4) then end (5), 3-bit codes
    0x3b,
  ]);
}

/** A WebP (lossless) whose VP8L header declares width×height; libwebp allocates it all. */
export function webpBomb(width: number, height: number, alpha = true): Buffer {
  const vp8l = Buffer.alloc(5 + 15); // even: RIFF chunks are padded to two bytes
  vp8l[0] = 0x2f;
  // 14 bits width-1, 14 bits height-1, 1 bit alpha, 3 bits version (0), little-endian.
  const bits = (width - 1) | ((height - 1) << 14) | (Number(alpha) << 28);
  vp8l.writeUInt32LE(bits >>> 0, 1);
  const chunk = Buffer.concat([Buffer.from('VP8L', 'latin1'), u32le(vp8l.length), vp8l]);
  return Buffer.concat([Buffer.from('RIFF', 'latin1'), u32le(4 + chunk.length), Buffer.from('WEBP', 'latin1'), chunk]);
}

export const u32le = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
};

/** A one-strip deflate TIFF of width×height, `samples` channels of `bits` bits, all zeros. */
export async function tiffBomb(width: number, height: number, samples: 1 | 3 | 4 = 4, bits: 8 | 16 = 16): Promise<Buffer> {
  const strip = await deflatedZeros(width * height * samples * (bits / 8));
  const SHORT = 3;
  const LONG = 4;
  const entries: [tag: number, type: number, count: number, value: number][] = [];
  const extra: Buffer[] = [];
  const count = 12;
  const ifdSize = 2 + count * 12 + 4;
  let extraOffset = 8 + ifdSize;
  const bitsPerSample = Buffer.alloc(samples * 2);
  for (let i = 0; i < samples; i++) bitsPerSample.writeUInt16LE(bits, i * 2);
  const bpsValue = samples <= 2 ? bits : extraOffset;
  if (samples > 2) {
    extra.push(bitsPerSample);
    extraOffset += bitsPerSample.length;
  }
  const stripOffset = extraOffset;
  entries.push(
    [256, LONG, 1, width],
    [257, LONG, 1, height],
    [258, SHORT, samples, bpsValue],
    [259, SHORT, 1, 8], // deflate
    [262, SHORT, 1, samples >= 3 ? 2 : 1], // RGB or min-is-black
    [273, LONG, 1, stripOffset],
    [277, SHORT, 1, samples],
    [278, LONG, 1, height],
    [279, LONG, 1, strip.length],
    [284, SHORT, 1, 1], // chunky
    [339, SHORT, 1, 1], // unsigned integers
    [338, SHORT, 1, 2], // an unassociated alpha (ignored by readers when samples < 4)
  );
  entries.sort((a, b) => a[0] - b[0]);
  if (samples !== 4) entries.splice(entries.findIndex((e) => e[0] === 338), 1, [305, 2, 1, 0]); // keep the count fixed
  entries.sort((a, b) => a[0] - b[0]);
  const ifd = Buffer.alloc(ifdSize);
  ifd.writeUInt16LE(count, 0);
  entries.forEach(([tag, type, n, value], i) => {
    const at = 2 + i * 12;
    ifd.writeUInt16LE(tag, at);
    ifd.writeUInt16LE(type, at + 2);
    ifd.writeUInt32LE(n, at + 4);
    if (type === SHORT && n === 1) ifd.writeUInt16LE(value, at + 8);
    else ifd.writeUInt32LE(value, at + 8);
  });
  return Buffer.concat([Buffer.from('II*\0', 'latin1'), u32le(8), ifd, ...extra, strip]);
}

/** TIFF field types by size: BYTE, SHORT, LONG, SBYTE, SSHORT, SLONG, LONG8, SLONG8. */
export const TIFF_TYPES = { BYTE: 1, SHORT: 3, LONG: 4, SBYTE: 6, SSHORT: 8, SLONG: 9, LONG8: 16, SLONG8: 17 } as const;
const TIFF_TYPE_SIZE: Record<number, number> = { 1: 1, 3: 2, 4: 4, 6: 1, 8: 2, 9: 4, 16: 8, 17: 8 };

/**
 * A tiled deflate TIFF of width×height in tile×tile tiles, `samples` 8-bit channels, all
 * zeros. Every tile entry points at the same compressed tile, so the file stays small.
 * `tileType` is the field type of TileWidth and TileLength (libtiff reads any integer type).
 */
export async function tiledTiffBomb(width: number, height: number, tile: number, samples: 3 | 4 = 4, tileType: number = TIFF_TYPES.LONG): Promise<Buffer> {
  const data = await deflatedZeros(tile * tile * samples);
  const tiles = Math.ceil(width / tile) * Math.ceil(height / tile);
  const { SHORT, LONG } = TIFF_TYPES;
  const entries: [tag: number, type: number, values: number[]][] = [
    [256, LONG, [width]],
    [257, LONG, [height]],
    [258, SHORT, Array(samples).fill(8)],
    [259, SHORT, [8]], // deflate
    [262, SHORT, [2]], // RGB
    [277, SHORT, [samples]],
    [284, SHORT, [1]], // chunky
    [322, tileType, [tile]],
    [323, tileType, [tile]],
    [324, LONG, Array(tiles).fill(0)], // offsets: filled in below
    [325, LONG, Array(tiles).fill(data.length)],
    ...(samples === 4 ? [[338, SHORT, [2]] as [number, number, number[]]] : []),
  ];
  const ifdSize = 2 + entries.length * 12 + 4;
  const size = (type: number) => TIFF_TYPE_SIZE[type];
  let extraAt = 8 + ifdSize;
  const placed = entries.map(([, type, values]) => {
    if (values.length * size(type) <= 4) return -1;
    const at = extraAt;
    extraAt += values.length * size(type);
    return at;
  });
  const dataAt = extraAt;
  entries.find(([tag]) => tag === 324)![2].fill(dataAt);
  const out = Buffer.alloc(dataAt + data.length);
  out.write('II*\0', 0, 'latin1');
  out.writeUInt32LE(8, 4);
  out.writeUInt16LE(entries.length, 8);
  entries.forEach(([tag, type, values], i) => {
    const at = 10 + i * 12;
    out.writeUInt16LE(tag, at);
    out.writeUInt16LE(type, at + 2);
    out.writeUInt32LE(values.length, at + 4);
    const write = (v: number, pos: number) => {
      if (size(type) === 1) out.writeUInt8(v, pos);
      else if (size(type) === 2) out.writeUInt16LE(v, pos);
      else if (size(type) === 4) out.writeUInt32LE(v, pos);
      else out.writeBigUInt64LE(BigInt(v), pos);
    };
    if (placed[i] >= 0) out.writeUInt32LE(placed[i], at + 8);
    const base = placed[i] < 0 ? at + 8 : placed[i];
    values.forEach((v, j) => write(v, base + j * size(type)));
  });
  data.copy(out, dataAt);
  return out;
}

/**
 * A 12-bit AVIF whose `ispe` property declares width×height: a real 64×64 AVIF from sharp
 * with its declared size patched (encoding a real 7000² one takes ~10 s).
 */
export async function avifBomb(width: number, height: number, bitdepth: 8 | 10 | 12 = 12): Promise<Buffer> {
  const small = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#336699' } }).avif({ bitdepth, effort: 0 }).toBuffer();
  const at = small.indexOf('ispe', 0, 'latin1');
  if (at < 0) throw new Error('no ispe box in the AVIF sharp made');
  // ispe: size(4) 'ispe' version/flags(4) width(4) height(4)
  small.writeUInt32BE(width, at + 8);
  small.writeUInt32BE(height, at + 12);
  return small;
}

/**
 * A progressive JPEG of width×height (made by sharp) followed by repeated AC scans of its
 * first component until there are `scans` scans. Each added scan is a few dozen bytes: one
 * end-of-band run over every block (Ss 1, Se 63, Ah 0, Al 0, which libjpeg accepts
 * without a warning after the last refinement), yet libjpeg walks every coefficient block
 * of the component for it. The picture itself is unchanged and decodes correctly.
 */
export async function jpegScanBomb(scans: number, width = 2048, height = 2048): Promise<Buffer> {
  const jpeg = await sharp({ create: { width, height, channels: 3, background: '#336699' } }).jpeg({ progressive: true }).toBuffer();
  if (jpeg[jpeg.length - 2] !== 0xff || jpeg[jpeg.length - 1] !== 0xd9) throw new Error('sharp JPEG does not end with EOI');
  const sof = jpeg.indexOf(Buffer.from([0xff, 0xc2]));
  const count = jpeg[sof + 9];
  const comps = Array.from({ length: count }, (_, i) => ({ id: jpeg[sof + 10 + i * 3], h: jpeg[sof + 11 + i * 3] >> 4, v: jpeg[sof + 11 + i * 3] & 15 }));
  const hMax = Math.max(...comps.map((c) => c.h));
  const vMax = Math.max(...comps.map((c) => c.v));
  const blocks = Math.ceil((width * comps[0].h) / hMax / 8) * Math.ceil((height * comps[0].v) / vMax / 8);
  // AC table 3: the 15 end-of-band-run symbols r<<4 (a run of 2^r + r extra bits), each
  // with the 4-bit code r.
  const counts = Buffer.alloc(16);
  counts[3] = 15;
  const symbols = Buffer.from(Array.from({ length: 15 }, (_, r) => r << 4));
  const dht = segment(0xc4, Buffer.concat([Buffer.from([0x13]), counts, symbols]));
  const sos = segment(0xda, Buffer.from([1, comps[0].id, 0x03, 1, 63, 0x00]));
  const scan = Buffer.concat([sos, endOfBandRuns(blocks)]);
  const existing = countSos(jpeg);
  const repeats = Array.from({ length: Math.max(0, scans - existing) }, () => scan);
  return Buffer.concat([jpeg.subarray(0, jpeg.length - 2), dht, ...repeats, Buffer.from([0xff, 0xd9])]);
}

export function segment(marker: number, payload: Buffer): Buffer {
  const head = Buffer.from([0xff, marker, 0, 0]);
  head.writeUInt16BE(payload.length + 2, 2);
  return Buffer.concat([head, payload]);
}

/** Entropy-coded data for EOB runs that cover `blocks` blocks, MSB first, FF-stuffed. */
function endOfBandRuns(blocks: number): Buffer {
  const bits: number[] = [];
  const put = (value: number, n: number) => {
    for (let i = n - 1; i >= 0; i--) bits.push((value >> i) & 1);
  };
  for (let left = blocks; left > 0; ) {
    const run = Math.min(left, 32767);
    const r = Math.floor(Math.log2(run));
    put(r, 4);
    put(run - (1 << r), r);
    left -= run;
  }
  while (bits.length % 8) bits.push(1);
  const out: number[] = [];
  for (let i = 0; i < bits.length; i += 8) {
    const byte = bits.slice(i, i + 8).reduce((acc, b) => (acc << 1) | b, 0);
    out.push(byte);
    if (byte === 0xff) out.push(0);
  }
  return Buffer.from(out);
}

/** SOS segments in a JPEG that sharp made (no APP segment hides an FF DA). */
function countSos(jpeg: Buffer): number {
  let n = 0;
  for (let at = jpeg.indexOf(Buffer.from([0xff, 0xda])); at >= 0; at = jpeg.indexOf(Buffer.from([0xff, 0xda]), at + 2)) n++;
  return n;
}
