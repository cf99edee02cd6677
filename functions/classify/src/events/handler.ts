// The CloudEvents handler, free of any transport: a submitted event in, a reply event (or an
// error for the transport to map) out. The reply goes back into the Broker (the reply pattern).
import { subtle } from 'node:crypto';
import { CloudEvent } from 'cloudevents';
import { CLASSIFIED, REJECTED } from '../../../../contracts/events.ts';
import { MODEL_EXTENSION } from '../../../../contracts/models.ts';
import type { Classifier } from '../classifier.ts';
import type { Config } from '../config.ts';
import type { Metrics } from '../metrics.ts';
import { ClientError, InvalidInput, type ErrorCode } from '../errors.ts';
import { problemOf } from '../http/problems.ts';
import { EventDeduper } from './dedupe.ts';
import { validateAttributes, type IncomingEvent } from './validate.ts';

export type Reply = CloudEvent<unknown>;

export interface EventDeps {
  /** classify, and model(): the served model by name (the default for none), or UnknownModel. */
  classifier: Pick<Classifier, 'classify'> & { model(name?: string): { name: string } };
  config: Pick<Config, 'eventSource' | 'topkDefault' | 'resize'>;
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
  'event-conflict': 'refuse',
  'invalid-parameter': 'refuse',
  'unknown-model': 'refuse',
  'malformed-multipart': 'refuse',
  'missing-image-field': 'refuse',
  'payload-too-large': 'refuse',
  'request-timeout': 'refuse',
  'client-closed': 'refuse',
  'not-found': 'refuse',
  'method-not-allowed': 'refuse',
  'overloaded': 'refuse',
  'not-ready': 'refuse',
  'worker-unavailable': 'refuse',
};

/**
 * Validates every attribute, then answers from the de-duplication store or classifies with
 * the model the `klassifymodel` extension names (the default without it).
 * The store's key is (source, id, model, SHA-256 of the data): a true redelivery gets the stored
 * reply, while another payload under the same (source, id) is classified on its own.
 */
export async function handleEvent(event: IncomingEvent, deps: EventDeps): Promise<{ reply: Reply; duplicate: boolean }> {
  const attributes = validateAttributes(event.attributes);
  // The extension attribute names a model; an unknown one is refused before any work.
  const requested = event.attributes[MODEL_EXTENSION];
  const model = deps.classifier.model(requested === undefined || requested === null ? undefined : String(requested)).name;
  // Web Crypto hashes on the libuv pool, so a 10 MB image does not hold the event loop.
  const digest = event.data ? Buffer.from(await subtle.digest('SHA-256', event.data)).toString('base64') : '-';
  const key = `${attributes.source}\n${attributes.id}\n${model}\n${digest}`;
  const { value, duplicate } = await deps.deduper.once(key, async () => {
    // Only validated values reach the reply, and so its headers.
    const common = {
      source: deps.config.eventSource,
      subject: attributes.subject,
      // The input's identity, so a consumer can match a result to what it submitted.
      correlationid: attributes.id,
      correlationsource: attributes.source,
      datacontenttype: 'application/json',
    };
    try {
      const result = await classify(event.data, model, deps);
      return new CloudEvent({ ...common, type: CLASSIFIED, data: result });
    } catch (err) {
      if (!(err instanceof ClientError) || OUTCOME[err.code] === 'refuse') throw err;
      return new CloudEvent({ ...common, type: REJECTED, data: problemOf(err) });
    }
  });
  return { reply: value, duplicate };
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
