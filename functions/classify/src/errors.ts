// Every error the service means to show a client, in one place. Transports map them to
// HTTP problem+json (RFC 9457) or to a `rejected` CloudEvent; anything else is a bug and
// becomes a bare 500 without internals.

export const PROBLEM_BASE = 'https://klassify.dev/problems/';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  [extension: string]: unknown;
}

export class ClientError extends Error {
  constructor(
    readonly status: number,
    readonly slug: string,
    readonly title: string,
    detail: string,
    readonly headers: Record<string, string> = {},
    readonly extensions: Record<string, unknown> = {},
  ) {
    super(detail);
    this.name = new.target.name;
  }

  toProblem(): Problem {
    return { type: PROBLEM_BASE + this.slug, title: this.title, status: this.status, detail: this.message, ...this.extensions };
  }
}

export class InvalidInput extends ClientError {
  constructor(detail: string, slug = 'invalid-input', title = 'Invalid request') {
    super(400, slug, title, detail);
  }
}

export class InvalidParameter extends ClientError {
  constructor(name: string, detail: string) {
    super(400, 'invalid-parameter', `Invalid parameter "${name}"`, detail, {}, { parameter: name });
  }
}

export class EmptyBody extends ClientError {
  constructor() {
    super(400, 'empty-body', 'Empty request body', 'Send the image bytes as the request body, or as the "image" field of a multipart form.');
  }
}

export class PayloadTooLarge extends ClientError {
  constructor(limit: number) {
    super(413, 'payload-too-large', 'Request body too large', `The body exceeds the limit of ${limit} bytes.`, { connection: 'close' }, { limitBytes: limit });
  }
}

export class UnsupportedMediaType extends ClientError {
  constructor(detail: string, supported: readonly string[]) {
    super(415, 'unsupported-media-type', 'Unsupported image format', detail, {}, { supported });
  }
}

export class UnprocessableImage extends ClientError {
  constructor(detail: string, slug = 'unprocessable-image', title = 'Image cannot be decoded') {
    super(422, slug, title, detail);
  }
}

export class NotFound extends ClientError {
  constructor(path: string) {
    super(404, 'not-found', 'Not found', `No route for ${path}.`);
  }
}

export class MethodNotAllowed extends ClientError {
  constructor(method: string, allow: readonly string[]) {
    super(405, 'method-not-allowed', 'Method not allowed', `${method} is not allowed here; use ${allow.join(' or ')}.`, { allow: allow.join(', ') });
  }
}

/** The bounded queue is full: the client (or a Knative broker) should retry later. */
export class Overloaded extends ClientError {
  constructor(retryAfterSeconds: number) {
    // Closing the connection spares reading a body we already refused (Node would drain it
    // to keep the connection alive), which under overload steals CPU from real work.
    super(503, 'overloaded', 'Server overloaded', 'The inference queue is full; retry after the indicated delay.', {
      'retry-after': String(retryAfterSeconds),
      connection: 'close',
    });
  }
}

export class NotReady extends ClientError {
  constructor(reason: string) {
    super(503, 'not-ready', 'Model not ready', reason, { 'retry-after': '1' });
  }
}

/** Start-up failures: bad configuration, missing or corrupt model files. Never sent to clients. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

export class AssetError extends Error {
  override name = 'AssetError';
}

const INTERNAL: Problem = {
  type: 'about:blank',
  title: 'Internal Server Error',
  status: 500,
  detail: 'The server failed to process the request.',
};

/** The one place where an error becomes what the client sees. */
export function toProblem(err: unknown): { problem: Problem; headers: Record<string, string> } {
  if (err instanceof ClientError) return { problem: err.toProblem(), headers: err.headers };
  return { problem: INTERNAL, headers: {} };
}
