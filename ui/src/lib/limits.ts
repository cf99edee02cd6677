/**
 * When the page changes a photo before upload: only when the function would refuse it as it
 * is (too many bytes, pixels, or too long a side, by the limits in /config.json). A photo the
 * function takes goes byte for byte, so the page shows the answer curl would get. Pure:
 * unit-tested in Node.
 */

import type { PageConfig } from '../../../contracts/page.ts';
import { formatBytes } from './format.ts';

export type ImageLimits = Pick<PageConfig, 'maxUploadBytes' | 'maxPixels' | 'maxDimension'>;

export interface Size {
  width: number;
  height: number;
}

/** The model's input is 224×224; twice that on the short side keeps detail for its centre crop. */
export const TARGET_SHORT_SIDE = 2 * 224;

const megapixels = (pixels: number) => `${Number((pixels / 1e6).toFixed(1))} MP`;

/**
 * Why the function would refuse a photo of `bytes` and `size` (null: the browser cannot
 * tell), in words for its card; '' when it would take it.
 */
export function overLimit(bytes: number, size: Size | null, limits: ImageLimits): string {
  if (bytes > limits.maxUploadBytes) return `${formatBytes(bytes)} is over the ${formatBytes(limits.maxUploadBytes)} upload limit`;
  if (!size) return '';
  const long = Math.max(size.width, size.height);
  if (long > limits.maxDimension) return `its ${long} px side is over the ${limits.maxDimension} px limit`;
  const pixels = size.width * size.height;
  if (pixels > limits.maxPixels) return `its ${megapixels(pixels)} are over the ${megapixels(limits.maxPixels)} limit`;
  return '';
}

/**
 * The size to redraw a refused photo at: TARGET_SHORT_SIDE on the short side (or as it is,
 * when smaller), and within the limits. Keeps the aspect ratio; whole pixels.
 */
export function shrinkSize(size: Size, limits: Pick<ImageLimits, 'maxPixels' | 'maxDimension'>, shortSide = TARGET_SHORT_SIDE): Size {
  const { width, height } = size;
  const scale = Math.min(
    1,
    shortSide / Math.min(width, height),
    limits.maxDimension / Math.max(width, height),
    Math.sqrt(limits.maxPixels / (width * height)),
  );
  // Down, never past a limit; the epsilon keeps 3024 × (448 / 3024) from landing on 447.
  const fit = (side: number) => Math.max(1, Math.floor(side * scale + 1e-6));
  return { width: fit(width), height: fit(height) };
}
