/**
 * Range requests on static files, per RFC 9110 §14. sirv serves one range but
 * trusts its input: "bytes=5-2" makes it throw mid-response and drop the
 * connection, "bytes=-5" (the last 5 bytes) is read as the first 6. So the
 * Range header is settled here first:
 *
 * - another unit, an If-Range, or several ranges: Range is ignored (200, the
 *   whole file), which the RFC allows;
 * - an invalid range (last-pos < first-pos, not numbers) or none satisfiable
 *   (first-pos past the end): 416 with Content-Range: bytes * / size;
 * - one satisfiable range: rewritten as absolute first-last and served by sirv
 *   from the uncompressed file (a byte range of a .br twin would not match
 *   the size the client asked about).
 */

import { statSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import path from 'node:path';
import { RangeNotSatisfiable } from './errors.ts';

export type ByteRange = { start: number; end: number };

/** Parses a Range value against a size: ranges, 'ignore', or 'unsatisfiable'. */
export function parseRange(value: string, size: number): ByteRange[] | 'ignore' | 'unsatisfiable' {
  const match = /^\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*=(.*)$/.exec(value);
  if (!match) return 'unsatisfiable';
  if (match[1].toLowerCase() !== 'bytes') return 'ignore';
  const specs = match[2].split(',').map((spec) => spec.trim()).filter(Boolean);
  if (specs.length === 0) return 'unsatisfiable';
  const ranges: ByteRange[] = [];
  for (const spec of specs) {
    const int = /^(\d+)-(\d*)$/.exec(spec);
    const suffix = /^-(\d+)$/.exec(spec);
    if (int) {
      const first = Number(int[1]);
      const last = int[2] === '' ? Infinity : Number(int[2]);
      if (last < first) return 'unsatisfiable'; // an invalid range-spec (§14.1.1)
      if (first < size) ranges.push({ start: first, end: Math.min(last, size - 1) });
    } else if (suffix) {
      const length = Number(suffix[1]);
      if (length > 0 && size > 0) ranges.push({ start: Math.max(0, size - length), end: size - 1 });
    } else {
      return 'unsatisfiable';
    }
  }
  if (ranges.length === 0) return 'unsatisfiable';
  return ranges;
}

/** Settles req's Range header for the static file at `pathname` under `root`. */
export function settleRange(req: IncomingMessage, root: string, pathname: string): void {
  const value = req.headers.range;
  if (value === undefined) return;
  const size = fileSize(root, pathname);
  if (size === null || req.headers['if-range'] !== undefined) {
    delete req.headers.range;
    return;
  }
  const ranges = parseRange(value, size);
  if (ranges === 'unsatisfiable') throw new RangeNotSatisfiable(size);
  if (ranges === 'ignore' || ranges.length > 1) {
    delete req.headers.range;
    return;
  }
  req.headers.range = `bytes=${ranges[0].start}-${ranges[0].end}`;
  delete req.headers['accept-encoding'];
}

function fileSize(root: string, pathname: string): number | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    return null;
  }
  const file = path.join(root, decoded);
  if (file !== root && !file.startsWith(root + path.sep)) return null;
  try {
    const stats = statSync(file);
    if (stats.isFile()) return stats.size;
    if (stats.isDirectory()) return statSync(path.join(file, 'index.html')).size;
  } catch {
    // not a file: sirv answers 404
  }
  return null;
}
