/**
 * The UI server's errors: handlers throw `HttpError`, and `sendProblem` turns it
 * into RFC 9457 problem details (contracts/problems.ts), written by server-kit
 * like the classify function's. Anything else becomes a bare 500.
 */

import type { ServerResponse } from 'node:http';
import { problemType, type Problem } from '../../contracts/problems.ts';
import { BodyError } from '../../server-kit/body.ts';
import { INTERNAL_PROBLEM, writeProblem } from '../../server-kit/problem.ts';

export interface ProblemInit {
  title: string;
  detail?: string;
  /** Code appended to PROBLEM_BASE, e.g. "not-found". */
  type?: string;
  headers?: Record<string, string>;
}

export class HttpError extends Error {
  readonly status: number;
  readonly title: string;
  readonly detail?: string;
  readonly type: string;
  readonly headers: Record<string, string>;

  constructor(status: number, init: ProblemInit, options?: { cause?: unknown }) {
    super(init.detail ? `${init.title}: ${init.detail}` : init.title, options);
    this.name = 'HttpError';
    this.status = status;
    this.title = init.title;
    this.detail = init.detail;
    this.type = problemType(init.type ?? slug(init.title));
    this.headers = init.headers ?? {};
  }
}

export function notFoundInit(path: string): ProblemInit {
  return { title: 'Not found', detail: `Nothing is served at ${truncate(path, 200)}.`, type: 'not-found' };
}

export function notFound(path: string): HttpError {
  return new HttpError(404, notFoundInit(path));
}

export function methodNotAllowed(method: string, allow: string[]): HttpError {
  return new HttpError(405, {
    title: 'Method not allowed',
    detail: `${truncate(method, 20)} is not allowed here; use ${allow.join(' or ')}.`,
    type: 'method-not-allowed',
    headers: { Allow: allow.join(', ') },
  });
}

export function payloadTooLarge(limit: number): HttpError {
  return new HttpError(413, {
    title: 'Image too large',
    detail: `The request body exceeds the limit of ${limit} bytes.`,
    type: 'payload-too-large',
  });
}

/** 408 for a body that did not arrive within `timeoutMs`; the connection closes. */
export function bodyTooSlow(title: string, timeoutMs: number): HttpError {
  const within = timeoutMs >= 1000 ? `${Math.round(timeoutMs / 1000)} s` : `${timeoutMs} ms`;
  return new HttpError(408, {
    title,
    detail: `The body did not arrive within ${within}.`,
    type: 'request-timeout',
    headers: { Connection: 'close' },
  });
}

/**
 * A body read's failure (server-kit/body.ts) as the endpoint's own problem; anything
 * else as is. Nobody reads the answer to a client that has gone: it only ends the request.
 */
export function bodyProblem(error: unknown, answers: { tooLarge: HttpError; tooSlow: HttpError }): unknown {
  if (!(error instanceof BodyError)) return error;
  if (error.reason === 'too-large') return answers.tooLarge;
  if (error.reason === 'too-slow') return answers.tooSlow;
  return new HttpError(400, { title: 'Request aborted', type: 'request-aborted' });
}

/** Writes `error` as problem+json; unknown errors leak nothing but "Internal Server Error". */
export function sendProblem(res: ServerResponse, error: unknown, instance?: string): void {
  if (!(error instanceof HttpError)) return writeProblem(res, INTERNAL_PROBLEM, { instance });
  const problem: Problem = {
    type: error.type,
    title: error.title,
    status: error.status,
    ...(error.detail ? { detail: error.detail } : {}),
  };
  writeProblem(res, problem, { instance, headers: error.headers });
}

function slug(title: string): string {
  return title.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
