// The CloudEvents handler, free of any transport: a validated event in, a reply event (or an
// error for the transport to map) out. The reply goes back into the Broker (the reply pattern).
import { subtle } from 'node:crypto';
import { CloudEvent } from 'cloudevents';
import { CLASSIFIED, REJECTED, type Rejection } from '../../../../contracts/events.ts';
import { problemType } from '../../../../contracts/problems.ts';
import type { Classifier } from '../classifier.ts';
import type { Config } from '../config.ts';
import type { Metrics } from '../metrics.ts';
import { ClientError, ConfigError, InvalidInput, unknownModelParameter, type ErrorCode } from '../errors.ts';
import { EventDeduper } from './dedupe.ts';
import { copiedAttributes, type SubmittedEvent } from './validate.ts';

export type Reply = CloudEvent<unknown>;

export interface EventDeps {
  classifier: Pick<Classifier, 'classify'>;
  config: Pick<Config, 'eventSource' | 'topkDefault' | 'resize' | 'model' | 'models'>;
  deduper: EventDeduper<Reply>;
}

/**
 * What each error means for an event. `reject`: the image is bad and a retry cannot help,
 * so the delivery is acknowledged with a rejected event that carries the problem. `refuse`:
 * the delivery fails with the error, which the transport maps (malformed → 400, never
 * retried; overload or a lost worker → 503, retried with backoff).
 */
const OUTCOME: Record<ErrorCode, 'reject' | 'refuse'> = {
  'empty-body': 'reject',
  'missing-image': 'reject',
  'unsupported-media-type': 'reject',
  'unprocessable-image': 'reject',
  'image-too-large': 'reject',
  'decode-timeout': 'reject',
  'invalid-input': 'reject',
  'malformed-cloudevent': 'refuse',
  'unsupported-event-type': 'refuse',
  'invalid-parameter': 'refuse',
  'malformed-multipart': 'refuse',
  'missing-image-field': 'refuse',
  'payload-too-large': 'refuse',
  'request-timeout': 'refuse',
  'client-closed': 'refuse',
  'not-found': 'refuse',
  'unknown-model': 'reject', // a retry cannot make the model exist
  'batch-too-large': 'reject',
  'method-not-allowed': 'refuse',
  'overloaded': 'refuse',
  'too-many-uploads': 'refuse',
  'not-ready': 'refuse',
  'worker-unavailable': 'refuse',
};

/**
 * Answers from the de-duplication store or classifies, with the model that the extension
 * attribute `klassifymodel` names (the default without one; one not served is refused like
 * an invalid parameter, 400). The store's key is (source, id, model, SHA-256 of the data): a
 * true redelivery gets the stored reply, while another payload under the same (source, id)
 * is classified on its own.
 */
export async function handleEvent(event: SubmittedEvent, deps: EventDeps): Promise<{ reply: Reply; duplicate: boolean }> {
  const { attributes } = event;
  const model = eventModel(attributes.model, deps.config);
  // Web Crypto hashes on the libuv pool, so a 10 MB image does not hold the event loop.
  const digest = event.data ? Buffer.from(await subtle.digest('SHA-256', event.data)).toString('base64') : '-';
  const key = `${attributes.source}\n${attributes.id}\n${model}\n${digest}`;
  const { value, duplicate } = await deps.deduper.once(key, async () => {
    // Only validated values reach the reply, and so its headers; the input's identity goes
    // with it, so a consumer can match a result to what it submitted.
    const common = { ...copiedAttributes(attributes), source: deps.config.eventSource, datacontenttype: 'application/json' };
    try {
      const result = await classify(event.data, model, deps);
      return new CloudEvent({ ...common, type: CLASSIFIED, data: result });
    } catch (err) {
      if (!(err instanceof ClientError) || OUTCOME[err.code] === 'refuse') throw err;
      return new CloudEvent({ ...common, type: REJECTED, data: rejection(err) });
    }
  });
  return { reply: value, duplicate };
}

/** Why the image was refused: the problem's type, title, detail and facts, with no transport's status. */
function rejection(err: ClientError): Rejection {
  return { type: problemType(err.code), title: err.title, detail: err.message, ...err.details };
}

/**
 * The SDK checks the source of every reply it builds: a KLASSIFY_EVENT_SOURCE it refuses
 * stops start-up instead of failing every delivery.
 */
export function checkEventSource(source: string): void {
  try {
    new CloudEvent({ id: 'check', source, type: CLASSIFIED });
  } catch {
    throw new ConfigError(`KLASSIFY_EVENT_SOURCE="${source}" is invalid; valid values: a URI reference (RFC 3986), as a CloudEvent source must be, e.g. /klassify/classify.`);
  }
}

/** The model an event asks for with the klassifymodel extension, or the default. */
function eventModel(requested: string | undefined, config: EventDeps['config']): string {
  if (requested === undefined) return config.model;
  if (!(config.models as readonly string[]).includes(requested)) throw unknownModelParameter(requested, config.models);
  return requested;
}

function classify(data: Buffer | undefined, model: string, deps: EventDeps) {
  if (!data) throw new InvalidInput('The event carries no image: send it as the body in binary mode, or as data_base64 in structured mode.', 'missing-image', 'No image in the event');
  if (data.length === 0) throw new InvalidInput('The event data is empty.', 'empty-body', 'Empty image');
  return deps.classifier.classify(data, { topk: deps.config.topkDefault, resize: deps.config.resize, model });
}

/** The de-duplication store for replies, reported as metrics; a reply's size is that of its JSON form. */
export function createDeduper(config: Pick<Config, 'dedupeTtlMs' | 'dedupeMaxEntries' | 'dedupeMaxBytes'>, metrics?: Pick<Metrics, 'dedupeEntries' | 'dedupeBytes'>): EventDeduper<Reply> {
  const limits = { ttlMs: config.dedupeTtlMs, maxEntries: config.dedupeMaxEntries, maxBytes: config.dedupeMaxBytes };
  return new EventDeduper<Reply>(limits, (reply) => reply.toString().length, (entries, bytes) => {
    metrics?.dedupeEntries.set(entries);
    metrics?.dedupeBytes.set(bytes);
  });
}
