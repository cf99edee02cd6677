/**
 * The one table that knows HTTP: each UI server error code (errors.ts) becomes a status and
 * the headers a client needs to act on it, written as RFC 9457 problem details by
 * server-kit, like the classify function's. Anything that is not a UiError becomes a bare
 * 500 that leaks nothing.
 */

import type { ServerResponse } from 'node:http';
import { problemType, type Problem } from '../../contracts/problems.ts';
import { INTERNAL_PROBLEM, writeProblem } from '../../server-kit/problem.ts';
import { MethodNotAllowed, RangeNotSatisfiable, UiError, type UiErrorCode } from './errors.ts';

interface Answer {
  status: number;
  /** Seconds a client should wait before it tries again. */
  retryAfter?: number;
  /** The rest of the body is not read: the connection closes instead of draining it. */
  close?: true;
}

const ANSWERS: Record<UiErrorCode, Answer> = {
  'request-aborted': { status: 400 },
  'invalid-cloudevent': { status: 400 },
  'not-found': { status: 404 },
  'method-not-allowed': { status: 405 },
  'request-timeout': { status: 408, close: true },
  'payload-too-large': { status: 413, close: true },
  'event-too-large': { status: 413, close: true },
  'dead-letter-too-large': { status: 413, close: true },
  'range-not-satisfiable': { status: 416 },
  'event-too-deep': { status: 422 },
  'too-many-streams-per-client': { status: 429, retryAfter: 30 },
  'upstream-unreachable': { status: 502, retryAfter: 2 },
  'shutting-down': { status: 503, retryAfter: 1 },
  'too-many-streams': { status: 503, retryAfter: 30 },
  'upstream-closed': { status: 503, retryAfter: 1 },
  'upstream-timeout': { status: 504, retryAfter: 5 },
};

/** What a client sees for `error`: its problem and headers. */
export function toProblem(error: unknown): { problem: Problem; headers: Record<string, string> } {
  if (!(error instanceof UiError)) return { problem: INTERNAL_PROBLEM, headers: {} };
  const { status, retryAfter, close } = ANSWERS[error.code];
  const problem: Problem = { type: problemType(error.code), title: error.title, status, ...(error.detail ? { detail: error.detail } : {}) };
  const headers: Record<string, string> = {};
  if (retryAfter !== undefined) headers['Retry-After'] = String(retryAfter);
  if (close) headers.Connection = 'close';
  if (error instanceof MethodNotAllowed) headers.Allow = error.allow.join(', ');
  if (error instanceof RangeNotSatisfiable) Object.assign(headers, { 'Content-Range': `bytes */${error.size}`, 'Accept-Ranges': 'bytes' });
  return { problem, headers };
}

/** Writes `error` as problem+json. */
export function sendProblem(res: ServerResponse, error: unknown, instance?: string): void {
  const { problem, headers } = toProblem(error);
  writeProblem(res, problem, { instance, headers });
}
