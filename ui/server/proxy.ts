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
import { HttpError, methodNotAllowed, notFound, payloadTooLarge } from './problem.ts';

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

// RFC 9110 §7.6.1 connection-specific fields, never forwarded.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

export function createProxy({ upstream, maxBodyBytes, timeoutMs, log }: ProxyOptions): Proxy {
  const client = upstream.protocol === 'https:' ? https : http;
  const agent = new client.Agent({ keepAlive: true, maxSockets: 64 });
  const basePath = upstream.pathname.replace(/\/+$/, '');

  async function handle(req: IncomingMessage, res: ServerResponse, path: string, search: string) {
    const route = path.slice('/api'.length) || '/';
    const methods = ROUTES[route];
    if (!methods) throw notFound(path);
    if (!methods.includes(req.method ?? '')) throw methodNotAllowed(req.method ?? '', methods);

    const declared = Number(req.headers['content-length'] ?? NaN);
    if (Number.isFinite(declared) && declared > maxBodyBytes) {
      // Refuse before reading; closing the connection spares us the upload.
      res.setHeader('Connection', 'close');
      throw payloadTooLarge(maxBodyBytes);
    }

    const headers = forwardHeaders(req);
    const target = new URL(upstream);
    target.pathname = `${basePath}${route}`;
    target.search = search;

    await new Promise<void>((resolve, reject) => {
      let received = 0;
      let settled = false;
      const finish = (error?: unknown) => {
        if (settled) return;
        settled = true;
        if (error) reject(error);
        else resolve();
      };

      const upstreamReq = client.request(target, { method: req.method, headers, agent, timeout: timeoutMs });

      upstreamReq.on('response', (upstreamRes) => {
        const outHeaders: Record<string, string | string[]> = {};
        for (const [name, value] of Object.entries(upstreamRes.headers)) {
          if (value !== undefined && !HOP_BY_HOP.has(name)) outHeaders[name] = value;
        }
        res.writeHead(upstreamRes.statusCode ?? 502, outHeaders);
        upstreamRes.pipe(res);
        upstreamRes.on('error', (error) => {
          res.destroy(error);
          finish();
        });
        res.on('close', () => {
          upstreamRes.destroy();
          finish();
        });
      });

      upstreamReq.on('timeout', () => {
        upstreamReq.destroy(new HttpError(504, {
          title: 'Classify function timed out',
          detail: `No answer from the classify function within ${Math.round(timeoutMs / 1000)} s.`,
          type: 'upstream-timeout',
          headers: { 'Retry-After': '5' },
        }));
      });

      upstreamReq.on('error', (error) => {
        if (error instanceof HttpError) return finish(error);
        log('classify upstream failed', { error: (error as NodeJS.ErrnoException).code ?? error.message, target: target.href });
        finish(new HttpError(502, {
          title: 'Classify function unreachable',
          detail: 'The UI server could not reach the classify function. It may be starting or down; retry in a few seconds.',
          type: 'upstream-unreachable',
          headers: { 'Retry-After': '2' },
        }, { cause: error }));
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
        if (received > maxBodyBytes || upstreamReq.destroyed) return; // discard the rest
        received += chunk.length;
        if (received > maxBodyBytes) {
          res.setHeader('Connection', 'close');
          upstreamReq.destroy(payloadTooLarge(maxBodyBytes));
          return;
        }
        if (!upstreamReq.write(chunk) && !paused) {
          paused = true;
          req.pause();
        }
      });
      req.on('end', () => {
        if (received <= maxBodyBytes) upstreamReq.end();
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
  const listed = String(req.headers.connection ?? '')
    .split(',')
    .map((name) => name.trim().toLowerCase());
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || name === 'host' || HOP_BY_HOP.has(name) || listed.includes(name)) continue;
    if (name === 'cookie') continue; // the function has no use for the UI's cookies
    out[name] = value;
  }
  const peer = req.socket.remoteAddress ?? '';
  const prior = req.headers['x-forwarded-for'];
  out['x-forwarded-for'] = prior ? `${prior}, ${peer}` : peer;
  out['x-forwarded-host'] = req.headers.host ?? '';
  out['x-forwarded-proto'] = String(req.headers['x-forwarded-proto'] ?? 'http');
  if (!req.headers['x-request-id']) out['x-request-id'] = randomUUID();
  return out;
}
