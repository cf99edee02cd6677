// Frames in a GIF, counted on the raw bytes. libnsgif scans every frame during the header
// read, and libvips returns a delay per frame: an animation of hundreds of thousands of
// 15-byte frames costs seconds and a large array before the first pixel, for a model that
// sees only the first frame.
//
// Specification: GIF89a (CompuServe, 1990): §18 logical screen descriptor, §20 image
// descriptor, §15 data sub-blocks.

const TRAILER = 0x3b;
const EXTENSION = 0x21;
const IMAGE = 0x2c;

/**
 * Image descriptors in the file, counting no further than `stopAt`. Each step of the walk
 * consumes at least one byte, so it is linear in the file. A malformed block ends it: the
 * frames counted so far are what a decoder could reach.
 */
export function countGifFrames(bytes: Uint8Array, stopAt = Infinity): number {
  if (bytes.length < 13) return 0;
  let pos = 13 + colourTableSize(bytes[10]);
  let frames = 0;
  while (pos < bytes.length && frames < stopAt) {
    const block = bytes[pos];
    if (block === TRAILER) break;
    if (block === EXTENSION) {
      pos = skipSubBlocks(bytes, pos + 2);
    } else if (block === IMAGE) {
      if (pos + 10 > bytes.length) break;
      frames++;
      pos = skipSubBlocks(bytes, pos + 10 + colourTableSize(bytes[pos + 9]) + 1); // + LZW minimum code size
    } else {
      break;
    }
  }
  return frames;
}

/** Bytes of the colour table a packed-fields byte announces (flag in bit 7, size in bits 0–2). */
const colourTableSize = (packed: number) => (packed & 0x80 ? 3 * 2 ** ((packed & 0x07) + 1) : 0);

/** The position after a chain of data sub-blocks (length byte, data) ended by a zero length. */
function skipSubBlocks(bytes: Uint8Array, from: number): number {
  let pos = from;
  while (pos < bytes.length) {
    const length = bytes[pos];
    pos += 1 + length;
    if (length === 0) break;
  }
  return pos;
}
