import sharp from 'sharp';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ClientError } from '../src/errors.ts';
import { STATUS } from '../src/http/problems.ts';
import { DEFAULT_DECODE_LIMITS, jpegShrinkOnLoad } from '../src/decode-budget.ts';
import { readJpegStructure, readTiffLayout } from '../src/headers/index.ts';
import { inspect, isSrgbProfile, preprocess, sniffFormat } from '../src/preprocess.ts';
import { loadConfig } from '../src/config.ts';
import { gifBomb, jpegScanBomb, pngBomb, tiledTiffBomb } from './bomb-images.ts';
import { fixture } from '../../../test/support.ts';

const opts = { resize: 'stretch' as const };

async function rejects(bytes: Uint8Array, status: number, message: RegExp) {
  try {
    await preprocess(bytes, opts);
  } catch (err) {
    assert.instance(err, ClientError);
    assert.is(STATUS[(err as ClientError).code], status);
    assert.match((err as Error).message, message);
    return;
  }
  assert.unreachable(`expected a ${status}`);
}

/** The RGB at (x, y) of the 224×224 output. */
const pixel = (rgb: Uint8Array, x: number, y: number) => Array.from(rgb.subarray((y * 224 + x) * 3, (y * 224 + x) * 3 + 3));

const sniff = suite('format sniffing');
sniff('recognises supported formats by their magic bytes', async () => {
  const base = sharp({ create: { width: 8, height: 8, channels: 3, background: '#808080' } });
  assert.is(sniffFormat(await base.clone().jpeg().toBuffer()), 'jpeg');
  assert.is(sniffFormat(await base.clone().png().toBuffer()), 'png');
  assert.is(sniffFormat(await base.clone().webp().toBuffer()), 'webp');
  assert.is(sniffFormat(await base.clone().gif().toBuffer()), 'gif');
  assert.is(sniffFormat(await base.clone().tiff().toBuffer()), 'tiff');
});
sniff('refuses SVG, BMP and text with 415 and names the supported formats', async () => {
  await rejects(Buffer.from('<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><image href="http://example.com/x.png"/></svg>'), 415, /SVG is not supported.*jpeg, png/);
  await rejects(Buffer.concat([Buffer.from('BM'), Buffer.alloc(60)]), 415, /BMP is not supported/);
  await rejects(Buffer.from('hello, world'), 415, /not a recognised image/);
});
sniff.run();

const decode = suite('decoding and normalising');
decode('produces 224×224 RGB from a photo', async () => {
  const out = await preprocess(await fixture('chelsea.png'), opts);
  assert.is(out.rgb.length, 224 * 224 * 3);
  assert.equal([out.format, out.width, out.height], ['png', 451, 300]);
});
decode('grayscale becomes three equal channels', async () => {
  const out = await preprocess(await fixture('camera.png'), opts);
  const [r, g, b] = pixel(out.rgb, 100, 100);
  assert.ok(r === g && g === b);
});
decode('EXIF orientation is applied', async () => {
  // Left half red, right half blue, stored with orientation 3 (rotated 180°).
  const img = await sharp({ create: { width: 40, height: 20, channels: 3, background: '#0000ff' } })
    .composite([{ input: { create: { width: 20, height: 20, channels: 3, background: '#ff0000' } }, left: 0, top: 0 }])
    .jpeg({ quality: 95 })
    .withMetadata({ orientation: 3 })
    .toBuffer();
  const out = await preprocess(img, opts);
  const [r, , b] = pixel(out.rgb, 10, 112);
  assert.ok(b > 200 && r < 60, `left edge after rotation should be blue, got ${pixel(out.rgb, 10, 112)}`);
});
decode('CMYK, 16-bit and alpha inputs come out as 8-bit sRGB', async () => {
  const cmyk = await sharp({ create: { width: 32, height: 32, channels: 3, background: '#ff0000' } }).toColourspace('cmyk').jpeg().toBuffer();
  const [r, g, b] = pixel((await preprocess(cmyk, opts)).rgb, 50, 50);
  assert.ok(r > 200 && g < 60 && b < 60, `CMYK red -> ${[r, g, b]}`);
  const deep = await sharp({ create: { width: 32, height: 32, channels: 3, background: '#00ff00' } }).toColourspace('rgb16').png().toBuffer();
  assert.ok(pixel((await preprocess(deep, opts)).rgb, 5, 5)[1] > 240);
  const clear = await sharp({ create: { width: 32, height: 32, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } }).png().toBuffer();
  assert.equal(pixel((await preprocess(clear, opts)).rgb, 5, 5), [255, 255, 255], 'transparent is composited on white');
});
decode('animations use their first frame', async () => {
  const frame = (colour: string) => sharp({ create: { width: 16, height: 16, channels: 3, background: colour } }).raw().toBuffer();
  const frames = Buffer.concat([await frame('#ff0000'), await frame('#0000ff')]);
  const gif = await sharp(frames, { raw: { width: 16, height: 32, channels: 3, pageHeight: 16 } }).gif().toBuffer();
  const [r, , b] = pixel((await preprocess(gif, opts)).rgb, 100, 100);
  assert.ok(r > 200 && b < 60, `first frame is red, got ${[r, b]}`);
});
decode('a 1×1 image is upscaled', async () => {
  const tiny = await sharp({ create: { width: 1, height: 1, channels: 3, background: '#123456' } }).png().toBuffer();
  assert.equal(pixel((await preprocess(tiny, opts)).rgb, 200, 200), [0x12, 0x34, 0x56]);
});
decode('center-crop keeps the middle of a wide image', async () => {
  // 300×100: red | green | blue thirds. A crop keeps only green; stretch keeps all three.
  const img = await sharp({ create: { width: 300, height: 100, channels: 3, background: '#00ff00' } })
    .composite([
      { input: { create: { width: 100, height: 100, channels: 3, background: '#ff0000' } }, left: 0, top: 0 },
      { input: { create: { width: 100, height: 100, channels: 3, background: '#0000ff' } }, left: 200, top: 0 },
    ])
    .png()
    .toBuffer();
  const crop = await preprocess(img, { ...opts, resize: 'center-crop' });
  assert.ok(pixel(crop.rgb, 2, 112)[1] > 200, 'left edge is green when cropped');
  const stretch = await preprocess(img, opts);
  assert.ok(pixel(stretch.rgb, 2, 112)[0] > 200, 'left edge is red when stretched');
});
decode('a 48 MP phone photo is accepted, baseline or progressive', async () => {
  const photo = sharp({ create: { width: 8000, height: 6000, channels: 3, background: '#336699' } });
  const baseline = await photo.clone().jpeg().toBuffer();
  assert.equal(await preprocess(baseline, opts).then((p) => [p.width, p.height]), [8000, 6000]);
  // Progressive keeps libjpeg's whole coefficient buffer: the header check must still pass.
  const progressive = await photo.clone().jpeg({ progressive: true }).toBuffer();
  const inspected = await inspect(progressive, DEFAULT_DECODE_LIMITS);
  assert.is(inspected.cost.bytes, 8000 * 6000 * 1.5 * 2);
});
decode('EXIF-rotated photos report their displayed size', async () => {
  // Stored 300×451 with orientation 6 (turn 90° clockwise to show): shown as 451×300.
  const stored = await sharp(await fixture('chelsea.png')).rotate(-90).jpeg().withMetadata({ orientation: 6 }).toBuffer();
  assert.equal(await sharp(stored).metadata().then((m) => [m.width, m.height]), [300, 451]);
  const out = await preprocess(stored, opts);
  assert.equal([out.width, out.height], [451, 300]);
  try {
    await preprocess(stored, { ...opts, maxDimension: 400 });
    assert.unreachable('limit');
  } catch (err) {
    assert.instance(err, ClientError);
    assert.equal([(err as ClientError).details.width, (err as ClientError).details.height], [451, 300]);
  }
});
decode.run();

const hostile = suite('hostile and broken images');
hostile('a decompression bomb is refused from its header', async () => {
  const bomb = await pngBomb({ width: 30000, height: 30000, data: 'few-rows' });
  assert.ok(bomb.length < 2000, `bomb is ${bomb.length} bytes`);
  await rejects(bomb, 422, /30000×30000 pixels \(900000000\), more than 50000000 pixels, the configured limit/);
});
hostile('truncated JPEG and PNG are refused with 422', async () => {
  const jpeg = await fixture('rocket.jpg');
  await rejects(jpeg.subarray(0, Math.floor(jpeg.length / 2)), 422, /JPEG data is corrupt or truncated/);
  const png = await fixture('coffee.png');
  await rejects(png.subarray(0, Math.floor(png.length / 2)), 422, /PNG data is corrupt or truncated/);
});
hostile('a PNG signature followed by garbage is refused with 422', async () => {
  await rejects(Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), Buffer.alloc(100, 7)]), 422, /corrupt/);
});
hostile.run();

const icc = suite('colour profiles');
const profileOf = async (bytes: Uint8Array) => (await sharp(bytes).metadata()).icc;
const tagged = (profile: string) => sharp({ create: { width: 8, height: 8, channels: 3, background: '#c04020' } }).withIccProfile(profile).jpeg().toBuffer();
icc('sRGB profiles are recognised, others are not', async () => {
  assert.ok(isSrgbProfile(await profileOf(await fixture('chelsea.png'))), 'chelsea: sRGB IEC61966-2.1 (v2 desc)');
  assert.ok(isSrgbProfile(await profileOf(await tagged('srgb'))), "libvips' built-in sRGB");
  assert.not.ok(isSrgbProfile(await profileOf(await fixture('rocket.jpg'))), 'rocket: Adobe RGB (1998)');
  assert.not.ok(isSrgbProfile(await profileOf(await tagged('p3'))), 'Display P3');
  assert.not.ok(isSrgbProfile(undefined));
  assert.not.ok(isSrgbProfile(new Uint8Array(100)));
  const truncated = (await profileOf(await fixture('chelsea.png')))!.subarray(0, 200);
  assert.not.ok(isSrgbProfile(truncated), 'a desc tag pointing past the end');
});
icc('skipping an sRGB profile leaves the pixels as converting through it does', async () => {
  const bytes = await fixture('chelsea.png');
  const { rgb } = await preprocess(bytes, opts);
  const converted = await sharp(bytes).resize(224, 224, { fit: 'fill' }).toColourspace('srgb').removeAlpha().raw().toBuffer();
  let maxDiff = 0;
  for (let i = 0; i < rgb.length; i++) maxDiff = Math.max(maxDiff, Math.abs(rgb[i] - converted[i]));
  assert.ok(maxDiff <= 1, `max channel difference ${maxDiff}`);
});
icc('a non-sRGB profile is still converted', async () => {
  const bytes = await fixture('rocket.jpg');
  const { rgb } = await preprocess(bytes, opts);
  const ignored = await sharp(bytes, { ignoreIcc: true }).resize(224, 224, { fit: 'fill' }).removeAlpha().raw().toBuffer();
  assert.ok(rgb.some((v, i) => Math.abs(v - ignored[i]) > 2), 'Adobe RGB pixels are converted to sRGB');
});
icc.run();

const budget = suite('decode cost from the header');
const costOf = async (bytes: Uint8Array) => (await inspect(bytes, { ...DEFAULT_DECODE_LIMITS, maxDecodedBytes: Number.MAX_SAFE_INTEGER })).cost;
budget('bytes follow bands and bit depth, as libvips decodes them', async () => {
  const rgba16 = await sharp({ create: { width: 100, height: 50, channels: 4, background: '#336699' } }).toColourspace('rgb16').png().toBuffer();
  assert.equal(await costOf(rgba16), { width: 100, height: 50, bands: 4, bitsPerSample: 16, bytes: 100 * 50 * 4 * 2 });
  // A 1-bit palette PNG decodes to 8-bit RGB.
  const palette = await pngBomb({ width: 100, height: 50, colourType: 3, bitDepth: 1 });
  assert.is((await costOf(palette)).bytes, 100 * 50 * 3);
  // GIF: an RGBA canvas plus libvips' copy, whatever the palette.
  assert.is((await costOf(gifBomb({ width: 100, height: 50 }))).bytes, 100 * 50 * 5);
  const avif12 = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#336699' } }).avif({ bitdepth: 12, effort: 0 }).toBuffer();
  assert.is((await costOf(avif12)).bytes, 64 * 64 * 24);
});
budget('JPEG: shrink-on-load for baseline, coefficients for progressive', async () => {
  assert.equal([8000, 1792, 1500, 1100, 448, 300].map((side) => jpegShrinkOnLoad(side * 2, side, 224)), [8, 4, 4, 2, 1, 1]);
  const photo = sharp({ create: { width: 4000, height: 3000, channels: 3, background: '#336699' } });
  assert.is((await costOf(await photo.clone().jpeg().toBuffer())).bytes, 500 * 375 * 3);
  const progressive444 = await photo.clone().jpeg({ progressive: true, chromaSubsampling: '4:4:4' }).toBuffer();
  assert.is((await costOf(progressive444)).bytes, 4000 * 3000 * 3 * 2);
});
budget('every bomb class is refused with its dimensions and the limit it broke', async () => {
  const cases: [string, Buffer, RegExp, Record<string, number>][] = [
    ['PNG 50,000,000×1 RGBA 16-bit', await pngBomb({ width: 50_000_000, height: 1, colourType: 6, bitDepth: 16, data: 'few-rows' }), /50000000×1 pixels; its longest side may be at most 32768/, { limitDimension: 32768 }],
    ['PNG 1×50,000,000', await pngBomb({ width: 1, height: 50_000_000, data: 'few-rows' }), /1×50000000 pixels/, { limitDimension: 32768 }],
    ['GIF 7000²', gifBomb({ width: 7000, height: 7000 }), /7000×7000 image \(4 bands of 8 bits\) would take about 234 MiB of memory; the limit is 160 MiB/, { estimatedBytes: 245e6, limitBytes: 160 * 2 ** 20 }],
    ['GIF frame larger than its screen', gifBomb({ width: 1, height: 1 }, { width: 7000, height: 7000 }), /7000×7000/, { width: 7000 }],
  ];
  for (const [name, bytes, detail, details] of cases) {
    try {
      await inspect(bytes, DEFAULT_DECODE_LIMITS);
      assert.unreachable(name);
    } catch (err) {
      assert.instance(err, ClientError, name);
      assert.is((err as ClientError).code, 'image-too-large', name);
      assert.match((err as Error).message, detail, name);
      for (const [key, value] of Object.entries(details)) assert.is((err as ClientError).details[key], value, `${name}: ${key}`);
    }
  }
});

const scans = suite('JPEG scans, counted from the markers');
scans('a progressive JPEG from sharp has 10 scans, a baseline one 1', async () => {
  const image = sharp({ create: { width: 64, height: 64, channels: 3, background: '#336699' } });
  assert.equal(readJpegStructure(await image.clone().jpeg({ progressive: true }).toBuffer()).scans, 10);
  assert.equal(readJpegStructure(await image.clone().jpeg().toBuffer()), { progressive: false, scans: 1, components: [{ h: 2, v: 2 }, { h: 1, v: 1 }, { h: 1, v: 1 }], width: 64, height: 64, precision: 8, complete: true });
  assert.is(readJpegStructure(await fixture('rocket.jpg')).scans, 1);
});
scans('SOS bytes inside an APP segment are not scans', async () => {
  const jpeg = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#336699' } }).jpeg().toBuffer();
  // An APP9 segment full of FF DA, as an EXIF thumbnail (itself a JPEG) would contain.
  const payload = Buffer.alloc(2000, Buffer.from([0xff, 0xda, 0x00, 0x08]));
  const app = Buffer.concat([Buffer.from([0xff, 0xe9]), Buffer.from([(payload.length + 2) >> 8, (payload.length + 2) & 0xff]), payload]);
  const hidden = Buffer.concat([jpeg.subarray(0, 2), app, jpeg.subarray(2)]);
  assert.is(readJpegStructure(hidden).scans, 1);
  assert.is((await preprocess(hidden, opts)).width, 64);
});
scans('stuffed bytes, restart markers and fill bytes inside scan data are not markers', () => {
  const sos = [0xff, 0xda, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3f, 0x00];
  // Entropy data holding FF 00 (a stuffed FF), RST0 and RST7, and fill bytes before the next marker.
  const data = [0x12, 0xff, 0x00, 0x34, 0xff, 0xd0, 0x56, 0xff, 0xd7, 0x78, 0xff, 0x00];
  const bytes = Buffer.from([0xff, 0xd8, 0xff, 0xc2, 0x00, 0x0b, 0x08, 0x00, 0x10, 0x00, 0x10, 0x01, 0x01, 0x11, 0x00, ...sos, ...data, 0xff, 0xff, ...sos, ...data, 0xff, 0xd9]);
  assert.equal(readJpegStructure(bytes), { progressive: true, scans: 2, components: [{ h: 1, v: 1 }], width: 16, height: 16, precision: 8, complete: true });
  assert.is(readJpegStructure(bytes.subarray(0, bytes.length - 2)).scans, 2, 'no EOI: the walk stops at the end');
});
scans('a JPEG with more scans than the limit is refused before decoding', async () => {
  const bomb = await jpegScanBomb(101, 256, 256);
  assert.is(readJpegStructure(bomb).scans, 101);
  await rejects(bomb, 422, /256×256 JPEG has more than 100 scans, the limit/);
  // One under the limit decodes: the repeated scans are valid and change no pixel.
  const fine = await preprocess(await jpegScanBomb(100, 256, 256), opts);
  const [r, g, b] = pixel(fine.rgb, 100, 100);
  assert.ok(Math.abs(r - 0x33) <= 2 && Math.abs(g - 0x66) <= 2 && Math.abs(b - 0x99) <= 2, `${[r, g, b]}`);
});
scans.run();

const tiles = suite('TIFF tiles, read from the first IFD');
tiles('a tiled TIFF names its tile size; a striped one none', async () => {
  const image = sharp({ create: { width: 600, height: 400, channels: 3, background: '#336699' } });
  assert.equal(readTiffLayout(await image.clone().tiff({ tile: true, tileWidth: 256, tileHeight: 128 }).toBuffer()).tile, { width: 256, height: 128 });
  // Big-endian, a SHORT tile width and a LONG tile length: one IFD with the two tags only.
  const be = Buffer.from([0x4d, 0x4d, 0, 42, 0, 0, 0, 8, 0, 2, 0x01, 0x42, 0, 3, 0, 0, 0, 1, 0, 64, 0, 0, 0x01, 0x43, 0, 4, 0, 0, 0, 1, 0, 0, 0, 32, 0, 0, 0, 0]);
  assert.equal(readTiffLayout(be).tile, { width: 64, height: 32 });
  assert.is(readTiffLayout(await image.clone().tiff().toBuffer()).tile, undefined);
  assert.equal(readTiffLayout(Buffer.from('II*\0\xff\xff\xff\x7f', 'latin1')), { pages: 0 }, 'an IFD offset past the end');
});
tiles('two tiles count on top of the image: 4096² tiles on a 6400² RGBA TIFF are refused', async () => {
  await rejects(await tiledTiffBomb(6400, 6400, 4096, 4), 422, /6400×6400 image \(4 bands of 8 bits\) would take about 284 MiB/);
  // The same image in 256² tiles is within the limit: a real tiled TIFF is not refused.
  const small = await tiledTiffBomb(1024, 1024, 256, 3);
  assert.is((await preprocess(small, opts)).width, 1024);
});
tiles.run();
budget.run();

const limits = suite('decode limits in the configuration');
limits('are read from the environment, with defaults', () => {
  const defaults = loadConfig({});
  assert.equal([defaults.maxDecodedBytes, defaults.maxDimension, defaults.maxJpegScans, defaults.decodeTimeoutSeconds], [160 * 2 ** 20, 32768, 100, 10]);
  const set = loadConfig({ KLASSIFY_MAX_DECODED_BYTES: '1048576', KLASSIFY_MAX_DIMENSION: '100', KLASSIFY_MAX_JPEG_SCANS: '20', KLASSIFY_DECODE_TIMEOUT_S: '3', KLASSIFY_DECODE_MEMORY: '2097152', KLASSIFY_DECODE_CONCURRENCY: '3' });
  assert.equal([set.maxDecodedBytes, set.maxDimension, set.maxJpegScans, set.decodeTimeoutSeconds, set.decodeMemoryBytes, set.decodeConcurrency], [2 ** 20, 100, 20, 3, 2 ** 21, 3]);
  assert.is(loadConfig({}).decodeConcurrency, 2, 'one step per decoder process');
  assert.is(loadConfig({ UV_THREADPOOL_SIZE: '6', KLASSIFY_DECODERS: '0' }).decodeConcurrency, 4, 'in the server: two libuv threads left for file I/O');
});
limits('refuse a decode memory smaller than one decode', () => {
  assert.throws(() => loadConfig({ KLASSIFY_MAX_DECODED_BYTES: String(300 * 2 ** 20) }), /KLASSIFY_DECODE_MEMORY=201326592 is below KLASSIFY_MAX_DECODED_BYTES/);
  assert.throws(() => loadConfig({ KLASSIFY_MAX_JPEG_SCANS: '0' }), /KLASSIFY_MAX_JPEG_SCANS="0" is invalid/);
});
limits.run();
