// CloudEvents over HTTP: a Knative Trigger POSTs `dev.klassify.image.submitted` to `/`, and
// the reply event goes back in the response body, in binary mode.
//
// Status codes follow Knative's delivery rules: 2xx acknowledges; 4xx other than
// 404/409/429 is never retried; 5xx (and 404/409/429) is retried with backoff.
// - a good image     → 200 + dev.klassify.image.classified
// - a bad image      → 200 + dev.klassify.image.rejected (retrying cannot help)
// - a malformed event or a type we don't handle → 400 problem+json (not retried)
// - a body over the limit → 413 problem+json (not retried)
// - overload / not ready → 503 + Retry-After (raised by admission in http/app.ts; retried)
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { HTTP } from 'cloudevents';
import type { Classifier } from '../classifier.ts';
import type { Config } from '../config.ts';
import { ClientError } from '../errors.ts';
import { handleEvent, type EventDeps } from '../events/handler.ts';
import { EVENT_LIMITS, malformed, parseStructured, validateAttributes, type SubmittedEvent } from '../events/validate.ts';
import type { RequestFacts } from './route.ts';
import { mediaType, readRaw, type BodyGuard } from './body.ts';

const STRUCTURED = 'application/cloudevents+json';

/** A structured event carries the image as base64 (4 bytes per 3) plus a few attributes. */
export function structuredLimit(bodyLimitBytes: number): number {
  return Math.ceil(bodyLimitBytes / 3) * 4 + EVENT_LIMITS.jsonAllowanceBytes;
}

export async function handleCloudEvent(
  req: IncomingMessage,
  res: ServerResponse,
  body: BodyGuard,
  deps: Omit<EventDeps, 'config'> & { classifier: Classifier; config: Readonly<Config> },
  facts: RequestFacts = {},
): Promise<number> {
  const event = await readEvent(req, deps.config.bodyLimitBytes, body);
  // Only a served model labels metrics: any other name would be a new series per request.
  const { model } = event.attributes;
  if (model !== undefined && (deps.config.models as readonly string[]).includes(model)) facts.model = model;
  const { reply, duplicate } = await handleEvent(event, deps);
  const message = HTTP.binary(reply);
  const payload = String(message.body);
  res.writeHead(200, {
    ...(message.headers as Record<string, string>),
    'content-length': Buffer.byteLength(payload),
    'x-klassify-duplicate': String(duplicate),
  });
  res.end(payload);
  return 200;
}

/** The event with its attributes validated: in binary mode before the body is read. */
async function readEvent(req: IncomingMessage, bodyLimitBytes: number, guard: BodyGuard): Promise<SubmittedEvent> {
  const type = mediaType(req);
  if (type.startsWith('application/cloudevents-batch')) throw malformed('Batched events are not accepted; send one event per request.');
  if (type.startsWith('application/cloudevents')) {
    if (type !== STRUCTURED) throw malformed(`Event format ${type} is not supported; send ${STRUCTURED} or binary mode.`);
    return parseStructured(await readRaw(req, structuredLimit(bodyLimitBytes), guard));
  }
  const attributes = validateAttributes(binaryAttributes(req.headers)); // a malformed event costs no body read
  return { attributes, data: await readBinaryData(req, bodyLimitBytes, guard) };
}

/** Binary mode: each `ce-<name>` header is an attribute, and Content-Type is datacontenttype. */
function binaryAttributes(headers: IncomingHttpHeaders): Record<string, unknown> {
  const attributes: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith('ce-')) attributes[name.slice(3)] = value;
  }
  if (headers['content-type'] !== undefined) attributes.datacontenttype = headers['content-type'];
  return attributes;
}

/** The body is the image; an empty one is an event without data, which the handler rejects. */
async function readBinaryData(req: IncomingMessage, limit: number, guard: BodyGuard): Promise<Buffer | undefined> {
  try {
    return await readRaw(req, limit, guard);
  } catch (err) {
    if (err instanceof ClientError && err.code === 'empty-body') return undefined;
    throw err;
  }
}
