/**
 * Shrinks a big photo in the browser before upload: a 12-megapixel phone photo
 * (5-30 MB) becomes a ~50 KB JPEG at twice the model's input on the short side,
 * so mobile uploads are fast and huge photos fit the upload limit. The API still
 * accepts full-size images; this is only the page being considerate.
 *
 * createImageBitmap applies the EXIF orientation (imageOrientation: 'from-image'),
 * so the pixels drawn are the way up the camera meant; the JPEG then needs no EXIF.
 */

import { shrinkSize, type ImageFormat } from './image-format.ts';

export const JPEG_QUALITY = 0.9;

/** Formats the browser decodes reliably (Chromium, Firefox and Safari alike). */
const DECODABLE: ReadonlySet<ImageFormat> = new Set(['jpeg', 'png', 'webp', 'gif', 'avif']);

export interface Shrunk {
  blob: Blob;
  width: number;
  height: number;
}

/**
 * Returns a smaller JPEG of `file`, or null when the original should be sent
 * as it is: small already, a format the browser cannot decode, or a result
 * that would not be smaller.
 */
export async function shrinkImage(file: Blob, format: ImageFormat): Promise<Shrunk | null> {
  if (!DECODABLE.has(format) || typeof createImageBitmap !== 'function') return null;
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' });
  } catch {
    return null; // the server decodes it, or explains why it can't
  }
  try {
    const size = shrinkSize(bitmap.width, bitmap.height);
    if (!size) return null;
    const canvas = document.createElement('canvas');
    canvas.width = size.width;
    canvas.height = size.height;
    const context = canvas.getContext('2d');
    if (!context) return null;
    // JPEG has no alpha: transparent pixels become white, as the function flattens them.
    context.fillStyle = '#fff';
    context.fillRect(0, 0, size.width, size.height);
    context.imageSmoothingEnabled = true;
    context.imageSmoothingQuality = 'high';
    context.drawImage(bitmap, 0, 0, size.width, size.height);
    const blob = await new Promise<Blob | null>((resolve) => canvas.toBlob(resolve, 'image/jpeg', JPEG_QUALITY));
    if (!blob || blob.size >= file.size) return null;
    return { blob, ...size };
  } finally {
    bitmap.close();
  }
}
