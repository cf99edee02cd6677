/**
 * What an uploaded file really is, from its first bytes (its "magic"), not from
 * its name or the type the browser guessed. Pure: unit-tested in Node.
 */

export type ImageFormat = 'jpeg' | 'png' | 'webp' | 'gif' | 'avif' | 'tiff';

/** Display names, capitalised the one way the page uses everywhere. */
export const FORMAT_NAMES: Record<ImageFormat, string> = {
  jpeg: 'JPEG',
  png: 'PNG',
  webp: 'WebP',
  gif: 'GIF',
  avif: 'AVIF',
  tiff: 'TIFF',
};

/** "JPEG, PNG, WebP, GIF, AVIF or TIFF": what the classify function decodes. */
export const SUPPORTED_FORMATS_TEXT = listFormats(Object.values(FORMAT_NAMES));

/** Bytes needed to tell every supported format apart. */
export const SNIFF_BYTES = 32;

const ascii = (bytes: Uint8Array, start: number, text: string) =>
  text.split('').every((char, i) => bytes[start + i] === char.charCodeAt(0));

export function sniffImageFormat(bytes: Uint8Array): ImageFormat | null {
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (ascii(bytes, 0, '\x89PNG\r\n\x1a\n')) return 'png';
  if (ascii(bytes, 0, 'GIF87a') || ascii(bytes, 0, 'GIF89a')) return 'gif';
  if (ascii(bytes, 0, 'RIFF') && ascii(bytes, 8, 'WEBP')) return 'webp';
  if (ascii(bytes, 0, 'II*\0') || ascii(bytes, 0, 'MM\0*')) return 'tiff';
  // ISO-BMFF: a box size, then "ftyp" and a major brand; AVIF images and sequences.
  if (ascii(bytes, 4, 'ftyp') && (ascii(bytes, 8, 'avif') || ascii(bytes, 8, 'avis'))) return 'avif';
  return null;
}

/** The canonical display name of a format token the API sends ("webp" → "WebP"). */
export function formatName(token: string): string {
  const key = token.toLowerCase().replace(/^image\//, '').replace(/^jpg$/, 'jpeg').replace(/^tif$/, 'tiff');
  return (FORMAT_NAMES as Record<string, string>)[key] ?? token.toUpperCase();
}

/** ["A", "B", "C"] → "A, B or C". */
export function listFormats(names: string[]): string {
  if (names.length <= 1) return names.join('');
  return `${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}`;
}

/** The message for a file that is not an image, in plain words. */
export function notAnImageText(fileName: string): string {
  return `${fileName} isn't an image: use ${SUPPORTED_FORMATS_TEXT}.`;
}
