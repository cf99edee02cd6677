// The raw-byte parsers (src/headers/): each reads what it needs in time linear in the bytes,
// with every count bounded by the bytes there, and refuses, before any decoder sees the
// file, what a header read would pay for.
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { DEFAULT_DECODE_LIMITS, estimateDecodeCost, type ImageHeader } from '../src/decode-budget.ts';
import { ClientError } from '../src/errors.ts';
import { countGifFrames } from '../src/headers/gif.ts';
import { readIccSummary, isSrgbProfile } from '../src/headers/icc.ts';
import { readJpegStructure, readStructure, readTiffLayout } from '../src/headers/index.ts';
import { cleanPng, MAX_PNG_EXIF_BYTES } from '../src/headers/png.ts';
import { countWebpFrames } from '../src/headers/webp.ts';
import { inspect, preprocess } from '../src/preprocess.ts';
import { FIXTURE_NAMES, fixture } from '../../../test/support.ts';
import { pngChunk, TIFF_TYPES, tiledTiffBomb } from './bomb-images.ts';
import { animatedGif, animatedWebp, avifCountLie, iccProfile, multiScanBaselineJpeg, pngIccBomb, pngTextBomb, tiffDirectoryChain, withIccProfile, withStrayByte } from './header-bombs.ts';

const timed = <T>(fn: () => T): { value: T; ms: number } => {
  const t0 = performance.now();
  const value = fn();
  return { value, ms: performance.now() - t0 };
};

function refused(fn: () => unknown, detail: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.instance(caught, ClientError, `expected a refusal matching ${detail}`);
  assert.is((caught as ClientError).code, 'image-too-large');
  assert.match((caught as Error).message, detail);
}

const icc = suite('ICC profiles');
icc('a profile declaring 2^32−1 tags and holding none is read in microseconds, and is not sRGB', () => {
  const { value, ms } = timed(() => readIccSummary(iccProfile(2 ** 32 - 1)));
  assert.is(value, undefined);
  assert.ok(ms < 50, `${ms.toFixed(1)} ms`);
  assert.not.ok(isSrgbProfile(iccProfile(2 ** 32 - 1)));
  assert.equal(readIccSummary(iccProfile(0)), { colourSpace: 'RGB ', description: undefined });
});
icc('descriptions are read from desc (v2), mluc (v4) and text tags, bounded by the tag', () => {
  const withTag = (tag: Buffer) => {
    const p = Buffer.concat([iccProfile(1), Buffer.alloc(12), tag]);
    p.writeUInt32BE(p.length, 0);
    p.write('desc', 132, 'latin1');
    p.writeUInt32BE(144, 136);
    p.writeUInt32BE(tag.length, 140);
    return p;
  };
  const text = 'sRGB IEC61966-2.1';
  const desc = Buffer.concat([Buffer.from('desc\0\0\0\0', 'latin1'), Buffer.from([0, 0, 0, text.length + 1]), Buffer.from(`${text}\0`, 'latin1'), Buffer.alloc(79)]);
  assert.ok(isSrgbProfile(withTag(desc)), 'desc');
  const utf16 = Buffer.from(text, 'utf16le').swap16();
  const mluc = Buffer.concat([Buffer.from('mluc\0\0\0\0', 'latin1'), Buffer.from([0, 0, 0, 1, 0, 0, 0, 12]), Buffer.from('enUS', 'latin1'), Buffer.from([0, 0, 0, utf16.length, 0, 0, 0, 28]), utf16]);
  assert.ok(isSrgbProfile(withTag(mluc)), 'mluc');
  assert.ok(isSrgbProfile(withTag(Buffer.from('text\0\0\0\0sRGB\0', 'latin1'))), 'text');
  // A count past the tag, a string past the tag: not readable, so not sRGB.
  const lying = Buffer.from(desc);
  lying.writeUInt32BE(1e9, 8);
  assert.not.ok(isSrgbProfile(withTag(lying)));
  const outside = Buffer.from(mluc);
  outside.writeUInt32BE(1e6, 20);
  assert.not.ok(isSrgbProfile(withTag(outside)));
  assert.not.ok(isSrgbProfile(withTag(Buffer.from('text\0\0\0\0Display P3\0', 'latin1'))));
});
icc.run();

const png = suite('PNG chunks');
png('text chunks are dropped before the decoder sees them; the rest is kept byte for byte', async () => {
  const bomb = await pngTextBomb('zTXt', 50);
  const { value, ms } = timed(() => cleanPng(bomb));
  assert.is(value.dropped, 50);
  assert.ok(ms < 200, `${ms.toFixed(0)} ms for ${bomb.length} bytes`);
  const plain = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#336699' } }).png().toBuffer();
  assert.equal(Buffer.from(value.bytes), plain, 'exactly the PNG without its text');
  assert.is((await sharp(value.bytes).metadata()).comments, undefined);
  const itxt = cleanPng(await pngTextBomb('iTXt', 4, 1000));
  assert.is(itxt.dropped, 4);
  const tEXt = Buffer.concat([plain.subarray(0, 33), pngChunk('tEXt', Buffer.from('Comment\0hello', 'latin1')), plain.subarray(33)]);
  assert.equal(Buffer.from(cleanPng(tEXt).bytes), plain);
  assert.is(cleanPng(plain).bytes, plain, 'nothing to drop: the same bytes, not a copy');
});
png('a colour profile past 1 MiB inflated, or EXIF past 64 KiB, is refused; a second of either is dropped', async () => {
  const profileBomb = await pngIccBomb(2 * 1024 * 1024);
  assert.ok(profileBomb.length < 10_000, `${profileBomb.length} bytes`);
  refused(() => cleanPng(profileBomb), /colour profile inflates to more than 1048576 bytes/);
  const small = await pngIccBomb(100);
  assert.is(cleanPng(small).dropped, 0);
  const plain = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#336699' } }).png().toBuffer();
  const exif = (size: number) => pngChunk('eXIf', Buffer.alloc(size));
  refused(() => cleanPng(Buffer.concat([plain.subarray(0, 33), exif(MAX_PNG_EXIF_BYTES + 1), plain.subarray(33)])), /EXIF data is 65537 bytes; the limit is 65536/);
  const iccp = pngChunk('iCCP', Buffer.concat([Buffer.from('icc\0\0', 'latin1'), deflateSync(iccProfile(0))]));
  const twice = Buffer.concat([plain.subarray(0, 33), iccp, iccp, exif(10), exif(10), plain.subarray(33)]);
  assert.is(cleanPng(twice).dropped, 2);
});
png('bytes after IEND are cut; a chunk running past the end stops the walk and libpng judges the rest', async () => {
  const plain = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#336699' } }).png().toBuffer();
  assert.equal(Buffer.from(cleanPng(Buffer.concat([plain, Buffer.alloc(1000)])).bytes), plain);
  const truncated = Buffer.concat([plain.subarray(0, 33), Buffer.from([0, 0, 1, 0]), Buffer.from('tEXtabc', 'latin1')]);
  assert.equal(Buffer.from(cleanPng(truncated).bytes), truncated);
});
png.run();

const frames = suite('frames and pages');
frames('GIF and WebP frames are counted on the raw bytes, stopping at the limit', async () => {
  assert.is(countGifFrames(animatedGif(3)), 3);
  assert.is(countGifFrames(await sharp({ create: { width: 4, height: 4, channels: 3, background: '#fff' } }).gif().toBuffer()), 1);
  const gif = animatedGif(600_000);
  const counted = timed(() => countGifFrames(gif, 1001));
  assert.is(counted.value, 1001);
  assert.ok(counted.ms < 100, `${counted.ms.toFixed(0)} ms`);
  assert.is(countWebpFrames(await animatedWebp(3)), 3);
  assert.is(countWebpFrames(await sharp({ create: { width: 4, height: 4, channels: 3, background: '#fff' } }).webp().toBuffer()), 0);
  // 226,000 frames in 9.5 MB: counted to the limit in milliseconds.
  const webp = await animatedWebp(226_000);
  assert.ok(webp.length > 9e6);
  const t = timed(() => countWebpFrames(webp));
  assert.is(t.value, 226_000);
  assert.ok(t.ms < 500, `${t.ms.toFixed(0)} ms`);
});
frames('TIFF pages are counted along the directory chain, once each, a loop included', () => {
  assert.is(readTiffLayout(tiffDirectoryChain(5)).pages, 5);
  const looping = tiffDirectoryChain(70_000, true);
  const loop = timed(() => readTiffLayout(looping));
  assert.is(loop.value.pages, 70_000);
  assert.ok(loop.ms < 500, `${loop.ms.toFixed(0)} ms`);
  assert.is(readTiffLayout(tiffDirectoryChain(70_000), 1001).pages, 1001);
});
frames('animations and multi-page TIFFs past the limit are refused before any decoder sees them', async () => {
  const limit = DEFAULT_DECODE_LIMITS.maxFrames;
  const webp = await animatedWebp(limit + 1);
  refused(() => readStructure('gif', animatedGif(limit + 1), DEFAULT_DECODE_LIMITS), /This GIF has more than 1000 frames, the limit; only the first is classified/);
  refused(() => readStructure('webp', webp, DEFAULT_DECODE_LIMITS), /This WebP has more than 1000 frames/);
  refused(() => readStructure('tiff', tiffDirectoryChain(limit + 1), DEFAULT_DECODE_LIMITS), /This TIFF has more than 1000 pages/);
  assert.ok(readStructure('gif', animatedGif(limit), DEFAULT_DECODE_LIMITS));
});
frames.run();

const tiff = suite('TIFF tiles, read from the first directory');
tiff('tile sizes of every integer type are read', async () => {
  for (const [name, type] of Object.entries(TIFF_TYPES)) {
    const size = name.endsWith('BYTE') ? 64 : 256;
    const file = await tiledTiffBomb(size, size, size, 3, type);
    assert.equal(readTiffLayout(file).tile, { width: size, height: size }, name);
  }
});
tiff('a negative tile size reads as untiled (libtiff refuses it)', async () => {
  const file = await tiledTiffBomb(512, 512, 256, 3, TIFF_TYPES.SSHORT);
  const at = file.indexOf(Buffer.from([0x42, 0x01, TIFF_TYPES.SSHORT, 0]));
  file.writeInt16LE(-256, at + 8);
  assert.is(readTiffLayout(file).tile, undefined);
});
tiff.run();

const jpeg = suite('JPEG markers');
jpeg('stray bytes between segments are skipped, as libjpeg skips them', async () => {
  const photo = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#336699' } }).jpeg({ progressive: true }).toBuffer();
  const stray = withStrayByte(photo);
  assert.equal(readJpegStructure(stray), readJpegStructure(photo));
  assert.is(readJpegStructure(stray).scans, 10);
  // Several, and an FF 00 where a marker is due.
  const dqt = photo.indexOf(Buffer.from([0xff, 0xdb]));
  const end = dqt + 2 + photo.readUInt16BE(dqt + 2);
  const messy = Buffer.concat([photo.subarray(0, end), Buffer.from([0x12, 0x34, 0xff, 0x00, 0x56]), photo.subarray(end)]);
  assert.equal(readJpegStructure(messy), readJpegStructure(photo));
  assert.is((await preprocess(messy, { resize: 'stretch' })).width, 64, 'libjpeg reads it');
});
jpeg('a walk that ends before a frame header and a scan says so', () => {
  const soi = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, ...Buffer.alloc(14)]);
  assert.is(readJpegStructure(soi).complete, false);
  const bad = Buffer.from([0xff, 0xd8, 0xff, 0xdb, 0x00, 0x01]);
  assert.is(readJpegStructure(bad).complete, false, 'a length below 2');
});
jpeg('the coefficient buffer is charged for any JPEG with more than one scan, and when the walk could not tell', () => {
  const header = (side: number, channels: number): ImageHeader => ({ width: side, height: side, displayWidth: side, displayHeight: side, channels, depth: 'uchar', srgb: false });
  const bomb = multiScanBaselineJpeg(7070);
  const structure = readJpegStructure(bomb);
  assert.equal([structure.progressive, structure.scans, structure.complete], [false, 4, true]);
  const blocks = Math.ceil(7070 / 8) ** 2;
  assert.is(estimateDecodeCost('jpeg', header(7070, 4), 224, structure).bytes, 4 * blocks * 128);
  const oneScan = { progressive: false, scans: 1, components: [{ h: 1, v: 1 }], width: 7070, height: 7070, precision: 8, complete: true };
  assert.is(estimateDecodeCost('jpeg', header(7070, 1), 224, oneScan).bytes, 884 * 884, 'one scan: shrink-on-load only');
  const unknown = { progressive: false, scans: 0, components: [], width: 0, height: 0, precision: 0, complete: false };
  assert.is(estimateDecodeCost('jpeg', header(7070, 3), 224, unknown).bytes, 3 * blocks * 128, 'every band at full resolution');
});
jpeg.run();

const linear = suite('the parsers are linear in the bytes');
const TEN_MB = 10 * 1024 * 1024;
/** 10 MB: `head`, then `unit` repeated to the end. */
const filled = (head: number[] | Buffer, unit: number[] | Buffer | string) => {
  const b = Buffer.alloc(TEN_MB);
  const h = Buffer.from(head);
  h.copy(b);
  const u = typeof unit === 'string' ? Buffer.from(unit, 'latin1') : Buffer.from(unit);
  for (let i = h.length; i + u.length <= b.length; i += u.length) u.copy(b, i);
  return b;
};
const SCAN_HEAD = [0xff, 0xd8, 0xff, 0xc0, 0, 11, 8, 0, 16, 0, 16, 1, 1, 0x11, 0, 0xff, 0xda, 0, 8, 1, 1, 0, 0, 63, 0];
const PNG_SIGNATURE = Buffer.from('89504e470d0a1a0a', 'hex');
const CRAFTED: [string, 'jpeg' | 'png' | 'gif' | 'webp', () => Buffer][] = [
  ['JPEG of 2.6 million comment segments', 'jpeg', () => filled([0xff, 0xd8], [0xff, 0xfe, 0, 2])],
  ['JPEG of 5 million restart markers', 'jpeg', () => filled([0xff, 0xd8], [0xff, 0xd0])],
  ['JPEG scan of 5 million restart markers', 'jpeg', () => filled(SCAN_HEAD, [0xff, 0xd0])],
  ['JPEG scan of 5 million stuffed FFs', 'jpeg', () => filled(SCAN_HEAD, [0xff, 0x00])],
  ['JPEG of 2.6 million scans', 'jpeg', () => filled([0xff, 0xd8], [0xff, 0xda, 0, 2])],
  ['PNG of 870,000 empty chunks, kept and dropped in turn', 'png', () => filled(PNG_SIGNATURE, Buffer.concat([Buffer.from('\0\0\0\0IDAT\0\0\0\0', 'latin1'), Buffer.from('\0\0\0\0tEXt\0\0\0\0', 'latin1')]))],
  ['GIF of 3.5 million empty extensions', 'gif', () => filled(Buffer.from('GIF89a\0\0\0\0\0\0\0', 'latin1'), [0x21, 0xfe, 0])],
  ['WebP of 1.3 million empty chunks', 'webp', () => filled(Buffer.from('RIFF\0\0\0\0WEBP', 'latin1'), 'XXXX\0\0\0\0')],
];
for (const [name, format, make] of CRAFTED) {
  linear(`${name} (10 MB) is read in well under a second`, () => {
    const bytes = make();
    const { ms } = timed(() => readStructure(format, bytes, DEFAULT_DECODE_LIMITS));
    // Tens of ms on an idle core; the bound is loose for a loaded machine.
    assert.ok(ms < 1500, `${ms.toFixed(0)} ms`);
  });
}
linear.run();

const images = suite('the hostile files decode as libvips reads them');
images('ICC tag loops in JPEG, TIFF and WebP are plain 1×1 images', async () => {
  for (const format of ['jpeg', 'tiff', 'webp'] as const) {
    const file = await withIccProfile(format, iccProfile(2 ** 32 - 1));
    assert.ok(file.length < 500, `${format}: ${file.length} bytes`);
    const { width } = await preprocess(file, { resize: 'stretch' });
    assert.is(width, 1, format);
  }
});
images('AVIF item, location and property counts that lie are refused by libheif at once', async () => {
  for (const box of ['iinf', 'iloc', 'ipma'] as const) {
    const t0 = performance.now();
    const outcome = await preprocess(await avifCountLie(box), { resize: 'stretch' }).catch((err: Error) => err);
    assert.instance(outcome, ClientError, box);
    assert.is((outcome as ClientError).code, 'unprocessable-image', box);
    assert.ok(performance.now() - t0 < 2000, `${box}: ${(performance.now() - t0).toFixed(0)} ms`);
  }
});
images.run();

const declared = suite('what the raw bytes declare, for a header read and decode in one step');
declared('a JPEG frame header and a PNG IHDR declare what the header read reports, so the estimates agree', async () => {
  const rgba = { r: 1, g: 2, b: 3, alpha: 0.5 };
  const base = () => sharp({ create: { width: 96, height: 64, channels: 3, background: '#336699' } });
  const files: [string, Uint8Array][] = [
    ['rocket.jpg', await fixture('rocket.jpg')],
    ...(await Promise.all(FIXTURE_NAMES.filter((f) => f.endsWith('.png')).map(async (f) => [f, await fixture(f)] as [string, Uint8Array]))),
    ['JPEG, grey', await base().greyscale().jpeg().toBuffer()],
    ['JPEG, CMYK', await base().toColourspace('cmyk').jpeg().toBuffer()],
    ['JPEG, progressive 4:4:4', await base().jpeg({ progressive: true, chromaSubsampling: '4:4:4' }).toBuffer()],
    ['JPEG, EXIF orientation 6', await base().jpeg().withMetadata({ orientation: 6 }).toBuffer()],
    ['PNG, palette of 4', await base().png({ palette: true, colours: 4 }).toBuffer()],
    ['PNG, palette with transparency', await sharp({ create: { width: 96, height: 64, channels: 4, background: rgba } }).png({ palette: true }).toBuffer()],
    ['PNG, grey 16-bit', await base().greyscale().toColourspace('grey16').png().toBuffer()],
    ['PNG, RGB 16-bit', await base().toColourspace('rgb16').png().toBuffer()],
    ['PNG, RGBA', await sharp({ create: { width: 96, height: 64, channels: 4, background: rgba } }).png().toBuffer()],
    ['PNG, grey with a tRNS chunk', greyWithTransparency()],
  ];
  for (const [name, bytes] of files) {
    const format = name.includes('PNG') || name.endsWith('.png') ? 'png' : 'jpeg';
    const structure = readStructure(format, bytes, DEFAULT_DECODE_LIMITS);
    assert.ok(structure.declared, `${name} declares its size`);
    const { header } = await inspect(bytes, DEFAULT_DECODE_LIMITS);
    const { width, height, channels, depth } = header;
    assert.equal(pick(structure.declared!), { width, height, channels, depth }, name);
    const fromHeader = estimateDecodeCost(format, header, 224, structure.jpeg).bytes;
    assert.is(estimateDecodeCost(format, structure.declared!, 224, structure.jpeg).bytes, fromHeader, name);
  }
});
declared('nothing is declared where the raw bytes cannot say it: other formats, a JPEG walk that saw no scan, a 12-bit JPEG, a PNG without IHDR first', async () => {
  const webp = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#336699' } }).webp().toBuffer();
  assert.is(readStructure('webp', webp, DEFAULT_DECODE_LIMITS).declared, undefined, 'WebP');
  assert.is(readStructure('gif', animatedGif(2), DEFAULT_DECODE_LIMITS).declared, undefined, 'GIF');
  const jpeg = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#336699' } }).jpeg().toBuffer();
  const sos = jpeg.indexOf(Buffer.from([0xff, 0xda]));
  assert.is(readStructure('jpeg', jpeg.subarray(0, sos), DEFAULT_DECODE_LIMITS).declared, undefined, 'no scan');
  const twelveBit = Buffer.from(jpeg);
  twelveBit[twelveBit.indexOf(Buffer.from([0xff, 0xc0])) + 4] = 12;
  assert.is(readStructure('jpeg', twelveBit, DEFAULT_DECODE_LIMITS).declared, undefined, '12-bit');
  const png = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#336699' } }).png().toBuffer();
  const noIhdr = Buffer.concat([png.subarray(0, 8), pngChunk('tEXt', Buffer.from('a\0b')), png.subarray(8)]);
  assert.is(readStructure('png', noIhdr, DEFAULT_DECODE_LIMITS).declared, undefined, 'IHDR not first');
});
declared.run();

/** A 16×8 8-bit grey PNG with a tRNS chunk: libpng adds an alpha band for it. */
function greyWithTransparency(): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(16, 0);
  ihdr.writeUInt32BE(8, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // grey
  const rows = Buffer.alloc(8 * 17); // a filter byte then 16 samples per row
  return Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), pngChunk('IHDR', ihdr), pngChunk('tRNS', Buffer.from([0, 0])), pngChunk('IDAT', deflateSync(rows)), pngChunk('IEND', Buffer.alloc(0))]);
}

const pick = ({ width, height, channels, depth }: { width: number; height: number; channels: number; depth: string }) => ({ width, height, channels, depth });
