/**
 * Shrinks, in the browser, a photo that the function would refuse as it is (limits.ts): a
 * 12-megapixel phone photo over the upload limit becomes a ~50 KB JPEG at twice the model's
 * input on the short side. Anything the function takes is sent untouched.
 *
 * createImageBitmap applies the EXIF orientation (imageOrientation: 'from-image'),
 * so the pixels drawn are the way up the camera meant; the JPEG then needs no EXIF.
 */

import type { ImageFormat } from './image-format.ts';
import { overLimit, shrinkSize, type ImageLimits, type Size } from './limits.ts';

export const JPEG_QUALITY = 0.9;

/** Formats the browser decodes reliably (Chromium, Firefox and Safari alike). */
const DECODABLE: ReadonlySet<ImageFormat> = new Set(['jpeg', 'png', 'webp', 'gif', 'avif']);

export interface Shrunk {
  blob: Blob;
  width: number;
  height: number;
  /** Why it was shrunk, for the card: "11 MB is over the 10 MB upload limit". */
  reason: string;
}

/** The image's size from its header, without decoding its pixels; null if the browser cannot read it. */
function readSize(file: Blob): Promise<Size | null> {
  return new Promise((resolve) => {
    const url = URL.createObjectURL(file);
    const img = new Image();
    const done = (size: Size | null) => {
      URL.revokeObjectURL(url);
      resolve(size);
    };
    img.onload = () => done(img.naturalWidth > 0 ? { width: img.naturalWidth, height: img.naturalHeight } : null);
    img.onerror = () => done(null);
    img.src = url;
  });
}

/**
 * A smaller JPEG of `file` when the function would refuse it as it is; null when the
 * original should be sent: the function takes it, the browser cannot decode it (the
 * function then explains), or the result would not be smaller.
 */
export async function shrinkIfRefused(file: Blob, format: ImageFormat, limits: ImageLimits): Promise<Shrunk | null> {
  if (!DECODABLE.has(format) || typeof createImageBitmap !== 'function') return null;
  const reason = overLimit(file.size, file.size > limits.maxUploadBytes ? null : await readSize(file), limits);
  if (!reason) return null;
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' });
  } catch {
    return null; // the server decodes it, or explains why it can't
  }
  try {
    const size = shrinkSize(bitmap, limits);
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
    return { blob, ...size, reason };
  } finally {
    bitmap.close();
  }
}
