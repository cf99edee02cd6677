/**
 * Maps the CloudEvents the UI server relays over SSE to rows of the live
 * event feed. Events come from the cluster, so every field is checked.
 */

import { CLASSIFIED, decodeSubject, DELIVERY_FAILED, EVENT_TYPE_PREFIX, REJECTED, type RelayedEvent } from '../../../contracts/events.ts';
import { formatClock, formatMs, formatPercent, splitLabel } from './format.ts';

export interface FeedItem {
  key: string;
  kind: 'classified' | 'rejected' | 'failed' | 'other';
  clock: string;
  headline: string;
  detail: string;
  pod: string;
  source: string;
}

export function parseRelayedEvent(text: string): RelayedEvent | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (value === null || typeof value !== 'object') return null;
  const record = value as Record<string, unknown>;
  if (typeof record.id !== 'string' || typeof record.type !== 'string') return null;
  return {
    seq: typeof record.seq === 'number' ? record.seq : 0,
    id: record.id,
    type: record.type,
    source: typeof record.source === 'string' ? record.source : '',
    time: typeof record.time === 'string' ? record.time : undefined,
    subject: typeof record.subject === 'string' ? record.subject : undefined,
    data: record.data,
  };
}

export function toFeedItem(event: RelayedEvent, receivedAt: Date = new Date()): FeedItem {
  const data = (event.data && typeof event.data === 'object' ? event.data : {}) as Record<string, unknown>;
  const when = event.time ? new Date(event.time) : receivedAt;
  const clock = formatClock(Number.isNaN(when.getTime()) ? receivedAt : when);
  const served = (data.servedBy && typeof data.servedBy === 'object' ? data.servedBy : {}) as Record<string, unknown>;
  const pod = typeof served.pod === 'string' ? served.pod : '';
  // CloudEvents (source, id) is unique, so redeliveries and replays share a key.
  const base = { key: `${event.source} ${event.id}`, clock, pod, source: event.source };
  // Senders percent-encode what is not printable ASCII (café.jpg → caf%C3%A9.jpg); show the name.
  const subject = event.subject === undefined ? undefined : decodeSubject(event.subject);

  if (event.type === CLASSIFIED) {
    const predictions = Array.isArray(data.predictions) ? data.predictions : [];
    const top = predictions[0] as Record<string, unknown> | undefined;
    const label = top && typeof top.label === 'string' ? splitLabel(top.label).primary : 'Unknown';
    const probability = top && typeof top.probability === 'number' ? formatPercent(top.probability) : '';
    const timing = (data.timingMs && typeof data.timingMs === 'object' ? data.timingMs : {}) as Record<string, unknown>;
    const total = typeof timing.total === 'number' ? formatMs(timing.total) : '';
    const model = typeof data.model === 'string' ? data.model : '';
    return {
      ...base,
      kind: 'classified',
      headline: probability ? `${label} · ${probability}` : label,
      detail: [subject, model, total].filter(Boolean).join(' · '),
    };
  }
  if (event.type === REJECTED) {
    // data is a Rejection (contracts/events.ts): a problem's type, title and detail.
    const title = typeof data.title === 'string' ? data.title : 'Rejected';
    const detail = typeof data.detail === 'string' ? data.detail : '';
    return { ...base, kind: 'rejected', headline: title, detail: [subject, detail].filter(Boolean).join(' · ') };
  }
  if (event.type === DELIVERY_FAILED) {
    // A dead letter: the broker gave up delivering an event (e.g. an upload the function never answered).
    const reason = typeof data.reason === 'string' ? data.reason : 'Delivery failed';
    const eventType = typeof data.eventType === 'string' ? withoutPrefix(data.eventType) : '';
    return { ...base, kind: 'failed', headline: reason, detail: [subject, eventType].filter(Boolean).join(' · ') };
  }
  return { ...base, kind: 'other', headline: event.type, detail: subject ?? '' };
}

function withoutPrefix(type: string): string {
  return type.startsWith(EVENT_TYPE_PREFIX) ? type.slice(EVENT_TYPE_PREFIX.length) : type;
}
