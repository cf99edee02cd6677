// Reads, from an ICC profile, only what tells an sRGB profile from any other: its colour
// space (header bytes 16–19) and its description (the `desc` tag, typed `desc` in v2
// profiles, `mluc` in v4, `text` in a few old ones). Every count and offset is checked
// against the profile's real size, so a profile that declares 2^32−1 tags and holds none
// costs one comparison, and a profile that lies is simply not sRGB: libvips then converts
// through it with lcms, which judges it, in the decoder process.
//
// Specification: ICC.1:2022 (profile version 4.4), §7.2 header, §7.3 tag table,
// §10.15 multiLocalizedUnicodeType; ICC.1:2001-04 §6.5.17 textDescriptionType (v2).

const HEADER = 128;
const TAG_ENTRY = 12;
/** The descriptions we compare against are short; a longer one is not sRGB whatever it says. */
const MAX_DESCRIPTION = 64;

export interface IccSummary {
  /** The data colour space signature, e.g. 'RGB ', 'GRAY', 'CMYK'. */
  colourSpace: string;
  description: string | undefined;
}

/** The colour space and description of a profile, or undefined if it is not a readable profile. */
export function readIccSummary(profile: Uint8Array): IccSummary | undefined {
  const view = new DataView(profile.buffer, profile.byteOffset, profile.byteLength);
  if (profile.length < HEADER + 4) return undefined;
  const size = view.getUint32(0);
  if (size < HEADER + 4 || size > profile.length || latin1(profile, 36, 4) !== 'acsp') return undefined;
  const tags = view.getUint32(HEADER);
  if (tags > Math.floor((size - HEADER - 4) / TAG_ENTRY)) return undefined; // a count larger than the table can hold
  let description: string | undefined;
  for (let i = 0; i < tags && description === undefined; i++) {
    const entry = HEADER + 4 + i * TAG_ENTRY;
    if (latin1(profile, entry, 4) !== 'desc') continue;
    const offset = view.getUint32(entry + 4);
    const length = view.getUint32(entry + 8);
    if (length < 12 || offset > size || length > size - offset) return undefined;
    description = readText(view, offset, length) ?? '';
  }
  return { colourSpace: latin1(profile, 16, 4), description };
}

/**
 * Whether a profile is sRGB, by its description: cameras, browsers and libvips embed
 * "sRGB IEC61966-2.1", "sRGB" (v4, Android) or "sRGB built-in". Anything else, or anything
 * unreadable, counts as not sRGB and is converted.
 */
export function isSrgbProfile(profile: Uint8Array | undefined): boolean {
  const summary = profile && readIccSummary(profile);
  return summary?.colourSpace === 'RGB ' && /^sRGB( IEC61966-2[.-]1| built-in)?$/.test((summary.description ?? '').trim());
}

/** The text of a desc, mluc or text tag of `length` bytes at `offset`, at most MAX_DESCRIPTION characters. */
function readText(view: DataView, offset: number, length: number): string | undefined {
  const bytes = new Uint8Array(view.buffer, view.byteOffset + offset, length);
  const type = latin1(bytes, 0, 4);
  if (type === 'desc') {
    // ASCII count (terminating NUL included) at 8, the characters from 12.
    const count = view.getUint32(offset + 8);
    if (count > length - 12) return undefined;
    return latin1(bytes, 12, Math.min(count, MAX_DESCRIPTION + 1)).replace(/\0.*$/s, '');
  }
  if (type === 'text') return latin1(bytes, 8, Math.min(length - 8, MAX_DESCRIPTION + 1)).replace(/\0.*$/s, '');
  if (type === 'mluc') {
    // Record count at 8, record size (12) at 12, records from 16: language, country, length
    // and offset (from the tag's start) of a UTF-16BE string. The first record is used.
    if (length < 28) return undefined;
    const records = view.getUint32(offset + 8);
    if (records === 0 || view.getUint32(offset + 12) !== 12) return undefined;
    const textLength = view.getUint32(offset + 20);
    const textOffset = view.getUint32(offset + 24);
    if (textOffset > length || textLength > length - textOffset) return undefined;
    let text = '';
    for (let i = 0; i + 1 < Math.min(textLength, (MAX_DESCRIPTION + 1) * 2); i += 2) text += String.fromCharCode(view.getUint16(offset + textOffset + i));
    return text;
  }
  return undefined;
}

function latin1(bytes: Uint8Array, start: number, length: number): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1', start, start + length);
}
