// Writing a JSON answer, the same way in both servers. RFC 8259 defines no charset parameter
// for application/json: JSON on the wire is UTF-8.
import type { ServerResponse } from 'node:http';

/** Writes `body` (a value, or JSON text already serialised once at start-up) with `headers`. */
export function writeJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const payload = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...headers });
  res.end(payload); // Node sends no body for HEAD
}
