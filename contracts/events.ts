/**
 * The CloudEvents that cross the Broker and the UI's feed: their types, their data, and
 * what the UI server relays to the page over SSE. The Triggers in knative/ filter on these
 * types; knative/test/check.ts holds them to this file.
 */
import { PROBLEM_MEMBERS } from './problems.ts';
import type { FromSchema } from './schema.ts';

/** An image to classify; handled by the classify function at POST /. */
export const SUBMITTED = 'dev.klassify.image.submitted';
/** The function's replies. Neither matches the classify Trigger's filter, so a reply cannot loop back. */
export const CLASSIFIED = 'dev.klassify.image.classified';
export const REJECTED = 'dev.klassify.image.rejected';
/** Written by the UI server for each dead letter: a delivery the broker gave up on. */
export const DELIVERY_FAILED = 'dev.klassify.delivery.failed';
/** What every type above starts with; the feed shows types without it. */
export const EVENT_TYPE_PREFIX = 'dev.klassify.';

/**
 * The data of a REJECTED event: why the image was refused, as the problem the HTTP API
 * would have answered, less its HTTP status (optional in RFC 9457, and the delivery's own
 * status is 200). A CLASSIFIED event's data is the HTTP API's 200 body (classification.ts).
 */
export const REJECTION_SCHEMA = {
  type: 'object',
  required: ['type', 'title', 'detail'],
  properties: PROBLEM_MEMBERS,
} as const;

/** Other members are the problem's extensions: facts a sender can act on (a limit, the valid values). */
export type Rejection = FromSchema<typeof REJECTION_SCHEMA> & { [extension: string]: unknown };

/** The `data` of a DELIVERY_FAILED event: what failed and why, never the payload. */
export interface DeliveryFailure {
  /** The CloudEvent type that was not delivered, e.g. dev.klassify.image.submitted. */
  eventType: string;
  /** Short reason: the destination's problem title, or the HTTP status. */
  reason: string;
  /** HTTP status the destination last answered, when known. */
  code?: number;
  /** Where delivery was attempted (knativeerrordest). */
  destination?: string;
}

/** What the UI server writes as the `data:` of each SSE message. */
export interface RelayedEvent {
  seq: number;
  id: string;
  type: string;
  source: string;
  time?: string;
  /** As sent: percent-encoded outside printable ASCII (see encodeSubject). */
  subject?: string;
  data?: unknown;
}

/**
 * The function accepts printable ASCII attributes only, as the CloudEvents HTTP binding has
 * senders percent-encode the rest (and space, `"` and `%`): `café.jpg` → `caf%C3%A9.jpg`.
 */
export function encodeSubject(value: string): string {
  return value.replace(/[^\x21\x23\x24\x26-\x7e]/gu, (c) => encodeURIComponent(c));
}

/** The subject as a person wrote it; one that is not valid percent-encoding is shown as sent. */
export function decodeSubject(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}
