// A PNG's chunks, walked on the raw bytes before libpng sees them. libpng inflates every
// text chunk during the header read (zTXt and iTXt up to 8 MB each, as many as the file
// holds) and libvips hands them to JavaScript as strings: a 386 KB file of 50 zTXt chunks
// costs gigabytes. The model needs none of it. So the PNG is rewritten without the chunks
// that cannot change the pixels we produce (a chunk carries its own CRC, so dropping one
// leaves the others valid), and the two kept chunks whose size the file chooses are bounded:
// the colour profile (iCCP, inflated) and EXIF (eXIf, for the orientation).
//
// Specification: PNG (Third Edition), W3C Recommendation 2025, §5.3 chunk layout, §11.3.
import { inflateSync } from 'node:zlib';
import { ImageTooLarge } from '../errors.ts';


const SIGNATURE = 8;

/**
 * Chunks kept: the critical ones, transparency (tRNS), the colour space (iCCP, sRGB, gAMA,
 * cHRM, cICP, mDCv, cLLI), significant bits, background and pixel size, and EXIF for the
 * orientation. Everything else ancillary is dropped: text (tEXt, zTXt, iTXt), time,
 * histograms, suggested palettes, APNG's frames and any private chunk. An unknown critical
 * chunk is kept, so that libpng refuses the file as it should.
 */
const KEPT = new Set(['IHDR', 'PLTE', 'IDAT', 'IEND', 'tRNS', 'iCCP', 'sRGB', 'gAMA', 'cHRM', 'cICP', 'mDCv', 'cLLI', 'sBIT', 'bKGD', 'pHYs', 'eXIf'].map(fourcc));
const IHDR = fourcc('IHDR');
const TRNS = fourcc('tRNS');
const ICCP = fourcc('iCCP');
const EXIF = fourcc('eXIf');
const IEND = fourcc('IEND');

/** The largest colour profile accepted once inflated: real ones are a few KB, rich ones hundreds. */
export const MAX_PNG_PROFILE_BYTES = 1024 * 1024;
/** The largest EXIF accepted: a JPEG's EXIF segment cannot exceed 64 KiB either. */
export const MAX_PNG_EXIF_BYTES = 64 * 1024;

/** The image header (IHDR) as declared, and whether a transparency chunk (tRNS) was kept. */
export interface PngHeader {
  width: number;
  height: number;
  bitDepth: number;
  colourType: number;
  transparency: boolean;
}

export interface CleanPng {
  bytes: Uint8Array;
  /** Chunks dropped. */
  dropped: number;
  /** When the file starts with a well-formed IHDR. */
  header?: PngHeader;
}

/**
 * Returns the PNG without the chunks it does not need (the same bytes when there are none),
 * or throws ImageTooLarge for a colour profile or EXIF past its limit. Anything malformed
 * (a length past the end) ends the walk and the rest is passed on as it is: libpng judges
 * it. Bytes after IEND are cut.
 */
export function cleanPng(bytes: Uint8Array): CleanPng {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const kept = new Runs(bytes);
  let seenProfile = false;
  let seenExif = false;
  let header: PngHeader | undefined;
  let pos = SIGNATURE;
  while (pos + 12 <= buf.length) {
    const length = buf.readUInt32BE(pos);
    const type = buf.readUInt32BE(pos + 4);
    const end = pos + 12 + length;
    if (length > 0x7fffffff || end > buf.length) break;
    const critical = (buf[pos + 4] & 0x20) === 0;
    // A second iCCP or eXIf is ignored by libpng; dropping it means each is checked once.
    const repeated = (type === ICCP && seenProfile) || (type === EXIF && seenExif);
    if ((KEPT.has(type) || critical) && !repeated) {
      if (type === IHDR && pos === SIGNATURE && length === 13) {
        header = { width: buf.readUInt32BE(pos + 8), height: buf.readUInt32BE(pos + 12), bitDepth: buf[pos + 16], colourType: buf[pos + 17], transparency: false };
      } else if (type === TRNS && header) {
        header.transparency = true;
      } else if (type === ICCP) {
        checkProfile(buf.subarray(pos + 8, pos + 8 + length));
        seenProfile = true;
      } else if (type === EXIF) {
        if (length > MAX_PNG_EXIF_BYTES) throw metadataTooLarge(`The PNG's EXIF data is ${length} bytes; the limit is ${MAX_PNG_EXIF_BYTES}.`, MAX_PNG_EXIF_BYTES);
        seenExif = true;
      }
      kept.add(pos, end);
    } else {
      kept.skip();
    }
    pos = end;
    if (type === IEND) return { ...kept.result(), header };
  }
  kept.add(pos, buf.length); // the unparsed rest, if any
  return { ...kept.result(), header };
}

function fourcc(type: string): number {
  return Buffer.from(type, 'latin1').readUInt32BE(0);
}

/**
 * The kept ranges of the input, from its start: adjacent ranges merge into runs, and each
 * run is copied once, into one buffer the size of the input. With nothing left out, the
 * input itself.
 */
class Runs {
  private out: Buffer | undefined;
  private written = 0;
  private start = 0;
  private end = SIGNATURE;
  private dropped = 0;

  constructor(private input: Uint8Array) {}

  add(start: number, end: number): void {
    if (start !== this.end) this.flush(start);
    this.end = end;
  }

  skip(): void {
    this.dropped++;
  }

  result(): CleanPng {
    if (!this.out && this.start === 0 && this.end === this.input.length) return { bytes: this.input, dropped: this.dropped };
    this.flush(this.end);
    return { bytes: this.out!.subarray(0, this.written), dropped: this.dropped };
  }

  private flush(next: number): void {
    this.out ??= Buffer.allocUnsafe(this.input.length);
    this.out.set(this.input.subarray(this.start, this.end), this.written);
    this.written += this.end - this.start;
    this.start = next;
    this.end = next;
  }
}

/** iCCP: a keyword, a NUL, a compression method, then the zlib-compressed profile. */
function checkProfile(data: Buffer): void {
  const nul = data.indexOf(0, 0);
  if (nul < 0 || nul > 79) return; // malformed: libpng refuses it
  try {
    // Inflating stops one byte past the limit, so an iCCP zlib bomb costs at most that.
    inflateSync(data.subarray(nul + 2), { maxOutputLength: MAX_PNG_PROFILE_BYTES + 1 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw metadataTooLarge(`The PNG's colour profile inflates to more than ${MAX_PNG_PROFILE_BYTES} bytes, the limit.`, MAX_PNG_PROFILE_BYTES);
    }
    // Corrupt data: libpng refuses or ignores the chunk itself.
  }
}

function metadataTooLarge(detail: string, limit: number): ImageTooLarge {
  return new ImageTooLarge('Image metadata too large', detail, { limitBytes: limit }, 'Save the image without its metadata.');
}
