/**
 * Receives dead letters: events the broker gave up delivering (the Trigger's
 * deadLetterSink). A dead letter is the original event, so for
 * dev.klassify.image.submitted it carries the whole image (up to ~13 MB in
 * base64). It is read and discarded as it streams in, within a deadline; only
 * what the broker says about the failure is kept, from the Knative extension
 * attributes (binary mode headers):
 *
 *   ce-knativeerrorcode   HTTP status the destination last answered
 *   ce-knativeerrordest   where delivery was attempted
 *   ce-knativeerrordata   the destination's response body, base64
 *
 * The feed then shows a small dev.klassify.delivery.failed entry: type, reason, time.
 */

import type { IncomingMessage } from 'node:http';
import { DELIVERY_FAILED, type DeliveryFailure } from '../../contracts/events.ts';
import type { EventHub } from './events.ts';
import { checkDeclaredLength, consumeBody } from '../../server-kit/body.ts';
import { bodyError, tooLarge, tooSlow } from './errors.ts';

export interface DeadLetterLimits {
  maxBytes: number;
  timeoutMs: number;
}

/** Only this much of knativeerrordata is decoded: enough for a problem+json title. */
const MAX_ERROR_DATA_CHARS = 4096;
/** A structured-mode dead letter this small is parsed for its attributes. */
const MAX_STRUCTURED_BYTES = 64 * 1024;

/** Reads the dead letter, publishes its "failed" entry and returns what it recorded. */
export async function receiveDeadLetter(req: IncomingMessage, hub: EventHub, limits: DeadLetterLimits): Promise<DeliveryFailure & { id: string }> {
  const structured = /^application\/cloudevents\+json/i.test(String(req.headers['content-type'] ?? ''));
  const head = await discardBody(req, limits, structured ? MAX_STRUCTURED_BYTES : 0);
  const attributes = structured ? structuredAttributes(head) : binaryAttributes(req);
  const failure = describe(attributes);
  const id = (attributes.id || `dead-letter-${Date.now()}`).slice(0, 200);
  hub.publish({
    // The original (source, id): a redelivered dead letter shows once.
    id,
    source: (attributes.source || '/klassify/dead-letters').slice(0, 300),
    type: DELIVERY_FAILED,
    time: new Date().toISOString(),
    subject: attributes.subject ? attributes.subject.slice(0, 200) : undefined,
    data: failure,
  });
  return { id, ...failure };
}

type Attributes = Record<string, string>;

function binaryAttributes(req: IncomingMessage): Attributes {
  const out: Attributes = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (name.startsWith('ce-') && typeof value === 'string') out[name.slice(3)] = decodeHeader(value);
  }
  return out;
}

function structuredAttributes(head: Buffer | null): Attributes {
  if (!head) return {};
  try {
    const parsed = JSON.parse(head.toString('utf8')) as Record<string, unknown>;
    const out: Attributes = {};
    for (const [name, value] of Object.entries(parsed)) {
      if (name !== 'data' && name !== 'data_base64' && (typeof value === 'string' || typeof value === 'number')) out[name] = String(value);
    }
    return out;
  } catch {
    return {};
  }
}

function describe(attributes: Attributes): DeliveryFailure {
  const code = Number(attributes.knativeerrorcode);
  const failure: DeliveryFailure = {
    eventType: (attributes.type || 'unknown').slice(0, 200),
    reason: reasonFrom(attributes.knativeerrordata, Number.isInteger(code) && code > 0 ? code : undefined),
  };
  if (Number.isInteger(code) && code > 0) failure.code = code;
  if (attributes.knativeerrordest) failure.destination = attributes.knativeerrordest.slice(0, 300);
  return failure;
}

/** The destination's problem title (and detail), else its text, else the status. */
function reasonFrom(errorData: string | undefined, code: number | undefined): string {
  const fallback = code ? `Delivery failed with HTTP ${code}` : 'Delivery failed';
  if (!errorData) return fallback;
  const text = Buffer.from(errorData.slice(0, MAX_ERROR_DATA_CHARS), 'base64').toString('utf8').trim();
  if (!text) return fallback;
  try {
    const problem = JSON.parse(text) as Record<string, unknown>;
    if (problem && typeof problem.title === 'string') {
      const detail = typeof problem.detail === 'string' ? `: ${problem.detail}` : '';
      return `${problem.title}${detail}`.slice(0, 300);
    }
  } catch {
    // not JSON: use the text itself
  }
  return text.replace(/\s+/g, ' ').slice(0, 300);
}

function decodeHeader(value: string): string {
  // CloudEvents binary mode percent-encodes header values (spec: http-protocol-binding §3.1.3.2).
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/**
 * Reads the body to its end without keeping it; keeps the first `keep` bytes
 * when the whole body fits in them. Fails with dead-letter-too-large past
 * maxBytes and with request-timeout when the body has not arrived within the
 * deadline.
 */
async function discardBody(req: IncomingMessage, { maxBytes, timeoutMs }: DeadLetterLimits, keep: number): Promise<Buffer | null> {
  const kept: Buffer[] = [];
  let size = 0;
  try {
    checkDeclaredLength(req, maxBytes);
    await consumeBody(req, { maxBytes, timing: { timeoutMs } }, (chunk) => {
      size += chunk.length;
      if (size <= keep) kept.push(chunk);
      else if (kept.length > 0) kept.length = 0;
    });
  } catch (error) {
    throw bodyError(error, {
      tooLarge: tooLarge('dead-letter-too-large', maxBytes),
      tooSlow: tooSlow('Dead letter too slow', timeoutMs),
    });
  }
  return keep > 0 && size <= keep ? Buffer.concat(kept) : null;
}
