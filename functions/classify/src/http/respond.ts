// Writing responses. Errors go through toProblem(), the one place that decides what a
// client may see.
import type { ServerResponse } from 'node:http';
import { writeProblem } from '../../../../server-kit/problem.ts';
import { toProblem } from './problems.ts';

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...headers });
  res.end(payload);
}

export function sendProblem(res: ServerResponse, err: unknown, instance?: string): number {
  const { problem, headers } = toProblem(err);
  writeProblem(res, problem, { instance, headers });
  return problem.status;
}
