/**
 * Reverse proxy from the UI's /api/* to the classify function.
 *
 * The browser only ever talks to the UI's origin, so no CORS is needed, and
 * the function keeps a cluster-local address. Only the routes the page uses
 * are forwarded (not e.g. /metrics). Bodies stream through with a byte
 * limit: a 10 MB photo is never held in memory here.
 */

import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import { randomUUID } from 'node:crypto';
import { pipeline } from 'node:stream';
import { API_PREFIX } from '../../contracts/page.ts';
import { MethodNotAllowed, NotFound, tooLarge, UiError } from './errors.ts';

export interface ProxyOptions {
  upstream: URL;
  maxBodyBytes: number;
  timeoutMs: number;
  log: (message: string, fields?: Record<string, unknown>) => void;
}

export interface Proxy {
  handle(req: IncomingMessage, res: ServerResponse, path: string, search: string): Promise<void>;
  close(): void;
}

/** Paths under /api that are forwarded, and the methods each accepts. */
const ROUTES: Record<string, string[]> = {
  '/classify': ['POST'],
  '/health/readiness': ['GET', 'HEAD'],
  '/health/liveness': ['GET', 'HEAD'],
};

/**
 * Request headers the function may see: what it needs to classify, trace and
 * negotiate. Everything else (cookies, auth, hop-by-hop fields, a client's
 * own X-Forwarded-*) stays here. Host and Content-Length are set by Node from
 * the target and the body, never copied.
 */
const FORWARDED_REQUEST_HEADERS = [
  'accept',
  'accept-language',
  'content-type',
  'content-encoding',
  'x-request-id',
  'traceparent',
  'tracestate',
  'user-agent',
];

/** Response headers the browser may see from the function. */
const FORWARDED_RESPONSE_HEADERS = new Set([
  'content-type',
  'content-length',
  'content-encoding',
  'cache-control',
  'retry-after',
  'x-request-id',
  'server-timing',
  'vary',
  'etag',
  'last-modified',
]);

/** Socket errors that mean the function closed a connection it had accepted. */
const CLOSED_BY_UPSTREAM = new Set(['EPIPE', 'ECONNRESET']);

export function createProxy({ upstream, maxBodyBytes, timeoutMs, log }: ProxyOptions): Proxy {
  const client = upstream.protocol === 'https:' ? https : http;
  const agent = new client.Agent({ keepAlive: true, maxSockets: 64 });
  const basePath = upstream.pathname.replace(/\/+$/, '');

  async function handle(req: IncomingMessage, res: ServerResponse, path: string, search: string) {
    const route = path.slice(API_PREFIX.length) || '/';
    const methods = ROUTES[route];
    if (!methods) throw new NotFound(path);
    if (!methods.includes(req.method ?? '')) throw new MethodNotAllowed(req.method ?? '', methods);

    const declared = Number(req.headers['content-length'] ?? NaN);
    // Refused before reading; the connection closes (problem.ts), which spares us the upload.
    if (Number.isFinite(declared) && declared > maxBodyBytes) throw tooLarge('payload-too-large', maxBodyBytes);

    const headers = forwardHeaders(req);
    const target = new URL(upstream);
    target.pathname = `${basePath}${route}`;
    target.search = search;

    await new Promise<void>((resolve, reject) => {
      let received = 0;
      let settled = false;
      let responded = false;
      let connected = false;
      const finish = (error?: unknown) => {
        if (settled) return;
        settled = true;
        if (error) reject(error);
        else resolve();
      };

      const upstreamReq = client.request(target, { method: req.method, headers, agent, timeout: timeoutMs });
      upstreamReq.on('socket', (socket) => {
        if (!socket.connecting) connected = true; // a kept-alive socket
        else socket.once('connect', () => (connected = true));
      });

      upstreamReq.on('response', (upstreamRes) => {
        responded = true;
        const outHeaders: Record<string, string | string[]> = {};
        for (const [name, value] of Object.entries(upstreamRes.headers)) {
          if (value !== undefined && FORWARDED_RESPONSE_HEADERS.has(name)) outHeaders[name] = value;
        }
        // Answered before the upload ended (a 503, 408, 413 or 400 sent before the body was
        // read): the rest has nowhere to go, so this connection closes after the answer
        // instead of draining the upload for as long as the client keeps sending.
        if (!req.complete) outHeaders.connection = 'close';
        res.writeHead(upstreamRes.statusCode ?? 502, outHeaders);
        pipeline(upstreamRes, res, () => finish());
      });

      upstreamReq.on('timeout', () => {
        upstreamReq.destroy(new UiError('upstream-timeout', 'Classify function timed out', `No answer from the classify function within ${Math.round(timeoutMs / 1000)} s.`));
      });

      upstreamReq.on('error', (error) => {
        // The function answered (e.g. 503 before reading the body) and then closed
        // the connection under the upload: its answer stands; the upload's EPIPE is noise.
        if (responded) return;
        if (error instanceof UiError) return finish(error);
        const code = (error as NodeJS.ErrnoException).code ?? '';
        if (connected && CLOSED_BY_UPSTREAM.has(code)) {
          // It accepted the connection and then dropped it: overload (it answers 503
          // before reading and closes), or a restart. Either way, retrying soon helps.
          return finish(new UiError('upstream-closed', 'Classify function busy', 'The classify function closed the connection before answering; retry in a moment.', { cause: error }));
        }
        log('classify upstream failed', { error: code || error.message, target: target.href });
        finish(new UiError(
          'upstream-unreachable',
          'Classify function unreachable',
          'The UI server could not reach the classify function. It may be starting or down; retry in a few seconds.',
          { cause: error },
        ));
      });

      // Client went away before the answer: stop the upstream work too.
      res.on('close', () => {
        if (!res.writableFinished) upstreamReq.destroy();
      });

      if (req.method === 'GET' || req.method === 'HEAD') {
        upstreamReq.end();
        return;
      }
      // Backpressure by hand (not pipe) so that the byte count can cut the stream.
      let paused = false;
      const resume = () => {
        paused = false;
        req.resume();
      };
      upstreamReq.on('drain', resume);
      upstreamReq.once('close', resume); // never leave the client stalled
      req.on('data', (chunk: Buffer) => {
        if (received > maxBodyBytes || upstreamReq.destroyed || upstreamReq.writableEnded) return; // discard the rest
        received += chunk.length;
        if (received > maxBodyBytes) {
          upstreamReq.destroy(tooLarge('payload-too-large', maxBodyBytes));
          return;
        }
        if (!upstreamReq.write(chunk) && !paused) {
          paused = true;
          req.pause();
        }
      });
      req.on('end', () => {
        if (received <= maxBodyBytes && !upstreamReq.destroyed) upstreamReq.end();
      });
      req.on('error', (error) => upstreamReq.destroy(error));
    });
  }

  return {
    handle,
    close: () => agent.destroy(),
  };
}

function forwardHeaders(req: IncomingMessage): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const name of FORWARDED_REQUEST_HEADERS) {
    const value = req.headers[name];
    if (value !== undefined) out[name] = value;
  }
  const length = req.headers['content-length'];
  if (length !== undefined && /^\d+$/.test(length)) out['content-length'] = length;
  // The chain as proxies build it: the function finds the client in it through its trusted
  // proxies (server-kit/client-address.ts), so that its per-client limits count browsers.
  const peer = req.socket.remoteAddress ?? '';
  const prior = req.headers['x-forwarded-for'];
  out['x-forwarded-for'] = prior ? `${prior}, ${peer}` : peer;
  out['x-forwarded-host'] = req.headers.host ?? '';
  out['x-forwarded-proto'] = String(req.headers['x-forwarded-proto'] ?? 'http');
  if (!req.headers['x-request-id']) out['x-request-id'] = randomUUID();
  return out;
}
