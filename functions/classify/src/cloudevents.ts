// The CloudEvents transport: a Knative Trigger POSTs `dev.klassify.image.submitted` to `/`,
// and the event we return in the response body goes back into the Broker (the reply pattern).
//
// Status codes follow Knative's delivery rules: 2xx acknowledges; 4xx other than
// 404/409/429 is never retried; 5xx (and 404/409/429) is retried with backoff.
// - a good image     → 200 + dev.klassify.image.classified
// - a bad image      → 200 + dev.klassify.image.rejected (retrying cannot help)
// - a malformed event or a type we don't handle → 400 problem+json (not retried)
// - overload / not ready → 503 + Retry-After (raised by admission in http/app.ts; retried)
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CloudEvent, HTTP } from 'cloudevents';
import type { Classification, Classifier } from './classifier.ts';
import type { Config } from './config.ts';
import { ClientError, InvalidInput } from './errors.ts';
import { problemOf } from './http/problems.ts';
import { mediaType, readRaw } from './http/body.ts';

/** Handled here; the Trigger in knative/310-trigger-classify.yaml filters on it. */
export const SUBMITTED = 'dev.klassify.image.submitted';
/** Replies. Neither matches the classify Trigger's filter, so a reply cannot loop back. */
export const CLASSIFIED = 'dev.klassify.image.classified';
export const REJECTED = 'dev.klassify.image.rejected';

interface Reply {
  headers: Record<string, string>;
  body: string;
}

/**
 * Brokers deliver at least once. A redelivered (source, id) within the window gets the
 * stored reply instead of a second inference. Entries expire after ttlMs, and the oldest
 * go first when the map is full, so memory stays bounded.
 */
export class EventDeduper {
  private entries = new Map<string, { at: number; reply: Promise<Reply> }>();

  constructor(
    private ttlMs: number,
    private maxEntries: number,
  ) {}

  /** Returns the stored reply or runs `produce` once; failures are not remembered. */
  async once(source: string, id: string, produce: () => Promise<Reply>): Promise<{ reply: Reply; duplicate: boolean }> {
    const key = `${source}\u0000${id}`;
    const now = Date.now();
    const hit = this.entries.get(key);
    if (hit && now - hit.at < this.ttlMs) return { reply: await hit.reply, duplicate: true };
    const reply = produce();
    if (this.maxEntries > 0 && this.ttlMs > 0) {
      this.entries.delete(key);
      this.entries.set(key, { at: now, reply });
      this.evict(now);
      reply.catch(() => this.entries.delete(key));
    }
    return { reply: await reply, duplicate: false };
  }

  get size(): number {
    return this.entries.size;
  }

  private evict(now: number): void {
    // Map iteration is insertion order, so the oldest entries come first.
    for (const [key, entry] of this.entries) {
      if (this.entries.size <= this.maxEntries && now - entry.at < this.ttlMs) break;
      this.entries.delete(key);
    }
  }
}

export interface EventDeps {
  classifier: Classifier;
  config: Readonly<Config>;
  deduper: EventDeduper;
}

export async function handleCloudEvent(req: IncomingMessage, res: ServerResponse, deps: EventDeps): Promise<number> {
  const { config } = deps;
  // Structured mode carries the image as base64 inside JSON: allow for the 4/3 growth.
  const body = await readRaw(req, Math.ceil(config.bodyLimitBytes * 1.34) + 64 * 1024);
  const event = parseEvent(req, body);
  const { reply, duplicate } = await deps.deduper.once(event.source, event.id, async () => {
    const answer = await classifyEvent(event, deps);
    return HTTP.binary(answer) as Reply;
  });
  res.writeHead(200, { ...reply.headers, 'x-klassify-duplicate': String(duplicate) });
  res.end(reply.body);
  return 200;
}

function parseEvent(req: IncomingMessage, body: Buffer): CloudEvent<unknown> {
  let event: CloudEvent<unknown>;
  try {
    // Structured mode is JSON text; binary mode keeps the image as raw bytes.
    const structured = mediaType(req).startsWith('application/cloudevents');
    const parsed = HTTP.toEvent({ headers: req.headers as Record<string, string>, body: structured ? body.toString('utf8') : body });
    if (Array.isArray(parsed)) throw new Error('batched events are not accepted');
    event = parsed as CloudEvent<unknown>;
  } catch (err) {
    throw new InvalidInput(`Not a valid CloudEvent: ${(err as Error).message}.`, 'malformed-cloudevent', 'Malformed CloudEvent');
  }
  if (event.specversion !== '1.0') {
    throw new InvalidInput(`specversion ${event.specversion} is not supported; send CloudEvents 1.0.`, 'malformed-cloudevent', 'Malformed CloudEvent');
  }
  if (event.type !== SUBMITTED) {
    throw new InvalidInput(`Event type ${event.type} is not handled here; send ${SUBMITTED}.`, 'unsupported-event-type', 'Unsupported event type');
  }
  return event;
}

/** The image bytes: the body in binary mode, data_base64 in structured mode. */
function eventImage(event: CloudEvent<unknown>): Buffer {
  if (typeof event.data_base64 === 'string') return Buffer.from(event.data_base64, 'base64');
  if (Buffer.isBuffer(event.data)) return event.data;
  if (event.data instanceof Uint8Array) return Buffer.from(event.data);
  throw new InvalidInput('The event carries no binary image data (binary mode body or data_base64).', 'missing-image');
}

async function classifyEvent(event: CloudEvent<unknown>, deps: EventDeps): Promise<CloudEvent<unknown>> {
  const common = {
    source: deps.config.eventSource,
    subject: event.subject,
    // The input's identity, so a consumer can match a result to what it submitted.
    correlationid: event.id,
    correlationsource: event.source,
    datacontenttype: 'application/json',
  };
  try {
    const image = eventImage(event);
    if (image.length === 0) throw new InvalidInput('The event data is empty.', 'empty-body');
    const result: Classification = await deps.classifier.classify(image, { topk: deps.config.topkDefault, resize: deps.config.resize });
    return new CloudEvent({ ...common, type: CLASSIFIED, data: result });
  } catch (err) {
    if (!(err instanceof ClientError)) throw err; // a server fault: 500, and the broker retries
    return new CloudEvent({ ...common, type: REJECTED, data: problemOf(err) });
  }
}
