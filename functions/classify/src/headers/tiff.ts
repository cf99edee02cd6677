// A classic TIFF's directory chain and its first directory's tile size, read on the raw
// bytes. libtiff counts every directory during the header read (libvips reports the page
// count), so a 10 MB file of 70,000 one-pixel pages costs seconds before the first pixel;
// and the tile size sets the two whole-tile buffers a tiled decode holds.
//
// Specification: TIFF 6.0 (Adobe, 1992), §2 image file directory; §15 tiles. Field types
// 16–18 (LONG8, SLONG8, IFD8) come from BigTIFF; libtiff reads any integer type for a tag
// whose value is an integer, so the estimate does too.

export interface TiffLayout {
  /** Directories in the chain, counting no further than the `stopAt` given. */
  pages: number;
  /** Tile width and length of the first directory; undefined for a striped image. */
  tile?: { width: number; height: number };
}

const ENTRY = 12;
/** Bytes per value of each integer field type. */
const INTEGER_SIZE: Record<number, number> = { 1: 1, 3: 2, 4: 4, 6: 1, 8: 2, 9: 4, 13: 4, 16: 8, 17: 8, 18: 8 };
const SIGNED = new Set([6, 8, 9, 17]);

/**
 * Walks the directory chain from the header: each directory is visited once (a chain that
 * loops back ends there), so the walk is bounded by the directories the bytes can hold.
 * Anything malformed ends it: libtiff judges the file when it decodes.
 */
export function readTiffLayout(bytes: Uint8Array, stopAt = Infinity): TiffLayout {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 8) return { pages: 0 };
  const le = bytes[0] === 0x49;
  const u16 = (at: number) => view.getUint16(at, le);
  const u32 = (at: number) => view.getUint32(at, le);
  const layout: TiffLayout = { pages: 0 };
  const seen = new Set<number>();
  for (let ifd = u32(4); ifd !== 0 && layout.pages < stopAt; ) {
    if (seen.has(ifd) || ifd + 2 > bytes.length) break;
    seen.add(ifd);
    const entries = u16(ifd);
    const end = ifd + 2 + entries * ENTRY;
    if (end + 4 > bytes.length) break;
    if (layout.pages === 0) layout.tile = readTile(view, ifd, entries, le);
    layout.pages++;
    ifd = u32(end);
  }
  return layout;
}

function readTile(view: DataView, ifd: number, entries: number, le: boolean): TiffLayout['tile'] {
  let width: number | undefined;
  let height: number | undefined;
  for (let i = 0; i < entries; i++) {
    const at = ifd + 2 + i * ENTRY;
    const tag = view.getUint16(at, le);
    if (tag === 322) width = readInteger(view, at, le);
    else if (tag === 323) height = readInteger(view, at, le);
  }
  return width && height ? { width, height } : undefined;
}

/**
 * The first value of an integer entry, inline or at its offset; undefined for another type,
 * no value, a negative value (libtiff refuses it) or a value past the end.
 */
function readInteger(view: DataView, at: number, le: boolean): number | undefined {
  const type = view.getUint16(at + 2, le);
  const size = INTEGER_SIZE[type];
  const count = view.getUint32(at + 4, le);
  if (!size || count === 0) return undefined;
  const where = count * size <= 4 ? at + 8 : view.getUint32(at + 8, le);
  if (where + size > view.byteLength) return undefined;
  const signed = SIGNED.has(type);
  const value =
    size === 1 ? (signed ? view.getInt8(where) : view.getUint8(where))
    : size === 2 ? (signed ? view.getInt16(where, le) : view.getUint16(where, le))
    : size === 4 ? (signed ? view.getInt32(where, le) : view.getUint32(where, le))
    : Number(signed ? view.getBigInt64(where, le) : view.getBigUint64(where, le));
  return value > 0 ? value : undefined;
}
