// Walking JSON text byte by byte without parsing it, to bound what JSON.parse will build
// before it builds it (events/validate.ts, http/v2/codec.ts). Strings are skipped whole
// with indexOf, so a long base64 member costs almost nothing.

export const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** The index of the quote that closes the string opened at `open`, or the text's length. */
export function stringEnd(text: Buffer, open: number): number {
  let at = open;
  for (;;) {
    at = text.indexOf(QUOTE, at + 1);
    if (at < 0) return text.length;
    let slashes = 0;
    while (text[at - 1 - slashes] === BACKSLASH) slashes++;
    if (slashes % 2 === 0) return at;
  }
}
