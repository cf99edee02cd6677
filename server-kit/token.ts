/**
 * Secrets in a path segment: how an event source proves itself to the UI server
 * (POST /events/<token>) and a local sender to the relay of `npm start`. A Host header
 * proves nothing (clients set it), and a Knative Service exposes one port, so a secret is
 * the check that holds on the public route too.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Constant-time comparison. Hashing first gives equal lengths, so neither the token's
 * length nor its first wrong byte shows in the timing. An empty `expected` matches nothing.
 */
export function tokenMatches(given: string, expected: string): boolean {
  if (expected === '') return false;
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** A fresh secret: 24 random bytes, URL-safe (32 characters of A-Z a-z 0-9 _ -). */
export function newToken(): string {
  return randomBytes(24).toString('base64url');
}
