// The one table that knows HTTP: each core error code becomes a status, a problem type
// (RFC 9457) and the headers a client needs to act on it. Anything that is not a
// ClientError becomes a bare 500 that leaks nothing.
import { problemType, type Problem } from '../../../../contracts/problems.ts';
import { INTERNAL_PROBLEM } from '../../../../server-kit/problem.ts';
import { ClientError, MethodNotAllowed, type ErrorCode } from '../errors.ts';

export const STATUS: Record<ErrorCode, number> = {
  'invalid-input': 400,
  'invalid-parameter': 400,
  'empty-body': 400,
  'malformed-multipart': 400,
  'missing-image-field': 400,
  'malformed-cloudevent': 400,
  'unsupported-event-type': 400,
  'missing-image': 400,
  'not-found': 404,
  'unknown-model': 404,
  'batch-too-large': 400,
  'method-not-allowed': 405,
  'request-timeout': 408,
  'payload-too-large': 413,
  'unsupported-media-type': 415,
  'unprocessable-image': 422,
  'image-too-large': 422,
  'decode-timeout': 422,
  // nginx's convention for "the client went away": never sent, only counted.
  'client-closed': 499,
  // The client, not the server, is at its limit: a browser and a Knative broker both retry a 429 later.
  'too-many-uploads': 429,
  'overloaded': 503,
  'not-ready': 503,
  'worker-unavailable': 503,
};

/**
 * Codes after which the rest of the body is not read: the connection closes, sparing the
 * drain that Node would otherwise do to keep it alive (forever, for an endless stream).
 */
const CLOSES_CONNECTION = new Set<ErrorCode>(['payload-too-large', 'request-timeout', 'overloaded', 'too-many-uploads', 'malformed-multipart']);

function problemOf(err: ClientError): Problem {
  return { type: problemType(err.code), title: err.title, status: STATUS[err.code], detail: err.message, ...err.details };
}

export function headersOf(err: ClientError): Record<string, string> {
  const headers: Record<string, string> = {};
  if (CLOSES_CONNECTION.has(err.code)) headers.connection = 'close';
  if ('retryAfterSeconds' in err) headers['retry-after'] = String(err.retryAfterSeconds);
  if (err instanceof MethodNotAllowed) headers.allow = err.allow.join(', ');
  return headers;
}

/** The one place where an error becomes what an HTTP client sees. */
export function toProblem(err: unknown): { problem: Problem; headers: Record<string, string> } {
  if (err instanceof ClientError) return { problem: problemOf(err), headers: headersOf(err) };
  return { problem: INTERNAL_PROBLEM, headers: {} };
}

/** Whether the connection must close after this error's reply. */
export function closesConnection(err: unknown): boolean {
  return err instanceof ClientError && CLOSES_CONNECTION.has(err.code);
}
