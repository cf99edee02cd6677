// Files whose cost is in what the header read touches, not in the pixels: made at test
// time (never committed). Each one is small on the wire and valid enough that a decoder
// reads it: an ICC profile that declares 2^32−1 tags, PNG text chunks that inflate to
// megabytes, a baseline JPEG with one scan per component, a stray byte between JPEG
// segments, animations with hundreds of thousands of frames, a TIFF with a long or looping
// chain of directories.
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { deflatedZeros, pngChunk, segment, u32le } from './bomb-images.ts';

const ascii = (s: string) => Buffer.from(s, 'latin1');

/**
 * An ICC profile header (128 bytes) and a tag count, with no tag table: `tags` says how many
 * tags a reader should expect. The colour space is RGB and the signature valid.
 */
export function iccProfile(tags: number): Buffer {
  const p = Buffer.alloc(132);
  p.writeUInt32BE(p.length, 0);
  p.writeUInt32BE(0x02100000, 8); // version 2.1
  p.write('mntrRGB XYZ ', 12, 'latin1');
  p.write('acsp', 36, 'latin1');
  p.writeUInt32BE(tags >>> 0, 128);
  return p;
}

async function tiny(format: 'jpeg' | 'webp'): Promise<Buffer> {
  const image = sharp({ create: { width: 1, height: 1, channels: 3, background: '#336699' } });
  return format === 'jpeg' ? image.jpeg().toBuffer() : image.webp({ lossless: true }).toBuffer();
}

/** A 1×1 JPEG, TIFF or WebP that embeds `profile`, as each format carries one. */
export async function withIccProfile(format: 'jpeg' | 'tiff' | 'webp', profile: Buffer): Promise<Buffer> {
  if (format === 'jpeg') {
    const jpeg = await tiny('jpeg');
    const app2 = segment(0xe2, Buffer.concat([ascii('ICC_PROFILE\0'), Buffer.from([1, 1]), profile]));
    return Buffer.concat([jpeg.subarray(0, 2), app2, jpeg.subarray(2)]);
  }
  if (format === 'webp') {
    const webp = await tiny('webp');
    const image = webp.subarray(12); // the VP8L chunk
    const vp8x = Buffer.alloc(10);
    vp8x[0] = 0x20; // ICC profile present; canvas 1×1 (stored minus one: zeros)
    const chunks = Buffer.concat([riffChunk('VP8X', vp8x), riffChunk('ICCP', profile), image]);
    return Buffer.concat([ascii('RIFF'), u32le(4 + chunks.length), ascii('WEBP'), chunks]);
  }
  return tiff([[...RGB_1X1, [34675, 7, profile]]], Buffer.from([0x33, 0x66, 0x99]));
}

function riffChunk(fourcc: string, data: Buffer): Buffer {
  const pad = data.length % 2 ? Buffer.alloc(1) : Buffer.alloc(0);
  return Buffer.concat([ascii(fourcc), u32le(data.length), data, pad]);
}

type TiffEntry = [tag: number, type: number, values: (number | 'data')[] | Buffer];
/** An uncompressed 1×1 RGB image whose 3 bytes are the file's data. */
const RGB_1X1: TiffEntry[] = [[256, 4, [1]], [257, 4, [1]], [258, 3, [8, 8, 8]], [259, 3, [1]], [262, 3, [2]], [273, 4, ['data']], [277, 3, [3]], [278, 4, [1]], [279, 4, [3]]];
const TYPE_SIZE: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 4, 6: 1, 7: 1, 8: 2, 9: 4, 16: 8, 17: 8 };

/**
 * A little-endian classic TIFF: `data` at offset 8, then each IFD of `ifds` with its
 * out-of-line values, chained. A value 'data' is the offset of `data`. With `chainToEnd`,
 * the last IFD points at the end of the file, where the caller appends more.
 */
export function tiff(ifds: TiffEntry[][], data: Buffer, chainToEnd = false): Buffer {
  const padded = data.length % 2 ? Buffer.concat([data, Buffer.alloc(1)]) : data;
  const parts: Buffer[] = [ascii('II*\0'), u32le(8 + padded.length), padded];
  let at = 8 + padded.length;
  ifds.forEach((entries, n) => {
    const table = Buffer.alloc(2 + entries.length * 12 + 4);
    let extraAt = at + table.length;
    const extra: Buffer[] = [];
    table.writeUInt16LE(entries.length, 0);
    entries.forEach(([tag, type, values], i) => {
      const e = 2 + i * 12;
      const bytes = Buffer.isBuffer(values) ? values : Buffer.alloc(values.length * TYPE_SIZE[type]);
      if (!Buffer.isBuffer(values)) {
        values.forEach((v, j) => {
          const value = v === 'data' ? 8 : v;
          const size = TYPE_SIZE[type];
          if (size === 1) bytes.writeUInt8(value & 0xff, j);
          else if (size === 2) bytes.writeUInt16LE(value & 0xffff, j * 2);
          else if (size === 4) bytes.writeUInt32LE(value >>> 0, j * 4);
          else bytes.writeBigUInt64LE(BigInt(value), j * 8);
        });
      }
      table.writeUInt16LE(tag, e);
      table.writeUInt16LE(type, e + 2);
      table.writeUInt32LE(bytes.length / TYPE_SIZE[type], e + 4);
      if (bytes.length <= 4) bytes.copy(table, e + 8);
      else {
        table.writeUInt32LE(extraAt, e + 8);
        const padded = bytes.length % 2 ? Buffer.concat([bytes, Buffer.alloc(1)]) : bytes;
        extra.push(padded);
        extraAt += padded.length;
      }
    });
    const next = n + 1 < ifds.length || chainToEnd ? extraAt : 0;
    table.writeUInt32LE(next, table.length - 4);
    parts.push(table, ...extra);
    at = extraAt;
  });
  return Buffer.concat(parts);
}

/**
 * A TIFF of `count` pages, each a 1×1 RGB directory (~130 bytes) on the same data,
 * chained; with `loop`, the last points back at the second.
 */
export function tiffDirectoryChain(count: number, loop = false): Buffer {
  const file = tiff(Array.from({ length: count }, () => RGB_1X1), Buffer.from([0x33, 0x66, 0x99]));
  if (loop && count > 1) {
    // Each directory is the same size: the last one's next pointer ends the file's last
    // directory table, before its BitsPerSample values (3 SHORTs).
    const ifd = 2 + RGB_1X1.length * 12 + 4 + 6;
    const second = 8 + 4 + ifd;
    file.writeUInt32LE(second, file.length - 6 - 4);
  }
  return file;
}

/**
 * A 64×64 PNG with `chunks` text chunks before its pixels, each inflating to `inflated`
 * bytes of text: zTXt (compressed text) or iTXt (international text, compressed).
 */
export async function pngTextBomb(kind: 'zTXt' | 'iTXt', chunks = 50, inflated = 7.9e6): Promise<Buffer> {
  const png = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#336699' } }).png().toBuffer();
  const text = await deflatedZeros(Math.round(inflated), 0x41); // 'AAAA…': text, not NULs
  const body = kind === 'zTXt' ? Buffer.concat([ascii('Comment\0\0'), text]) : Buffer.concat([ascii('Comment\0\x01\0en\0\0'), text]);
  const chunk = pngChunk(kind, body);
  const ihdrEnd = 8 + 25;
  return Buffer.concat([png.subarray(0, ihdrEnd), ...Array.from({ length: chunks }, () => chunk), png.subarray(ihdrEnd)]);
}

/** A PNG with an iCCP chunk whose profile inflates to `inflated` bytes. */
export async function pngIccBomb(inflated: number): Promise<Buffer> {
  const png = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#336699' } }).png().toBuffer();
  const profile = Buffer.concat([iccProfile(0), Buffer.alloc(0)]);
  const data = inflated <= profile.length ? deflateSync(profile) : await deflatedZeros(inflated);
  const chunk = pngChunk('iCCP', Buffer.concat([ascii('icc\0\0'), data]));
  const ihdrEnd = 8 + 25;
  return Buffer.concat([png.subarray(0, ihdrEnd), chunk, png.subarray(ihdrEnd)]);
}

/**
 * A baseline (SOF0) JPEG of side×side with `components` components (4: CMYK), each coded in
 * a scan of its own: libjpeg then keeps every coefficient of the image, 128 bytes a block
 * per component. Every block is zero (2 bits each with one-symbol Huffman tables), so a
 * 7070² CMYK one is ~780 KB.
 */
export function multiScanBaselineJpeg(side: number, components: 1 | 3 | 4 = 4): Buffer {
  const ids = Array.from({ length: components }, (_, i) => i + 1);
  const dqt = segment(0xdb, Buffer.concat([Buffer.from([0]), Buffer.alloc(64, 1)]));
  const sof = Buffer.alloc(6 + components * 3);
  sof[0] = 8;
  sof.writeUInt16BE(side, 1);
  sof.writeUInt16BE(side, 3);
  sof[5] = components;
  ids.forEach((id, i) => sof.set([id, 0x11, 0], 6 + i * 3));
  // One symbol each, code '0': DC difference category 0, AC end-of-block.
  const oneSymbol = (tableClassAndId: number) => Buffer.concat([Buffer.from([tableClassAndId, 1]), Buffer.alloc(15), Buffer.from([0])]);
  const dht = segment(0xc4, Buffer.concat([oneSymbol(0x00), oneSymbol(0x10)]));
  const blocks = Math.ceil(side / 8) ** 2;
  const bits = blocks * 2;
  const data = Buffer.alloc(Math.ceil(bits / 8));
  if (bits % 8) data[data.length - 1] = 0xff >> (bits % 8); // pad the last byte with ones
  const scans = ids.map((id) => Buffer.concat([segment(0xda, Buffer.from([1, id, 0x00, 0, 63, 0])), data]));
  return Buffer.concat([Buffer.from([0xff, 0xd8]), dqt, segment(0xc0, sof), dht, ...scans, Buffer.from([0xff, 0xd9])]);
}

/** The JPEG with one 0x00 byte after its first DQT segment: libjpeg skips it with a warning. */
export function withStrayByte(jpeg: Buffer): Buffer {
  const dqt = jpeg.indexOf(Buffer.from([0xff, 0xdb]));
  if (dqt < 0) throw new Error('no DQT segment');
  const end = dqt + 2 + jpeg.readUInt16BE(dqt + 2);
  return Buffer.concat([jpeg.subarray(0, end), Buffer.from([0x00]), jpeg.subarray(end)]);
}

/** An animated WebP of `frames` 1×1 lossless frames (50 bytes each) on a 1×1 canvas. */
export async function animatedWebp(frames: number): Promise<Buffer> {
  const image = (await tiny('webp')).subarray(12); // the VP8L chunk, padded
  const vp8x = Buffer.alloc(10);
  vp8x[0] = 0x02; // animation; canvas 1×1
  const anim = Buffer.alloc(6); // background colour, loop count 0
  const header = Buffer.alloc(16);
  header.writeUIntLE(100, 12, 3); // 100 ms; x, y, width−1, height−1 all 0
  const frame = riffChunk('ANMF', Buffer.concat([header, image]));
  const chunks = Buffer.concat([riffChunk('VP8X', vp8x), riffChunk('ANIM', anim), Buffer.alloc(frame.length * frames)]);
  const start = 18 + 14;
  for (let i = 0; i < frames; i++) frame.copy(chunks, start + i * frame.length);
  return Buffer.concat([ascii('RIFF'), u32le(4 + chunks.length), ascii('WEBP'), chunks]);
}

/** An animated GIF of `frames` 1×1 frames (15 bytes each). */
export function animatedGif(frames: number): Buffer {
  const head = Buffer.from([...ascii('GIF89a'), 1, 0, 1, 0, 0x80, 0, 0, 0, 0, 0, 255, 255, 255]);
  const loop = Buffer.from([0x21, 0xff, 0x0b, ...ascii('NETSCAPE2.0'), 3, 1, 0, 0, 0]);
  // Image descriptor 1×1, LZW minimum code size 2, one sub-block: clear, pixel 0, end.
  const frame = Buffer.from([0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x44, 0x01, 0]);
  const body = Buffer.alloc(frame.length * frames);
  for (let i = 0; i < frames; i++) frame.copy(body, i * frame.length);
  return Buffer.concat([head, loop, body, Buffer.from([0x3b])]);
}

/**
 * A 64×64 AVIF whose `box` (iinf, iloc or ipma, all version 0 from sharp) declares 2^16−1 or
 * 2^32−1 entries and holds one.
 */
export async function avifCountLie(box: 'iinf' | 'iloc' | 'ipma'): Promise<Buffer> {
  const avif = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#336699' } }).avif({ effort: 0 }).toBuffer();
  const at = avif.indexOf(box, 0, 'latin1');
  if (at < 0 || avif[at + 4] !== 0) throw new Error(`no version 0 ${box} box in the AVIF sharp made`);
  // After size, type, version and flags: iinf's count (u16); iloc's two size bytes then its count (u16); ipma's count (u32).
  if (box === 'iinf') avif.writeUInt16BE(0xffff, at + 8);
  else if (box === 'iloc') avif.writeUInt16BE(0xffff, at + 10);
  else avif.writeUInt32BE(0xffffffff, at + 8);
  return avif;
}
