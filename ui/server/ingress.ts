/**
 * Who is asking: the event source's secret, and a browser's address.
 *
 * The event source (the Knative Trigger, or the local relay) proves itself by
 * a secret path segment, POST /events/<token>. A Host header proves nothing
 * (clients set it), and a Knative Service exposes one port, so a secret is the
 * check that holds on the public route too.
 */

import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/**
 * Constant-time comparison. Hashing first gives equal lengths, so neither the
 * token's length nor its first wrong byte shows in the timing.
 */
export function tokenMatches(given: string, expected: string): boolean {
  if (expected === '') return false;
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/**
 * The client's address: the socket's peer, or, behind `hops` proxies that each
 * append their peer to X-Forwarded-For, the entry that the outermost trusted
 * proxy appended. Entries further left are the client's own claims and are
 * ignored.
 */
export function clientAddress(req: IncomingMessage, hops: number): string {
  const peer = req.socket.remoteAddress ?? 'unknown';
  if (hops <= 0) return peer;
  const header = req.headers['x-forwarded-for'];
  const forwarded = (Array.isArray(header) ? header.join(',') : header ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);
  const chain = [...forwarded, peer];
  return chain[Math.max(0, chain.length - 1 - hops)];
}
