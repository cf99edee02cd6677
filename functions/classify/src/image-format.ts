// The image formats the function accepts, named from the bytes, never from Content-Type.
// Only raster formats that sharp's prebuilt libvips decodes are passed on; SVG is refused
// before it reaches a decoder, because rendering it server-side can fetch external resources.
import { UnsupportedMediaType } from './errors.ts';

export const SUPPORTED_FORMATS = ['jpeg', 'png', 'webp', 'gif', 'avif', 'tiff'] as const;
export type Format = (typeof SUPPORTED_FORMATS)[number];

const ascii = (bytes: Uint8Array, start: number, end: number) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1', start, end);

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
