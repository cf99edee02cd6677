/**
 * The UI server: static files, /config.json, the /api proxy to the classify
 * function, the CloudEvents relay, and health endpoints. Plain node:http with
 * a small route table; every error goes through sendProblem.
 */

import { existsSync } from 'node:fs';
import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import sirv from 'sirv';
import { pageConfig, type UiConfig } from './config.ts';
import { EventHub, ingest } from './events.ts';
import { HttpError, methodNotAllowed, notFound, sendProblem } from './problem.ts';
import { createProxy } from './proxy.ts';
import { applyHeaders, contentSecurityPolicy, originOf, securityHeaders } from './security.ts';

export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export interface UiServer {
  server: Server;
  hub: EventHub;
  listen(): Promise<AddressInfo>;
  /** Stops accepting, ends event streams, waits for in-flight requests (up to the grace period). */
  close(): Promise<void>;
}

/** One JSON object per line on stdout/stderr, as cluster log collectors expect. */
export const jsonLogger: Logger = {
  info: (message, fields) => console.log(JSON.stringify({ level: 'info', msg: message, ...fields })),
  error: (message, fields) => console.error(JSON.stringify({ level: 'error', msg: message, ...fields })),
};

const HASHED_ASSET = /^\/assets\//;

export function createUiServer(config: Readonly<UiConfig>, logger: Logger = jsonLogger): UiServer {
  const indexFile = path.join(config.publicDir, 'index.html');
  if (!existsSync(indexFile)) {
    throw new Error(`${indexFile} not found: build the UI first (node --import tsx ui/build.ts)`);
  }

  const headers = securityHeaders(contentSecurityPolicy(originOf(config.publicClassifyUrl)));
  const configJson = JSON.stringify(pageConfig(config));
  const hub = new EventHub(config.events);
  const proxy = createProxy({
    upstream: config.classifyUpstream,
    maxBodyBytes: config.maxBodyBytes,
    timeoutMs: config.proxyTimeoutMs,
    log: logger.error,
  });
  const serveStatic = sirv(config.publicDir, {
    dev: false,
    etag: true,
    brotli: true,
    gzip: true,
    setHeaders(res, pathname) {
      // Hashed names change with their content, so they never need revalidation.
      res.setHeader('Cache-Control', HASHED_ASSET.test(pathname) ? 'public, max-age=31536000, immutable' : 'no-cache');
    },
  });
  let closing = false;

  async function route(req: IncomingMessage, res: ServerResponse, pathname: string, search: string) {
    const method = req.method ?? 'GET';
    const readOnly = method === 'GET' || method === 'HEAD';

    if (pathname === '/health/liveness' || pathname === '/health/readiness') {
      if (!readOnly) throw methodNotAllowed(method, ['GET', 'HEAD']);
      if (pathname === '/health/readiness' && closing) {
        throw new HttpError(503, { title: 'Shutting down', type: 'shutting-down' });
      }
      return sendJson(res, 200, { status: 'ok' }, 'no-store');
    }
    if (pathname === '/config.json') {
      if (!readOnly) throw methodNotAllowed(method, ['GET', 'HEAD']);
      return sendJson(res, 200, configJson, 'no-cache');
    }
    if (pathname === '/events') {
      if (method !== 'POST') throw methodNotAllowed(method, ['POST']);
      checkEventSender(req, config.events.allowedHosts);
      await ingest(req, hub, config.events.maxBodyBytes);
      res.writeHead(202, { 'Content-Length': 0 }).end();
      return;
    }
    if (pathname === '/events/stream') {
      if (method !== 'GET') throw methodNotAllowed(method, ['GET']);
      return hub.subscribe(req, res);
    }
    if (pathname === '/api' || pathname.startsWith('/api/')) {
      return proxy.handle(req, res, pathname, search);
    }
    if (!readOnly) throw methodNotAllowed(method, ['GET', 'HEAD']);
    await new Promise<void>((resolve, reject) => {
      res.once('finish', resolve);
      res.once('close', resolve);
      serveStatic(req, res, () => reject(notFound(pathname)));
    });
  }

  const server = http.createServer(async (req, res) => {
    applyHeaders(res, headers);
    let pathname = '/';
    let search = '';
    try {
      const url = new URL(req.url ?? '/', 'http://ui.invalid');
      pathname = url.pathname;
      search = url.search;
      await route(req, res, pathname, search);
    } catch (error) {
      if (!(error instanceof HttpError)) {
        logger.error('request failed', { method: req.method, path: pathname, error: String((error as Error)?.stack ?? error) });
      }
      sendProblem(res, error, pathname);
    }
  });
  // Uploads on slow phone links can take a while; Node's defaults (300 s
  // request timeout) are fine, but headers must arrive promptly.
  server.headersTimeout = 20_000;

  return {
    server,
    hub,
    listen() {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.port, config.host, () => {
          server.off('error', reject);
          resolve(server.address() as AddressInfo);
        });
      });
    },
    close() {
      closing = true;
      hub.close();
      return new Promise((resolve) => {
        const force = setTimeout(() => server.closeAllConnections(), config.shutdownGraceMs);
        force.unref();
        server.close(() => {
          clearTimeout(force);
          proxy.close();
          resolve();
        });
        server.closeIdleConnections();
      });
    },
  };
}

function sendJson(res: ServerResponse, status: number, body: unknown, cacheControl: string) {
  const payload = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(payload),
    'Cache-Control': cacheControl,
  });
  res.end(res.req.method === 'HEAD' ? undefined : payload);
}

/**
 * On Knative the Trigger delivers to the Service's cluster-local host name,
 * which the public ingress does not route; listing those names in
 * UI_EVENTS_ALLOWED_HOSTS keeps browsers on the public route from injecting
 * events. Empty list: accept any (local development).
 */
function checkEventSender(req: IncomingMessage, allowedHosts: readonly string[]) {
  if (allowedHosts.length === 0) return;
  const host = (req.headers.host ?? '').toLowerCase().replace(/:\d+$/, '');
  if (!allowedHosts.includes(host)) {
    throw new HttpError(403, {
      title: 'Events not accepted from this host',
      detail: 'POST /events is only for the cluster-local Trigger.',
      type: 'events-forbidden',
    });
  }
}
