// The local stand-in for the Knative Broker that `npm start` runs: it accepts a CloudEvent
// (202, as a broker ingress does), delivers it to the function's `/` as the Trigger would,
// and forwards the function's reply event to the UI's /events/<token>. When delivery keeps
// failing it sends a dead letter to /dead-letters/<token> with the same knativeerror*
// extensions Knative adds, so the feed shows "failed" locally exactly as on the cluster.
import http, { type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { problemType } from '../contracts/problems.ts';
import { BodyError, readBody } from '../server-kit/body.ts';
import { writeProblem } from '../server-kit/problem.ts';

export interface RelayOptions {
  /** The function's base URL; events go to its `/`. */
  functionUrl: string;
  /** The UI's base URL. */
  uiUrl: string;
  token: string;
  port: number;
  host?: string;
  /** A submitted event holds an image of up to ~10 MB, ~13.4 MB in base64. */
  maxBodyBytes?: number;
  /** Delivery attempts before a dead letter (the Trigger in knative/ retries too). */
  attempts?: number;
  /** At most this many events held at once; more get 429, as an overloaded broker would. */
  maxInFlight?: number;
  log?: (line: string) => void;
}

export interface Relay {
  server: Server;
  listen(): Promise<AddressInfo>;
  /** Resolves when every accepted event has been delivered or dead-lettered. */
  idle(): Promise<void>;
  close(): Promise<void>;
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

function post(url: string, message: Message, timeoutMs = 120_000): Promise<{ status: number; headers: IncomingMessage['headers']; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { ...message.headers, 'content-length': message.body.length }, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(message.body);
  });
}

/** An event's body must arrive within this (a broker's ingress bounds it too). */
const BODY_TIMEOUT_MS = 60_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function createRelay(options: RelayOptions): Relay {
  const { functionUrl, uiUrl, token, maxBodyBytes = 16 * 1024 * 1024, attempts = 3, maxInFlight = 8, log = () => {} } = options;
  const pending = new Set<Promise<void>>();

  async function deliver(event: Message) {
    const what = `${event.headers['ce-type'] ?? 'event'} ${event.headers['ce-id'] ?? ''}`.trim();
    let last: { code: number; data: Buffer } = { code: 0, data: Buffer.alloc(0) };
    for (let attempt = 1; attempt <= attempts; attempt += 1) {
      try {
        const reply = await post(`${functionUrl}/`, event);
        if (reply.status >= 200 && reply.status < 300) {
          if (!reply.headers['ce-type']) return log(`${what}: delivered, no reply event`);
          const forwarded = await post(`${uiUrl}/events/${token}`, { headers: eventHeaders(reply.headers), body: reply.body });
          return log(`${what}: ${reply.headers['ce-type']} → UI feed (${forwarded.status})`);
        }
        last = { code: reply.status, data: reply.body };
        // Knative retries 5xx, 404, 409 and 429; any other 4xx is final.
        if (reply.status < 500 && ![404, 409, 429].includes(reply.status)) break;
      } catch (error) {
        last = { code: 0, data: Buffer.from((error as Error).message) };
      }
      if (attempt < attempts) await sleep(250 * 2 ** (attempt - 1));
    }
    const dead: Message = {
      headers: {
        ...event.headers,
        ...(last.code ? { 'ce-knativeerrorcode': String(last.code) } : {}),
        'ce-knativeerrordest': `${functionUrl}/`,
        'ce-knativeerrordata': last.data.subarray(0, 1024).toString('base64'),
      },
      body: event.body,
    };
    const answered = await post(`${uiUrl}/dead-letters/${token}`, dead).catch(() => ({ status: 0 }));
    log(`${what}: delivery failed (${last.code || 'no answer'}) → dead letter to UI (${answered.status})`);
  }

  const server = http.createServer(async (req, res) => {
    const refuse = (status: number, code: string, title: string, detail: string) =>
      writeProblem(res, { type: problemType(code), title, status, detail }, { headers: { connection: 'close' } });
    if (req.method !== 'POST' || new URL(req.url ?? '/', 'http://relay').pathname !== '/') {
      req.resume();
      return refuse(404, 'not-found', 'Not found', 'The local relay takes CloudEvents at POST /.');
    }
    const tooLarge = () => refuse(413, 'payload-too-large', 'Event too large', `At most ${maxBodyBytes} bytes.`);
    if (Number(req.headers['content-length'] ?? 0) > maxBodyBytes) return tooLarge();
    if (pending.size >= maxInFlight) return refuse(429, 'overloaded', 'Relay busy', `At most ${maxInFlight} events in flight; retry shortly.`);
    let body: Buffer;
    try {
      body = await readBody(req, { maxBytes: maxBodyBytes, timing: { timeoutMs: BODY_TIMEOUT_MS } });
    } catch (error) {
      const reason = error instanceof BodyError ? error.reason : 'closed';
      if (reason === 'too-large') return tooLarge();
      if (reason === 'too-slow') return refuse(408, 'request-timeout', 'Event too slow', (error as Error).message);
      return void res.destroy(); // the sender has gone
    }
    const headers = eventHeaders(req.headers);
    const structured = /^application\/cloudevents\+json/i.test(headers['content-type'] ?? '');
    if (!headers['ce-type'] && !structured) return refuse(400, 'malformed-cloudevent', 'Not a CloudEvent', 'Send a CloudEvent in binary or structured mode (npm run emit does).');
    res.writeHead(202, { 'content-length': 0 }).end();
    const job = deliver({ headers, body }).catch((error) => log(`relay error: ${(error as Error).message}`));
    pending.add(job);
    void job.finally(() => pending.delete(job));
  });

  return {
    server,
    listen: () =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(options.port, options.host ?? '127.0.0.1', () => resolve(server.address() as AddressInfo));
      }),
    idle: async () => {
      while (pending.size > 0) await Promise.all([...pending]);
    },
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
