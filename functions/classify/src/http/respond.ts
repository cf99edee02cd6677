// Writing responses. Errors go through toProblem(), the one place that decides what a
// client may see.
import type { ServerResponse } from 'node:http';
import { writeProblem } from '../../../../server-kit/problem.ts';
import { toProblem } from './problems.ts';

export { writeJson as sendJson } from '../../../../server-kit/json.ts';

export function sendProblem(res: ServerResponse, err: unknown, instance?: string): number {
  const { problem, headers } = toProblem(err);
  writeProblem(res, problem, { instance, headers });
  return problem.status;
}
