/**
 * Relays CloudEvents from the Knative Trigger to browsers.
 *
 *   Trigger ──POST /events (binary CloudEvent)──▶ ingest() ──▶ EventHub ──SSE──▶ browsers
 *
 * The hub keeps the last N events in a ring buffer, so a page that opens (or
 * reconnects with Last-Event-ID) sees recent activity at once. One shared
 * heartbeat timer runs only while someone listens.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import { HTTP, type CloudEventV1 } from 'cloudevents';
import type { RelayedEvent } from '../src/lib/feed.ts';
import { HttpError, payloadTooLarge } from './problem.ts';

/** The CloudEvent types the UI shows; see functions/classify (events). */
export const RELAYED_TYPES: ReadonlySet<string> = new Set([
  'dev.klassify.image.classified',
  'dev.klassify.image.rejected',
]);

// One shape for both ends of the stream: the browser's feed parses what this writes.
export type { RelayedEvent };

export interface HubOptions {
  bufferSize: number;
  maxClients: number;
  heartbeatMs: number;
}

export class EventHub {
  readonly #options: HubOptions;
  readonly #buffer: RelayedEvent[] = [];
  readonly #clients = new Set<ServerResponse>();
  #seq = 0;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  constructor(options: HubOptions) {
    this.#options = options;
  }

  get clients(): number {
    return this.#clients.size;
  }

  /** Stores the event and sends it to every open stream; returns its sequence number. */
  publish(event: Omit<RelayedEvent, 'seq'>): number {
    const relayed: RelayedEvent = { seq: ++this.#seq, ...event };
    if (this.#options.bufferSize > 0) {
      this.#buffer.push(relayed);
      if (this.#buffer.length > this.#options.bufferSize) this.#buffer.shift();
    }
    const frame = toFrame(relayed);
    for (const res of this.#clients) res.write(frame);
    return relayed.seq;
  }

  /** Opens an SSE stream on `res`; replays buffered events newer than Last-Event-ID. */
  subscribe(req: IncomingMessage, res: ServerResponse): void {
    if (this.#closed) {
      throw new HttpError(503, { title: 'Shutting down', type: 'shutting-down', headers: { 'Retry-After': '1' } });
    }
    if (this.#clients.size >= this.#options.maxClients) {
      throw new HttpError(503, {
        title: 'Too many event streams',
        detail: `This instance serves at most ${this.#options.maxClients} live feeds.`,
        type: 'too-many-streams',
        headers: { 'Retry-After': '30' },
      });
    }
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      'X-Accel-Buffering': 'no',
    });
    res.flushHeaders();
    req.socket.setNoDelay(true);
    req.socket.setKeepAlive(true);

    // After a restart of this server the browser's Last-Event-ID is from
    // another sequence; then everything buffered is new to it.
    const lastId = Number(req.headers['last-event-id'] ?? 0);
    const since = Number.isInteger(lastId) && lastId > 0 && lastId <= this.#seq ? lastId : 0;
    let replay = `retry: 3000\n\n`;
    for (const event of this.#buffer) {
      if (event.seq > since) replay += toFrame(event);
    }
    res.write(replay);

    this.#clients.add(res);
    this.#startHeartbeat();
    const drop = () => {
      this.#clients.delete(res);
      if (this.#clients.size === 0) this.#stopHeartbeat();
    };
    res.on('close', drop);
    res.on('error', drop);
  }

  /** Ends every stream and stops the heartbeat; later subscribes get 503. */
  close(): void {
    this.#closed = true;
    this.#stopHeartbeat();
    for (const res of this.#clients) res.end();
    this.#clients.clear();
  }

  #startHeartbeat() {
    if (this.#heartbeat) return;
    // A comment line keeps proxies and load balancers from timing out idle streams.
    this.#heartbeat = setInterval(() => {
      for (const res of this.#clients) res.write(': ping\n\n');
    }, this.#options.heartbeatMs);
    this.#heartbeat.unref();
  }

  #stopHeartbeat() {
    clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
  }
}

/**
 * Reads a CloudEvent (binary or structured mode) from a Trigger delivery and
 * publishes the relayed types. Other types are acknowledged and dropped, so
 * the broker does not redeliver them.
 */
export async function ingest(req: IncomingMessage, hub: EventHub, maxBodyBytes: number): Promise<number> {
  const body = await readBody(req, maxBodyBytes);
  let events: CloudEventV1<unknown>[];
  try {
    const parsed = HTTP.toEvent<unknown>({ headers: req.headers, body });
    events = Array.isArray(parsed) ? parsed : [parsed];
  } catch (error) {
    throw new HttpError(400, {
      title: 'Not a CloudEvent',
      detail: 'POST /events expects a CloudEvent in binary or structured HTTP mode.',
      type: 'invalid-cloudevent',
    }, { cause: error });
  }
  let published = 0;
  for (const event of events) {
    if (!RELAYED_TYPES.has(event.type)) continue;
    hub.publish({
      id: event.id,
      type: event.type,
      source: event.source,
      time: event.time,
      subject: event.subject,
      data: event.data,
    });
    published += 1;
  }
  return published;
}

function toFrame(event: RelayedEvent): string {
  // JSON.stringify never emits raw newlines, so one data: line is enough.
  return `id: ${event.seq}\ndata: ${JSON.stringify(event)}\n\n`;
}

async function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > limit) throw payloadTooLarge(limit);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw payloadTooLarge(limit);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
