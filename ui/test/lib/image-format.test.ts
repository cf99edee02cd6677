import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { fixtures } from '../../../test/support.ts';
import { formatName, notAnImageText, sniffImageFormat, SNIFF_BYTES } from '../../src/lib/image-format.ts';

const sniff = suite('image format from magic bytes');
sniff('real files of every supported format', async () => {
  const base = sharp({ create: { width: 8, height: 8, channels: 3, background: '#c33' } });
  const encoded = {
    jpeg: await base.clone().jpeg().toBuffer(),
    png: await base.clone().png().toBuffer(),
    webp: await base.clone().webp().toBuffer(),
    gif: await base.clone().gif().toBuffer(),
    avif: await base.clone().avif().toBuffer(),
    tiff: await base.clone().tiff().toBuffer(),
  };
  for (const [format, bytes] of Object.entries(encoded)) {
    assert.is(sniffImageFormat(bytes.subarray(0, SNIFF_BYTES)), format, format);
  }
  assert.is(sniffImageFormat(await readFile(path.join(await fixtures(), 'rocket.jpg'))), 'jpeg');
});
sniff('text, SVG, PDF, empty and truncated files are not images', () => {
  for (const text of ['not an image', '<svg xmlns="http://www.w3.org/2000/svg"/>', '%PDF-1.7', '', 'RIFF', '\x89PN']) {
    assert.is(sniffImageFormat(new TextEncoder().encode(text)), null, JSON.stringify(text));
  }
  assert.is(sniffImageFormat(new Uint8Array([0xff, 0xd8])), null);
});
sniff.run();

const names = suite('format names and messages');
names('one capitalisation everywhere', () => {
  assert.is(formatName('webp'), 'WebP');
  assert.is(formatName('image/jpeg'), 'JPEG');
  assert.is(formatName('jpg'), 'JPEG');
  assert.is(formatName('tif'), 'TIFF');
  assert.is(formatName('heic'), 'HEIC');
  assert.is(notAnImageText('notes.txt'), "notes.txt isn't an image: use JPEG, PNG, WebP, GIF, AVIF or TIFF.");
});
names.run();
