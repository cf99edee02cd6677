/**
 * Relays CloudEvents from the event source (Knative Trigger, or the local relay of
 * `npm start`) to browsers.
 *
 *   source ──POST /events/<token>──▶ ingest() ──▶ EventHub ──SSE──▶ browsers
 *
 * The hub keeps the last N events in a ring buffer, so a page that opens (or
 * reconnects with Last-Event-ID) sees recent activity at once. One shared
 * heartbeat timer runs only while someone listens.
 *
 * Everything is bounded in bytes and time: events are checked for size and
 * nesting before they are stored; each frame is serialised once into a Buffer
 * that every stream shares, so a stalled reader costs references, not copies,
 * and it is dropped once its unsent bytes pass a limit; streams are capped in
 * total and per client address, and end after a maximum lifetime (EventSource
 * reconnects on its own, with Last-Event-ID, so nothing is lost).
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import { HTTP, type CloudEventV1 } from 'cloudevents';
import { CLASSIFIED, REJECTED, type RelayedEvent } from '../../contracts/events.ts';
import { readBody } from '../../server-kit/body.ts';
import { bodyError, tooLarge, tooSlow, UiError } from './errors.ts';

/** The CloudEvent types the UI shows: the classify function's replies (contracts/events.ts). */
export const RELAYED_TYPES: ReadonlySet<string> = new Set([CLASSIFIED, REJECTED]);

export interface HubOptions {
  bufferSize: number;
  maxClients: number;
  maxClientsPerAddress: number;
  heartbeatMs: number;
  maxStreamMs: number;
  maxBufferedBytes: number;
  maxEventBytes: number;
}

interface Stored {
  seq: number;
  frame: Buffer;
}

interface Client {
  res: ServerResponse;
  address: string;
  lifetime: ReturnType<typeof setTimeout>;
}

const HEARTBEAT = Buffer.from(': ping\n\n');

export class EventHub {
  readonly #options: HubOptions;
  readonly #buffer: Stored[] = [];
  readonly #clients = new Set<Client>();
  readonly #perAddress = new Map<string, number>();
  #seq = 0;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #closed = false;
  #dropped = 0;

  constructor(options: HubOptions) {
    this.#options = options;
  }

  get clients(): number {
    return this.#clients.size;
  }

  /** Streams closed because their reader fell too far behind. */
  get droppedSlowReaders(): number {
    return this.#dropped;
  }

  /**
   * Stores the event and sends it to every open stream; returns its sequence
   * number. Throws event-too-large (and stores nothing) when the frame is too large.
   */
  publish(event: Omit<RelayedEvent, 'seq'>): number {
    const seq = this.#seq + 1;
    // JSON.stringify never emits raw newlines, so one data: line is enough.
    const frame = Buffer.from(`id: ${seq}\ndata: ${JSON.stringify({ seq, ...event })}\n\n`);
    if (frame.length > this.#options.maxEventBytes) {
      throw new UiError('event-too-large', 'Event too large', `A relayed event may take at most ${this.#options.maxEventBytes} bytes on the stream; this one takes ${frame.length}.`);
    }
    this.#seq = seq;
    if (this.#options.bufferSize > 0) {
      this.#buffer.push({ seq, frame });
      if (this.#buffer.length > this.#options.bufferSize) this.#buffer.shift();
    }
    for (const client of this.#clients) this.#send(client, frame);
    return seq;
  }

  /**
   * Opens an SSE stream on `res` for a client at `address`; replays buffered
   * events newer than Last-Event-ID.
   */
  subscribe(req: IncomingMessage, res: ServerResponse, address: string): void {
    if (this.#closed) throw new UiError('shutting-down', 'Shutting down');
    if (this.#clients.size >= this.#options.maxClients) {
      throw new UiError('too-many-streams', 'Too many event streams', `This instance serves at most ${this.#options.maxClients} live feeds.`);
    }
    const held = this.#perAddress.get(address) ?? 0;
    if (held >= this.#options.maxClientsPerAddress) {
      throw new UiError(
        'too-many-streams-per-client',
        'Too many event streams from this address',
        `One address may hold at most ${this.#options.maxClientsPerAddress} live feeds; close another tab first.`,
      );
    }
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      'X-Accel-Buffering': 'no',
    });
    req.socket.setNoDelay(true);
    req.socket.setKeepAlive(true);

    const client: Client = {
      res,
      address,
      // Ending (not destroying) lets the browser reconnect at once with Last-Event-ID.
      lifetime: setTimeout(() => res.end(), this.#options.maxStreamMs),
    };
    client.lifetime.unref();
    this.#clients.add(client);
    this.#perAddress.set(address, held + 1);
    let dropped = false;
    const drop = () => {
      if (dropped) return;
      dropped = true;
      clearTimeout(client.lifetime);
      this.#clients.delete(client);
      const left = (this.#perAddress.get(address) ?? 1) - 1;
      if (left > 0) this.#perAddress.set(address, left);
      else this.#perAddress.delete(address);
      if (this.#clients.size === 0) this.#stopHeartbeat();
    };
    res.on('close', drop);
    res.on('error', drop);

    // After a restart of this server the browser's Last-Event-ID is from
    // another sequence; then everything buffered is new to it.
    const lastId = Number(req.headers['last-event-id'] ?? 0);
    const since = Number.isInteger(lastId) && lastId > 0 && lastId <= this.#seq ? lastId : 0;
    this.#send(client, Buffer.from('retry: 3000\n\n'));
    for (const stored of this.#buffer) {
      if (stored.seq > since) this.#send(client, stored.frame);
    }
    this.#startHeartbeat();
  }

  /** Ends every stream and stops the heartbeat; later subscribes get shutting-down. */
  close(): void {
    this.#closed = true;
    this.#stopHeartbeat();
    for (const client of this.#clients) {
      clearTimeout(client.lifetime);
      client.res.end();
    }
    this.#clients.clear();
    this.#perAddress.clear();
  }

  #send(client: Client, frame: Buffer) {
    const { res } = client;
    if (res.destroyed || res.writableEnded) return;
    res.write(frame);
    if (res.writableLength > this.#options.maxBufferedBytes) {
      // The reader stopped reading; holding more for it would grow without bound.
      this.#dropped += 1;
      res.destroy();
    }
  }

  #startHeartbeat() {
    if (this.#heartbeat) return;
    // A comment line keeps proxies and load balancers from timing out idle streams.
    this.#heartbeat = setInterval(() => {
      for (const client of this.#clients) this.#send(client, HEARTBEAT);
    }, this.#options.heartbeatMs);
    this.#heartbeat.unref();
  }

  #stopHeartbeat() {
    clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
  }
}

export interface IngestLimits {
  maxBodyBytes: number;
  /** The whole body must arrive within this. */
  timeoutMs: number;
  maxEventDepth: number;
}

/**
 * Reads a CloudEvent (binary or structured mode) from the event source and
 * publishes the relayed types. Other types are acknowledged and dropped, so
 * the broker does not redeliver them.
 */
export async function ingest(req: IncomingMessage, hub: EventHub, limits: IngestLimits): Promise<number> {
  const body = await readEvent(req, limits);
  // Checked on the text, before any parser recurses into it.
  if (nestingExceeds(body, limits.maxEventDepth)) {
    throw new UiError('event-too-deep', 'Event nested too deeply', `Relayed events may nest objects and arrays at most ${limits.maxEventDepth} levels deep.`);
  }
  let events: CloudEventV1<unknown>[];
  try {
    const parsed = HTTP.toEvent<unknown>({ headers: req.headers, body });
    events = Array.isArray(parsed) ? parsed : [parsed];
  } catch (error) {
    throw new UiError('invalid-cloudevent', 'Not a CloudEvent', 'Expected a CloudEvent in binary or structured HTTP mode.', { cause: error });
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

/**
 * True when `text` nests JSON arrays/objects deeper than `limit`. Brackets
 * inside strings do not count. Non-JSON text is at worst over-counted, which
 * only rejects a body that was not a sensible event anyway.
 */
export function nestingExceeds(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i += 1; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b || c === 0x5b) {
      depth += 1;
      if (depth > limit) return true;
    } else if (c === 0x7d || c === 0x5d) {
      depth = Math.max(0, depth - 1);
    }
  }
  return false;
}

async function readEvent(req: IncomingMessage, limits: IngestLimits): Promise<string> {
  try {
    return (await readBody(req, { maxBytes: limits.maxBodyBytes, timing: { timeoutMs: limits.timeoutMs } })).toString('utf8');
  } catch (error) {
    throw bodyError(error, {
      tooLarge: tooLarge('event-too-large', limits.maxBodyBytes),
      tooSlow: tooSlow('Event too slow', limits.timeoutMs),
    });
  }
}
