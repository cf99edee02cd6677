// Frames in a WebP, counted on the raw bytes. libwebp's demuxer finds frame n by walking
// the list from the first, and libvips asks for each frame in turn during the header read:
// the work grows with the square of the frame count (226,000 one-pixel frames in 9.5 MB:
// over a minute of CPU per read), before the first pixel.
//
// Specification: WebP Container Specification (RFC 9649, §2.7 extended format, ANMF).

/**
 * ANMF chunks among the top-level RIFF chunks, counting no further than `stopAt`. Each chunk
 * is at least 8 bytes, so the walk is linear in the file; a chunk running past the end stops it.
 */
export function countWebpFrames(bytes: Uint8Array, stopAt = Infinity): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let frames = 0;
  let pos = 12; // after RIFF, its size and WEBP
  while (pos + 8 <= bytes.length && frames < stopAt) {
    const size = view.getUint32(pos + 4, true);
    if (view.getUint32(pos) === ANMF) frames++;
    pos += 8 + size + (size % 2); // chunks are padded to an even size
  }
  return frames;
}

const ANMF = 0x414e4d46; // 'ANMF'
