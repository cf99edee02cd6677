// The first line of defence, on the raw bytes and before any decoder sees them: what each
// format's header read would cost that the header itself does not say. Every parser here is
// linear in the bytes, bounds each count by the bytes there, and allocates nothing a file
// can make large; together they take a few milliseconds on a 10 MB file.
import { ImageTooLarge } from '../errors.ts';
import type { Format } from '../image-format.ts';
import { countGifFrames } from './gif.ts';
import { readJpegStructure, type JpegStructure } from './jpeg.ts';
import { cleanPng } from './png.ts';
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
    case 'jpeg':
      return { bytes, jpeg: readJpegStructure(bytes, limits.maxJpegScans + 1) };
    case 'png':
      return { bytes: cleanPng(bytes).bytes };
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

function checkFrames(format: string, what: 'frames' | 'pages', counted: number, limit: number): void {
  if (counted <= limit) return;
  throw new ImageTooLarge(
    `Too many ${what}`,
    `This ${format} has more than ${limit} ${what}, the limit; only the first is classified.`,
    { limitFrames: limit },
    `Send its first ${what === 'frames' ? 'frame' : 'page'} alone, e.g. as a JPEG or PNG.`,
  );
}
