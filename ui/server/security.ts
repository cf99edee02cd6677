/**
 * Security headers for every response. The page ships no inline script or
 * style (Alpine's CSP build evaluates templates without eval), so the policy
 * allows only same-origin code.
 */

import type { ServerResponse } from 'node:http';

export function contentSecurityPolicy(connectOrigins: readonly string[] = []): string {
  const connect = ["'self'", ...connectOrigins].join(' ');
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    // Previews are object URLs of the user's own files.
    "img-src 'self' blob: data:",
    `connect-src ${connect}`,
    "manifest-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
    "object-src 'none'",
  ].join('; ');
}

export function securityHeaders(csp: string): ReadonlyArray<[string, string]> {
  return Object.freeze([
    ['Content-Security-Policy', csp],
    ['X-Content-Type-Options', 'nosniff'],
    ['Referrer-Policy', 'no-referrer'],
    ['X-Frame-Options', 'DENY'],
    ['Cross-Origin-Opener-Policy', 'same-origin'],
    ['Cross-Origin-Resource-Policy', 'same-origin'],
    ['Permissions-Policy', 'camera=(), microphone=(), geolocation=(), payment=(), usb=()'],
  ] as Array<[string, string]>);
}

export function applyHeaders(res: ServerResponse, headers: ReadonlyArray<[string, string]>): void {
  for (const [name, value] of headers) res.setHeader(name, value);
}

/** The origin of an absolute URL, or nothing for a same-origin path. */
export function originOf(url: string): string[] {
  return /^https?:\/\//.test(url) ? [new URL(url).origin] : [];
}
