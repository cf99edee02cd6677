/**
 * RFC 9457 problem details (contracts/problems.ts), the one error format of the UI
 * server and the classify function. Handlers throw `HttpError`; `sendProblem`
 * renders it in one place. Anything else becomes a bare 500.
 */

import type { ServerResponse } from 'node:http';
import { PROBLEM_MEDIA_TYPE, problemType, type Problem } from '../../contracts/problems.ts';

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

/** Writes `error` as problem+json; unknown errors leak nothing but "Internal Server Error". */
export function sendProblem(res: ServerResponse, error: unknown, instance?: string): void {
  const known = error instanceof HttpError ? error : null;
  const status = known?.status ?? 500;
  const body: Problem = {
    type: known?.type ?? problemType('internal'),
    title: known?.title ?? 'Internal Server Error',
    status,
    ...(known?.detail ? { detail: known.detail } : {}),
    ...(instance ? { instance } : {}),
  };
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const payload = JSON.stringify(body);
  res.statusCode = status;
  for (const [name, value] of Object.entries(known?.headers ?? {})) res.setHeader(name, value);
  res.setHeader('Content-Type', PROBLEM_MEDIA_TYPE);
  res.setHeader('Content-Length', Buffer.byteLength(payload));
  res.setHeader('Cache-Control', 'no-store');
  res.end(res.req?.method === 'HEAD' ? undefined : payload);
}

function slug(title: string): string {
  return title.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
