// The structure of a JPEG, from its markers: the frame's sampling factors, whether it is
// progressive, and how many scans it has. libjpeg's header read stops at the first scan,
// so the scan count, which bounds its work, and the coefficient buffer, which bounds its
// memory, can only be known this way.
//
// The walk follows libjpeg's own (jdmarker.c): each segment is skipped by its length and
// each scan's entropy-coded data up to the next real marker, so an `FF DA` inside an APP
// segment (an EXIF thumbnail is a whole JPEG) or in stuffed data is not counted; bytes that
// are not a marker where one is due are skipped, as libjpeg skips them with a warning.

export interface JpegStructure {
  progressive: boolean;
  /** Start-of-scan segments, counted by walking the segment structure. */
  scans: number;
  /** Sampling factors of each frame component, from the SOF segment. */
  components: { h: number; v: number }[];
  /** The frame's size and sample precision, from the SOF segment (0 when none was seen). */
  width: number;
  height: number;
  precision: number;
  /**
   * Whether the walk saw a frame header and a scan. When it did not (it ran off the end or
   * into a malformed segment first), the caller assumes the worst.
   */
  complete: boolean;
}

const EOI = 0xd9;
const SOS = 0xda;

/**
 * Walks a JPEG's markers from SOI, stopping once it has counted `stopAt` scans (the caller's
 * limit plus one). The work is linear in the bytes and allocates nothing per marker: a
 * 10 MB file of nothing but markers takes tens of milliseconds.
 */
export function readJpegStructure(bytes: Uint8Array, stopAt = Infinity): JpegStructure {
  const out: JpegStructure = { progressive: false, scans: 0, components: [], width: 0, height: 0, precision: 0, complete: false };
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let sawFrame = false;
  let pos = 2; // after SOI
  while (out.scans < stopAt) {
    pos = nextMarker(buf, pos);
    if (pos < 0) break;
    const marker = buf[pos - 1];
    if (marker === EOI) break;
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) continue; // no length
    if (pos + 2 > buf.length) break;
    const length = buf.readUInt16BE(pos);
    if (length < 2) break; // libjpeg stops here too (a bad length is an error)
    const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isSof && pos + 8 <= buf.length) {
      sawFrame = true;
      out.progressive = marker === 0xc2 || marker === 0xc6 || marker === 0xca || marker === 0xce;
      out.precision = buf[pos + 2];
      out.height = buf.readUInt16BE(pos + 3);
      out.width = buf.readUInt16BE(pos + 5);
      const count = buf[pos + 7];
      out.components = [];
      for (let i = 0; i < count && pos + 8 + i * 3 + 2 <= buf.length; i++) {
        const factors = buf[pos + 8 + i * 3 + 1];
        out.components.push({ h: factors >> 4 || 1, v: factors & 0x0f || 1 });
      }
    }
    pos += length;
    if (marker === SOS) {
      out.scans++;
      out.complete = sawFrame;
      pos = endOfEntropyData(buf, pos);
    }
  }
  return out;
}

/**
 * The position after the marker at or after `from` (its code is the byte before), or −1, as
 * libjpeg's next_marker() finds it: bytes other than FF are skipped, FF fill bytes are
 * swallowed, and FF 00 (stuffing out of place) is skipped.
 */
function nextMarker(buf: Buffer, from: number): number {
  let pos = from;
  for (;;) {
    pos = findFF(buf, pos);
    if (pos < 0) return -1;
    while (pos < buf.length && buf[pos] === 0xff) pos++;
    if (pos >= buf.length) return -1;
    if (buf[pos++] !== 0x00) return pos;
  }
}

/** Where a scan's entropy-coded data ends: the first FF that is not stuffing (FF 00), fill or a restart. */
function endOfEntropyData(buf: Buffer, from: number): number {
  let pos = from;
  for (;;) {
    pos = findFF(buf, pos);
    if (pos < 0 || pos + 1 >= buf.length) return buf.length;
    const next = buf[pos + 1];
    if (next === 0x00 || next === 0xff || (next >= 0xd0 && next <= 0xd7)) pos++;
    else return pos;
  }
}

/**
 * The next FF byte: looked for byte by byte over a short stretch first, then with memchr.
 * Entropy-coded data has an FF every few hundred bytes, where memchr is fastest; a file
 * made of little else would otherwise cost a native call per byte pair.
 */
function findFF(buf: Buffer, from: number): number {
  const near = Math.min(buf.length, from + 32);
  for (let pos = from; pos < near; pos++) if (buf[pos] === 0xff) return pos;
  return near < buf.length ? buf.indexOf(0xff, near) : -1;
}
