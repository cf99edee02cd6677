/**
 * Every error the UI server means to show a client, in one place, with no protocol in it:
 * a stable code (the problem type's last segment), a title, a detail, and the facts a client
 * can act on. problem.ts is the one table from code to HTTP status and headers. Anything
 * that is not a UiError is a bug and becomes a bare 500.
 */

import { BodyError } from '../../server-kit/body.ts';

export type UiErrorCode =
  | 'not-found'
  | 'method-not-allowed'
  | 'request-aborted'
  | 'request-timeout'
  | 'payload-too-large'
  | 'event-too-large'
  | 'dead-letter-too-large'
  | 'event-too-deep'
  | 'invalid-cloudevent'
  | 'range-not-satisfiable'
  | 'too-many-streams'
  | 'too-many-streams-per-client'
  | 'shutting-down'
  | 'upstream-unreachable'
  | 'upstream-closed'
  | 'upstream-timeout';

export class UiError extends Error {
  constructor(
    readonly code: UiErrorCode,
    readonly title: string,
    readonly detail?: string,
    options?: { cause?: unknown },
  ) {
    super(detail ? `${title}: ${detail}` : title, options);
    this.name = new.target.name;
  }
}

export class NotFound extends UiError {
  constructor(path: string) {
    super('not-found', 'Not found', `Nothing is served at ${truncate(path, 200)}.`);
  }
}

export class MethodNotAllowed extends UiError {
  constructor(method: string, readonly allow: readonly string[]) {
    super('method-not-allowed', 'Method not allowed', `${truncate(method, 20)} is not allowed here; use ${allow.join(' or ')}.`);
  }
}

/** A byte range outside a static file of `size` bytes. */
export class RangeNotSatisfiable extends UiError {
  constructor(readonly size: number) {
    super('range-not-satisfiable', 'Range not satisfiable', `The file has ${size} bytes; ask for bytes=first-last with first <= last < ${size}.`);
  }
}

/** A body over `limit` bytes: an upload, a relayed event or a dead letter. */
export function tooLarge(code: 'payload-too-large' | 'event-too-large' | 'dead-letter-too-large', limit: number): UiError {
  const [title, detail] = {
    'payload-too-large': ['Image too large', `The request body exceeds the limit of ${limit} bytes.`],
    'event-too-large': ['Event too large', `The request body exceeds the limit of ${limit} bytes.`],
    'dead-letter-too-large': ['Dead letter too large', `A dead letter may take at most ${limit} bytes.`],
  }[code];
  return new UiError(code, title, detail);
}

/** A body that did not arrive within `timeoutMs`. */
export function tooSlow(title: string, timeoutMs: number): UiError {
  const within = timeoutMs >= 1000 ? `${Math.round(timeoutMs / 1000)} s` : `${timeoutMs} ms`;
  return new UiError('request-timeout', title, `The body did not arrive within ${within}.`);
}

/**
 * A body read's failure (server-kit/body.ts) as the endpoint's own error; anything else as
 * is. Nobody reads the answer to a client that has gone: it only ends the request.
 */
export function bodyError(error: unknown, answers: { tooLarge: UiError; tooSlow: UiError }): unknown {
  if (!(error instanceof BodyError)) return error;
  if (error.reason === 'too-large') return answers.tooLarge;
  if (error.reason === 'too-slow') return answers.tooSlow;
  return new UiError('request-aborted', 'Request aborted');
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
