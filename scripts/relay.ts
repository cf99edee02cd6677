// The local stand-in for the Knative Broker that `npm start` runs. It accepts a CloudEvent
// (202, as a broker ingress does), delivers `dev.klassify.image.submitted` to the function's
// `/` as the classify Trigger would (other types match no Trigger and are dropped), and
// forwards the function's reply event to the UI's /events/<token>. When delivery keeps
// failing it sends a dead letter to /dead-letters/<token> with the knativeerror* extensions
// Knative adds, so the feed shows "failed" locally as on the cluster.
//
// Only who knows its per-run token may post (POST /<token>): `npm start` writes the URL
// with the token to a file only its user can read (.cache/relay.json), where `npm run emit`
// finds it. So another local process can neither forge feed rows nor make the relay work.
// A dead letter carries the function's answer (its status and its problem's type and title),
// never text the sender chose. Everything held is bounded in bytes and time: bodies being
// read count against the byte budget as they arrive, and every delivery has a deadline.
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import path from 'node:path';
import { SUBMITTED } from '../contracts/events.ts';
import { problemType, type Problem } from '../contracts/problems.ts';
import { BodyError, consumeBody } from '../server-kit/body.ts';
import { stageClose } from '../server-kit/linger.ts';
import { writeProblem } from '../server-kit/problem.ts';
import { newToken, tokenMatches } from '../server-kit/token.ts';
import { loopbackFor, urlHost } from './start-checks.ts';

export interface RelayOptions {
  /** The function's base URL; events go to its `/`. */
  functionUrl: string;
  /** The UI's base URL. */
  uiUrl: string;
  /** The UI's event token (/events/<token>). */
  token: string;
  port: number;
  host?: string;
  /** The secret senders post to (POST /<ingressToken>); a fresh one by default. */
  ingressToken?: string;
  /** Where listen() writes { url, token } for `npm run emit` (mode 0600); close() removes it. */
  infoFile?: string;
  /** A submitted event holds an image of up to ~10 MB, ~13.4 MB in base64. */
  maxBodyBytes?: number;
  /** Bytes of events held at once, being read or awaiting delivery; more get 429. */
  maxHeldBytes?: number;
  /** Events held at once, being read or awaiting delivery; more get 429. */
  maxInFlight?: number;
  /** Delivery attempts before a dead letter (the Trigger in knative/ retries too). */
  attempts?: number;
  /** The wait before the first retry; it doubles for each one after (the Trigger's exponential backoff). */
  retryDelayMs?: number;
  /** An event's body must arrive within this (a broker's ingress bounds it too). */
  bodyTimeoutMs?: number;
  /** One delivery attempt (request and answer) must end within this. */
  attemptTimeoutMs?: number;
  log?: (line: string) => void;
}

/** What became of an event; the answer to POST /<token>?wait. */
export type Outcome =
  | { outcome: 'delivered'; status: number; reply?: { type: string; data: unknown }; feed?: number }
  | { outcome: 'dead-lettered'; status?: number; problem?: Problem; error?: string; attempts: number; feed?: number }
  | { outcome: 'dropped'; reason: string };

export interface Relay {
  server: Server;
  /** The sender's secret. */
  readonly ingressToken: string;
  /** Listens, then writes the info file; resolves with the address. */
  listen(): Promise<AddressInfo>;
  /** The URL senders post to, token included (after listen()). */
  readonly url: string;
  /** Events and bytes held now, and the most bytes held at once so far. */
  readonly held: { events: number; bytes: number; peakBytes: number };
  /** Resolves when every accepted event has been delivered or dead-lettered. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

/** What `npm start` writes for `npm run emit`. */
export interface RelayInfo {
  /** Where senders post, token included. */
  url: string;
  /** The UI whose feed the relay writes to. */
  ui: string;
}

/** Where `npm start` writes the relay's URL (with its token) under the project root. */
export const relayInfoFile = (root: string) => path.join(root, '.cache', 'relay.json');

const MiB = 1024 * 1024;
/** A reply event or a problem is a few KiB; anything past this is not read. */
const MAX_ANSWER_BYTES = MiB;
const PRINTABLE = /^[\x20-\x7e]{1,1024}$/;

interface Answer {
  status: number;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

interface Message {
  headers: Record<string, string>;
  body: Buffer;
}

/** Headers of a CloudEvent in HTTP binary or structured mode: ce-* and content-type. */
function eventHeaders(headers: IncomingMessage['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (typeof value === 'string' && (name.startsWith('ce-') || name === 'content-type')) out[name] = value;
  }
  return out;
}

/** POSTs `message` and reads the answer, both within `timeoutMs` and the answer within MAX_ANSWER_BYTES. */
function post(url: string, message: Message, timeoutMs: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers = { ...message.headers, 'content-length': String(message.body.length) };
    const req = http.request(url, { method: 'POST', headers, signal: AbortSignal.timeout(timeoutMs) }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_ANSWER_BYTES) return void req.destroy(new Error(`answer over ${MAX_ANSWER_BYTES} bytes`));
        chunks.push(chunk);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(message.body);
  });
}

const structured = (headers: Record<string, string>) => /^application\/cloudevents\+json/i.test(headers['content-type'] ?? '');

/** The attributes a dead letter and the Trigger filter need, from either content mode. */
function attributesOf(headers: Record<string, string>, body: Buffer): Record<string, string> | undefined {
  let attributes: Record<string, unknown> = {};
  if (structured(headers)) {
    try {
      attributes = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
    } catch {
      return undefined;
    }
  } else {
    for (const [name, value] of Object.entries(headers)) if (name.startsWith('ce-')) attributes[name.slice(3)] = value;
  }
  const out: Record<string, string> = {};
  for (const name of ['specversion', 'id', 'source', 'type', 'subject', 'time']) {
    const value = attributes?.[name];
    if (typeof value === 'string' && PRINTABLE.test(value)) out[name] = value;
  }
  return out.specversion && out.id && out.source && out.type ? out : undefined;
}

/** The function's problem, reduced to what it wrote itself: type, title and status. */
function problemOf(answer: Answer): Problem | undefined {
  if (!/json/i.test(String(answer.headers['content-type'] ?? ''))) return undefined;
  try {
    const parsed = JSON.parse(answer.body.toString('utf8')) as Partial<Problem>;
    if (typeof parsed?.title !== 'string') return undefined;
    return { type: String(parsed.type ?? 'about:blank'), title: parsed.title.slice(0, 200), status: answer.status, ...(typeof parsed.detail === 'string' ? { detail: parsed.detail.slice(0, 1000) } : {}) };
  } catch {
    return undefined;
  }
}

function replyData(answer: Answer): unknown {
  try {
    return JSON.parse(answer.body.toString('utf8'));
  } catch {
    return undefined;
  }
}

/** A chunked body that would take the relay past its byte budget. */
class OverBudget extends Error {}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function createRelay(options: RelayOptions): Relay {
  const {
    functionUrl,
    uiUrl,
    token,
    infoFile,
    ingressToken = newToken(),
    maxBodyBytes = 16 * MiB,
    maxHeldBytes = 48 * MiB,
    maxInFlight = 8,
    attempts = 3,
    retryDelayMs = 250,
    bodyTimeoutMs = 60_000,
    attemptTimeoutMs = 60_000,
    log = () => {},
  } = options;
  const pending = new Set<Promise<Outcome>>();
  let inFlight = 0;
  let heldBytes = 0;
  let peakBytes = 0;
  let url = '';
  const hold = (bytes: number) => {
    heldBytes += bytes;
    peakBytes = Math.max(peakBytes, heldBytes);
  };

  async function deliver(event: Message, attributes: Record<string, string>): Promise<Outcome> {
    const what = `${attributes.type} ${attributes.id}`;
    if (attributes.type !== SUBMITTED) {
      log(`${what}: no Trigger matches this type; dropped`);
      return { outcome: 'dropped', reason: `no Trigger matches type ${attributes.type}; the classify Trigger takes ${SUBMITTED}` };
    }
    let last: Answer | undefined;
    let error = '';
    let tries = 0;
    for (let attempt = 1; attempt <= attempts; attempt += 1) {
      tries = attempt;
      try {
        last = await post(`${functionUrl}/`, event, attemptTimeoutMs);
        error = '';
        if (last.status >= 200 && last.status < 300) {
          const type = last.headers['ce-type'];
          if (typeof type !== 'string') {
            log(`${what}: delivered, no reply event`);
            return { outcome: 'delivered', status: last.status };
          }
          const fed = await post(`${uiUrl}/events/${token}`, { headers: eventHeaders(last.headers), body: last.body }, attemptTimeoutMs).catch(() => undefined);
          log(`${what}: ${type} → UI feed (${fed?.status ?? 'no answer'})`);
          return { outcome: 'delivered', status: last.status, reply: { type, data: replyData(last) }, feed: fed?.status };
        }
        // Knative retries 5xx, 404, 409 and 429; any other 4xx is final.
        if (last.status < 500 && ![404, 409, 429].includes(last.status)) break;
      } catch (err) {
        last = undefined;
        error = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      }
      if (attempt < attempts) await sleep(retryDelayMs * 2 ** (attempt - 1));
    }
    const problem = last ? problemOf(last) : undefined;
    // The feed shows what the function said of it, never the sender's words: the detail
    // of a problem may quote the event, so only its type, title and status go on.
    const shown = last
      ? { type: problem?.type ?? 'about:blank', title: problem?.title ?? `HTTP ${last.status}`, status: last.status }
      : { type: problemType('unreachable'), title: 'The classify function did not answer', status: 502 };
    const dead: Message = {
      headers: {
        ...Object.fromEntries(Object.entries(attributes).map(([name, value]) => [`ce-${name}`, value])),
        ...(last ? { 'ce-knativeerrorcode': String(last.status) } : {}),
        'ce-knativeerrordest': `${functionUrl}/`,
        'ce-knativeerrordata': Buffer.from(JSON.stringify(shown)).toString('base64'),
        // Always binary mode, so the attributes above are what the UI reads.
        'content-type': structured(event.headers) ? 'application/json' : (event.headers['content-type'] ?? 'application/octet-stream'),
      },
      body: event.body,
    };
    const fed = await post(`${uiUrl}/dead-letters/${token}`, dead, attemptTimeoutMs).catch(() => undefined);
    log(`${what}: delivery failed (${last?.status ?? error}) → dead letter to UI (${fed?.status ?? 'no answer'})`);
    return { outcome: 'dead-lettered', status: last?.status, problem, ...(error ? { error } : {}), attempts: tries, feed: fed?.status };
  }

  function refuse(res: ServerResponse, status: number, code: string, title: string, detail: string, headers: Record<string, string> = {}) {
    writeProblem(res, { type: problemType(code), title, status, detail }, { headers: { connection: 'close', ...headers } });
  }

  async function accept(req: IncomingMessage, res: ServerResponse, wait: boolean) {
    const declared = Number(req.headers['content-length'] ?? NaN);
    const tooLarge = () => refuse(res, 413, 'payload-too-large', 'Event too large', `At most ${maxBodyBytes} bytes.`);
    if (declared > maxBodyBytes) return tooLarge();
    // A declared body is reserved whole before it is read; a chunked one is counted as it arrives.
    let reserved = Number.isFinite(declared) ? declared : 0;
    const busy = () => refuse(res, 429, 'overloaded', 'Relay busy', `At most ${maxInFlight} events and ${maxHeldBytes} bytes are held at once; retry shortly.`, { 'retry-after': '1' });
    if (inFlight >= maxInFlight || heldBytes + reserved > maxHeldBytes) return busy();
    inFlight += 1;
    hold(reserved);
    // Until the event is handed to delivery, this request owns what it holds; then the delivery does.
    let handedOver = false;
    const release = () => {
      inFlight -= 1;
      heldBytes -= reserved;
    };
    try {
      // A declared body is read into one buffer of its size, so it is never held twice.
      const whole = Number.isFinite(declared) ? Buffer.allocUnsafe(declared) : undefined;
      const chunks: Buffer[] = [];
      let size = 0;
      try {
        await consumeBody(req, { maxBytes: maxBodyBytes, timing: { timeoutMs: bodyTimeoutMs, idleTimeoutMs: 10_000 } }, (chunk) => {
          if (whole) chunk.copy(whole, size);
          size += chunk.length;
          if (size > reserved) {
            if (heldBytes + size - reserved > maxHeldBytes) throw new OverBudget();
            hold(size - reserved);
            reserved = size;
          }
          if (!whole) chunks.push(chunk);
        });
      } catch (error) {
        if (error instanceof OverBudget) return busy();
        const reason = error instanceof BodyError ? error.reason : 'closed';
        if (reason === 'too-large') return tooLarge();
        if (reason === 'too-slow') return refuse(res, 408, 'request-timeout', 'Event too slow', (error as Error).message);
        return void res.destroy(); // the sender has gone
      }
      const body = whole ?? Buffer.concat(chunks, size);
      const headers = eventHeaders(req.headers);
      const attributes = attributesOf(headers, body);
      if (!attributes) {
        return refuse(res, 400, 'malformed-cloudevent', 'Not a CloudEvent', 'Send a CloudEvent 1.0 in binary or structured mode, with id, source and type in printable ASCII (npm run emit does).');
      }
      const job: Promise<Outcome> = deliver({ headers, body }, attributes)
        .catch((error): Outcome => {
          log(`relay error: ${(error as Error).message}`);
          return { outcome: 'dead-lettered', error: (error as Error).message, attempts: 0 };
        })
        .finally(() => {
          pending.delete(job);
          release();
        });
      pending.add(job);
      handedOver = true;
      if (!wait) return void res.writeHead(202, { 'content-length': 0 }).end();
      const payload = JSON.stringify(await job);
      res.writeHead(202, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }).end(payload);
    } finally {
      if (!handedOver) release();
    }
  }

  const server = http.createServer((req, res) => {
    const { pathname, searchParams } = new URL(req.url ?? '/', 'http://relay.invalid');
    // Same answer for a wrong token and a wrong path; the body is never read.
    if (!tokenMatches(pathname.slice(1), ingressToken)) {
      return refuse(res, 404, 'not-found', 'Not found', 'The local relay takes CloudEvents at POST /<token>; npm run emit finds the token.');
    }
    if (req.method !== 'POST') return refuse(res, 405, 'method-not-allowed', 'Method not allowed', 'Use POST.', { allow: 'POST' });
    void accept(req, res, searchParams.has('wait')).catch((error) => {
      log(`relay error: ${(error as Error).message}`);
      res.destroy();
    });
  });
  server.headersTimeout = 10_000;
  // A refusal reaches a sender still uploading (server-kit/linger.ts).
  server.on('connection', (socket: Socket) => stageClose(socket));

  return {
    server,
    ingressToken,
    get url() {
      return url;
    },
    get held() {
      return { events: inFlight, bytes: heldBytes, peakBytes };
    },
    listen: () =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(options.port, options.host ?? '127.0.0.1', () => {
          server.off('error', reject);
          const address = server.address() as AddressInfo;
          // Bound to every interface, it is reached on loopback.
          url = `http://${urlHost(loopbackFor(address.address))}:${address.port}/${ingressToken}`;
          if (infoFile) {
            mkdirSync(path.dirname(infoFile), { recursive: true });
            // Written only for this user: the token is what keeps other local processes out.
            writeFileSync(infoFile, JSON.stringify({ url, ui: uiUrl } satisfies RelayInfo), { mode: 0o600 });
            chmodSync(infoFile, 0o600);
          }
          resolve(address);
        });
      }),
    idle: async () => {
      while (pending.size > 0) await Promise.all([...pending]);
    },
    close: () =>
      new Promise((resolve) => {
        if (infoFile && url) rmSync(infoFile, { force: true });
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
