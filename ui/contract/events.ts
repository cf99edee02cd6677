/**
 * The event feed's contract, shared by the UI server (which writes it) and the
 * page (which reads it). Plain types and constants only: no DOM, no Node.
 */

/** Reply events of the classify function (functions/classify/src/cloudevents.ts). */
export const CLASSIFIED = 'dev.klassify.image.classified';
export const REJECTED = 'dev.klassify.image.rejected';
/** Written by the UI server for each dead letter: a delivery the broker gave up on. */
export const DELIVERY_FAILED = 'dev.klassify.delivery.failed';

/** What the UI server writes as the `data:` of each SSE message. */
export interface RelayedEvent {
  seq: number;
  id: string;
  type: string;
  source: string;
  time?: string;
  subject?: string;
  data?: unknown;
}

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
