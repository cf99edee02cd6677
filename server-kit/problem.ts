/**
 * Writing RFC 9457 problem details (contracts/problems.ts), the one error format of both
 * servers. Each server keeps its own table from error to problem; this only writes one.
 */
import type { ServerResponse } from 'node:http';
import { PROBLEM_MEDIA_TYPE, type Problem } from '../contracts/problems.ts';

/** What a client sees for anything that is not a known client error: nothing internal. */
export const INTERNAL_PROBLEM: Readonly<Problem> = Object.freeze({
  type: 'about:blank',
  title: 'Internal Server Error',
  status: 500,
  detail: 'The server failed to process the request.',
});

/**
 * Writes `problem` with its status, plus `headers` (Allow, Retry-After, Connection...).
 * Problems are never stored by caches: a 404 is otherwise cacheable by default. When a
 * reply has already begun, there is no way to signal the error but to cut the connection.
 */
export function writeProblem(res: ServerResponse, problem: Problem, { instance, headers = {} }: { instance?: string; headers?: Record<string, string> } = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const payload = JSON.stringify(instance ? { ...problem, instance } : problem);
  res.writeHead(problem.status, {
    ...headers,
    'content-type': PROBLEM_MEDIA_TYPE,
    'content-length': Buffer.byteLength(payload),
    'cache-control': 'no-store',
  });
  res.end(payload); // Node sends no body for HEAD
}
