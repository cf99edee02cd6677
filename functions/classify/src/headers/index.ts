// The first line of defence, on the raw bytes and before any decoder sees them: what each
// format's header read would cost that the header itself does not say. Every parser here is
// linear in the bytes, bounds each count by the bytes there, and allocates nothing a file
// can make large; together they take a few milliseconds on a 10 MB file.
import { ImageTooLarge } from '../errors.ts';
import type { Format } from '../image-format.ts';
import { countGifFrames } from './gif.ts';
import { readJpegStructure, type JpegStructure } from './jpeg.ts';
import { cleanPng, type PngHeader } from './png.ts';
import { readTiffLayout, type TiffLayout } from './tiff.ts';
import { countWebpFrames } from './webp.ts';

export { readJpegStructure, type JpegStructure } from './jpeg.ts';
export { readTiffLayout, type TiffLayout } from './tiff.ts';
export { isSrgbProfile } from './icc.ts';

export interface ImageStructure {
  /** What to decode: a PNG without the chunks it does not need; otherwise the input itself. */
  bytes: Uint8Array;
  jpeg?: JpegStructure;
  tiffTile?: TiffLayout['tile'];
  /**
   * The image as its raw bytes declare it, in the terms of the header read (decode-budget.ts),
   * where a well-formed JPEG frame header or PNG IHDR gives it: enough to estimate the decode
   * before the header read. The header read stays the authority.
   */
  declared?: DeclaredImage;
}

/** Stored size, bands and sample format, as sharp's header read reports them. */
export interface DeclaredImage {
  width: number;
  height: number;
  channels: number;
  depth: 'uchar' | 'ushort';
  bitsPerSample: number;
}

/**
 * Reads what the estimate needs from the raw bytes, strips PNG text, and refuses an
 * animation or a multi-page TIFF with more than `maxFrames` frames or pages: the header read
 * of each costs time or memory per frame, and the model sees only the first.
 */
export function readStructure(format: Format, bytes: Uint8Array, limits: { maxFrames: number; maxJpegScans: number }): ImageStructure {
  const { maxFrames } = limits;
  // Counting one past a limit is enough to refuse.
  const stopAt = maxFrames + 1;
  switch (format) {
    case 'jpeg': {
      const jpeg = readJpegStructure(bytes, limits.maxJpegScans + 1);
      return { bytes, jpeg, declared: declaredJpeg(jpeg) };
    }
    case 'png': {
      const png = cleanPng(bytes);
      return { bytes: png.bytes, declared: png.header && declaredPng(png.header) };
    }
    case 'gif':
      checkFrames('GIF', 'frames', countGifFrames(bytes, stopAt), maxFrames);
      return { bytes };
    case 'webp':
      checkFrames('WebP', 'frames', countWebpFrames(bytes, stopAt), maxFrames);
      return { bytes };
    case 'tiff': {
      const layout = readTiffLayout(bytes, stopAt);
      checkFrames('TIFF', 'pages', layout.pages, maxFrames);
      return { bytes, tiffTile: layout.tile };
    }
    default:
      return { bytes };
  }
}

/** An 8-bit frame whose scans the walk saw decodes to its components as bands (CMYK as 4). */
function declaredJpeg(jpeg: JpegStructure): DeclaredImage | undefined {
  const { width, height, precision, components, complete } = jpeg;
  if (!complete || precision !== 8 || !width || !height || !components.length) return undefined;
  return { width, height, channels: components.length, depth: 'uchar', bitsPerSample: 8 };
}

/** Bands by colour type (PNG §11.2.1): a palette decodes to RGB, and tRNS adds an alpha band. */
const PNG_BANDS: Record<number, number> = { 0: 1, 2: 3, 3: 3, 4: 2, 6: 4 };

function declaredPng(ihdr: PngHeader): DeclaredImage | undefined {
  const bands = PNG_BANDS[ihdr.colourType];
  if (bands === undefined || !ihdr.width || !ihdr.height) return undefined;
  const alpha = ihdr.transparency && bands !== 2 && bands !== 4 ? 1 : 0;
  return { width: ihdr.width, height: ihdr.height, channels: bands + alpha, depth: ihdr.bitDepth === 16 ? 'ushort' : 'uchar', bitsPerSample: ihdr.bitDepth };
}

function checkFrames(format: string, what: 'frames' | 'pages', counted: number, limit: number): void {
  if (counted <= limit) return;
  throw new ImageTooLarge(
    `Too many ${what}`,
    `This ${format} has more than ${limit} ${what}, the limit; only the first is classified.`,
    { limitFrames: limit },
    `Send its first ${what === 'frames' ? 'frame' : 'page'} alone, e.g. as a JPEG or PNG.`,
  );
}
