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
 * and it is dropped once its unsent bytes pass a limit; streams end after a
 * maximum lifetime (EventSource reconnects on its own, with Last-Event-ID, so
 * nothing is lost).
 *
 * Streams are capped per client (an IPv4 address or an IPv6 /64, found through
 * the trusted proxies: server-kit/client-address.ts) and in total. The total cap
 * cannot be filled against a newcomer: when it is full, the oldest stream of
 * the range (IPv4 /24, IPv6 /48) holding the most streams is ended to make
 * room, unless the newcomer's own range would then hold as many. Many clients
 * in one range, or one client with many tabs, so never lock out a viewer from
 * elsewhere; only as many distinct ranges as there are streams could.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import { HTTP, type CloudEventV1 } from 'cloudevents';
import { CLASSIFIED, REJECTED, type RelayedEvent } from '../../contracts/events.ts';
import { readBody } from '../../server-kit/body.ts';
import { clientKey, rangeKey } from '../../server-kit/client-address.ts';
import { bodyError, tooLarge, tooSlow, UiError } from './errors.ts';

/** The CloudEvent types the UI shows: the classify function's replies (contracts/events.ts). */
export const RELAYED_TYPES: ReadonlySet<string> = new Set([CLASSIFIED, REJECTED]);

export interface HubOptions {
  bufferSize: number;
  maxClients: number;
  /** Streams one client (an IPv4 address, an IPv6 /64) may hold. */
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
  lifetime: ReturnType<typeof setTimeout>;
  /** Forgets the stream (idempotent); the response is ended or destroyed by the caller. */
  drop(): void;
}

const HEARTBEAT = Buffer.from(': ping\n\n');

export class EventHub {
  readonly #options: HubOptions;
  readonly #buffer: Stored[] = [];
  readonly #clients = new Set<Client>();
  readonly #perClient = new Map<string, number>();
  /** Streams by range, each set in the order they opened (oldest first). */
  readonly #perRange = new Map<string, Set<Client>>();
  #seq = 0;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #closed = false;
  #dropped = 0;
  #evicted = 0;

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

  /** Streams ended to make room for a client from a lighter range. */
  get evicted(): number {
    return this.#evicted;
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
   * Opens an SSE stream on `res` for the client at `address` (as found through
   * the trusted proxies); replays buffered events newer than Last-Event-ID.
   */
  subscribe(req: IncomingMessage, res: ServerResponse, address: string): void {
    if (this.#closed) throw new UiError('shutting-down', 'Shutting down');
    const key = clientKey(address);
    const held = this.#perClient.get(key) ?? 0;
    if (held >= this.#options.maxClientsPerAddress) {
      throw new UiError(
        'too-many-streams-per-client',
        'Too many event streams from this address',
        `One address may hold at most ${this.#options.maxClientsPerAddress} live feeds; close another tab first.`,
      );
    }
    const range = rangeKey(address);
    if (this.#clients.size >= this.#options.maxClients) this.#makeRoom(range);
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      'X-Accel-Buffering': 'no',
    });
    req.socket.setNoDelay(true);
    req.socket.setKeepAlive(true);

    let dropped = false;
    const client: Client = {
      res,
      // Ending (not destroying) lets the browser reconnect at once with Last-Event-ID.
      lifetime: setTimeout(() => res.end(), this.#options.maxStreamMs),
      drop: () => {
        if (dropped) return;
        dropped = true;
        clearTimeout(client.lifetime);
        this.#clients.delete(client);
        const left = (this.#perClient.get(key) ?? 1) - 1;
        if (left > 0) this.#perClient.set(key, left);
        else this.#perClient.delete(key);
        const inRange = this.#perRange.get(range);
        inRange?.delete(client);
        if (inRange?.size === 0) this.#perRange.delete(range);
        if (this.#clients.size === 0) this.#stopHeartbeat();
      },
    };
    client.lifetime.unref();
    this.#clients.add(client);
    this.#perClient.set(key, held + 1);
    const inRange = this.#perRange.get(range) ?? new Set<Client>();
    this.#perRange.set(range, inRange.add(client));
    res.on('close', client.drop);
    res.on('error', client.drop);

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
    this.#perClient.clear();
    this.#perRange.clear();
  }

  /**
   * The total cap is reached: ends the oldest stream of the range holding the
   * most, or refuses when `range` would then hold as many as it (a range that
   * fills the cap itself gets no more, and two ranges never take turns
   * evicting each other).
   */
  #makeRoom(range: string): void {
    let heaviest: Set<Client> | undefined;
    for (const streams of this.#perRange.values()) {
      if (!heaviest || streams.size > heaviest.size) heaviest = streams;
    }
    const mine = this.#perRange.get(range)?.size ?? 0;
    if (!heaviest || mine + 1 >= heaviest.size) {
      throw new UiError('too-many-streams', 'Too many event streams', `This instance serves at most ${this.#options.maxClients} live feeds.`);
    }
    const [oldest] = heaviest;
    oldest.drop();
    // Ended, not destroyed: a browser reconnects (and is then refused while its range is the heaviest).
    oldest.res.end();
    this.#evicted += 1;
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
