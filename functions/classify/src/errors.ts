// Every error the service means to show a client, in one place, with no protocol in it:
// a stable code, a human title and detail, and structured facts. Each transport owns its
// own mapping: http/problems.ts turns a code into a status, problem type and headers;
// events/handler.ts turns it into a `rejected` reply or a failed delivery, whose status
// http/events.ts leaves to http/problems.ts. Anything that is not a ClientError is a bug
// and becomes a bare 500 without internals.

export type ErrorCode =
  | 'invalid-input'
  | 'invalid-parameter'
  | 'empty-body'
  | 'malformed-multipart'
  | 'missing-image-field'
  | 'payload-too-large'
  | 'request-timeout'
  | 'client-closed'
  | 'unsupported-media-type'
  | 'unprocessable-image'
  | 'image-too-large'
  | 'decode-timeout'
  | 'malformed-cloudevent'
  | 'unsupported-event-type'
  | 'missing-image'
  | 'not-found'
  | 'unknown-model'
  | 'batch-too-large'
  | 'method-not-allowed'
  | 'overloaded'
  | 'too-many-uploads'
  | 'not-ready'
  | 'worker-unavailable';

export class ClientError extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly title: string,
    detail: string,
    /** Facts a client can act on (a limit, the valid values); shown as problem extensions. */
    readonly details: Record<string, unknown> = {},
  ) {
    super(detail);
    this.name = new.target.name;
  }
}

export class InvalidInput extends ClientError {
  constructor(detail: string, code: ErrorCode = 'invalid-input', title = 'Invalid request') {
    super(code, title, detail);
  }
}

export class InvalidParameter extends ClientError {
  constructor(name: string, detail: string, details: Record<string, unknown> = {}) {
    super('invalid-parameter', `Invalid parameter "${name}"`, detail, { parameter: name, ...details });
  }
}

/**
 * A request parameter (?model=, the form field, the CloudEvent extension) names a model this
 * server does not serve: an invalid parameter, listing the valid ones in `models`. (A path
 * that names one, in the Open Inference Protocol, is UnknownModel: not found.)
 */
export function unknownModelParameter(requested: string, models: readonly string[]): InvalidParameter {
  return new InvalidParameter(
    'model',
    `This server does not serve the model ${JSON.stringify(requested.slice(0, 100))}; choose one of ${models.join(', ')}, or name none for the default.`,
    { models },
  );
}

export class EmptyBody extends ClientError {
  constructor() {
    super('empty-body', 'Empty request body', 'Send the image bytes as the request body, or as the "image" field of a multipart form.');
  }
}

export class PayloadTooLarge extends ClientError {
  constructor(limit: number) {
    const mib = (limit / 1024 / 1024).toFixed(limit < 1024 * 1024 ? 2 : 0);
    super(
      'payload-too-large',
      'Request body too large',
      `The body exceeds the limit of ${limit} bytes (${mib} MiB). Shrink the photo first, e.g. to 1024 px on the long side as a JPEG at quality 90: the model only sees 224×224.`,
      { limitBytes: limit },
    );
  }
}

/** The client sent the body too slowly or stalled: it must not hold a place forever. */
export class RequestTimeout extends ClientError {
  constructor(detail: string) {
    super('request-timeout', 'Request body too slow', detail);
  }
}

/** The client went away before we answered; nobody reads this, it only labels metrics. */
export class ClientClosed extends ClientError {
  constructor() {
    super('client-closed', 'Client closed the request', 'The client closed the connection before the answer was ready.');
  }
}

export class UnsupportedMediaType extends ClientError {
  constructor(detail: string, supported: readonly string[]) {
    super('unsupported-media-type', 'Unsupported image format', detail, { supported });
  }
}

export class UnprocessableImage extends ClientError {
  constructor(detail: string, code: ErrorCode = 'unprocessable-image', title = 'Image cannot be decoded', details: Record<string, unknown> = {}) {
    super(code, title, detail, details);
  }
}

/**
 * Decoding would cost more than the configured budget: too many pixels, too wide or tall,
 * too many decoded bytes, JPEG scans or frames, or metadata past its limit. Found from the
 * header, before decoding; or found by the decoder process passing its memory allowance.
 */
export class ImageTooLarge extends ClientError {
  constructor(title: string, detail: string, details: Record<string, unknown>, advice = 'Re-encode it smaller, e.g. 2048 px on the long side as a baseline JPEG: the model only sees 224×224.') {
    super('image-too-large', title, `${detail} ${advice}`, details);
  }
}

/** Decoding ran past its time budget and was stopped. */
export class DecodeTimeout extends ClientError {
  constructor(seconds: number) {
    super('decode-timeout', 'Image took too long to decode', `Decoding stopped after ${seconds} s, the configured limit.`, { limitSeconds: seconds });
  }
}

export class NotFound extends ClientError {
  constructor(path: string) {
    super('not-found', 'Not found', `No route for ${path}.`);
  }
}

/** A model (or model version) the server does not serve; `served` lists the ones it does. */
export class UnknownModel extends ClientError {
  constructor(detail: string, served: readonly string[]) {
    super('unknown-model', 'Unknown model', detail, { models: served });
  }
}

/** One request carries more images than a batch may hold. */
export class BatchTooLarge extends ClientError {
  constructor(size: number, limit: number) {
    super('batch-too-large', 'Batch too large', `The request carries ${size} images; a batch may hold at most ${limit}. Split it into several requests.`, {
      limitImages: limit,
    });
  }
}

export class MethodNotAllowed extends ClientError {
  constructor(method: string, readonly allow: readonly string[]) {
    super('method-not-allowed', 'Method not allowed', `${method} is not allowed here; use ${allow.join(' or ')}.`);
  }
}

/** The bounded queue is full: the client (or a Knative broker) should retry later. */
export class Overloaded extends ClientError {
  constructor(readonly retryAfterSeconds: number) {
    super('overloaded', 'Server overloaded', 'The inference queue is full; retry after the indicated delay.');
  }
}

/**
 * One client (an IPv4 address or IPv6 /64, behind the trusted proxies) has slow uploads and
 * already as many in progress as it may (admission.ts): the server is not overloaded, this
 * client is using its share. Refused before the body is read, or cut while it is read.
 */
export class TooManyUploads extends ClientError {
  readonly retryAfterSeconds = 5;
  constructor(limit: number, slowAfterMs: number) {
    super(
      'too-many-uploads',
      'Too many slow uploads from this client',
      `This client's uploads arrive slowly (the oldest for over ${slowAfterMs / 1000} s), and a client with slow uploads may have at most ${limit} in progress; send the next one when one has finished.`,
      { limitUploads: limit },
    );
  }
}

export class NotReady extends ClientError {
  readonly retryAfterSeconds = 1;
  constructor(reason: string) {
    super('not-ready', 'Model not ready', reason);
  }
}

/** An inference worker died or hung with this request on it; another attempt may work. */
export class WorkerUnavailable extends ClientError {
  readonly retryAfterSeconds = 1;
  constructor(reason: string) {
    super('worker-unavailable', 'Inference worker unavailable', reason);
  }
}

/**
 * Start-up failures: bad configuration (ConfigError, shared with the UI server through
 * server-kit), missing or corrupt model files. Never sent to clients.
 */
export { ConfigError } from '../../../server-kit/config.ts';

export class AssetError extends Error {
  override name = 'AssetError';
}
