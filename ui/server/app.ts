/**
 * The UI server: static files, /config.json, the /api proxy to the classify
 * function, the CloudEvents relay and dead-letter receiver, and health
 * endpoints. Plain node:http with a small route table; handlers throw the
 * errors of errors.ts, and sendProblem (problem.ts) is the one place that
 * turns them into statuses.
 *
 * Only the event source writes to the feed: it POSTs to /events/<token> and
 * /dead-letters/<token>, with the secret from UI_EVENTS_TOKEN. Any other path
 * there, or any path at all without a configured token, is a 404.
 */

import { existsSync } from 'node:fs';
import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import path from 'node:path';
import sirv from 'sirv';
import { API_PREFIX, CONFIG_PATH, EVENTS_STREAM_PATH } from '../../contracts/page.ts';
import { clientAddress } from '../../server-kit/client-address.ts';
import { writeJson } from '../../server-kit/json.ts';
import { stageClose } from '../../server-kit/linger.ts';
import { createLogger, type Logger } from '../../server-kit/log.ts';
import { tokenMatches } from '../../server-kit/token.ts';
import { ConfigError, pageConfig, type UiConfig } from './config.ts';
import { receiveDeadLetter } from './dead-letters.ts';
import { EventHub, ingest } from './events.ts';
import { MethodNotAllowed, NotFound, UiError } from './errors.ts';
import { sendProblem } from './problem.ts';
import { createProxy } from './proxy.ts';
import { settleRange } from './range.ts';
import { applyHeaders, contentSecurityPolicy, originOf, securityHeaders } from './security.ts';

export interface UiServer {
  server: Server;
  hub: EventHub;
  listen(): Promise<AddressInfo>;
  /** Stops accepting, ends event streams, waits for in-flight requests (up to the grace period). */
  close(): Promise<void>;
}

/** JSON lines on stdout/stderr (server-kit/log.ts); client errors are logged without a stack. */
export const jsonLogger: Logger = createLogger({ expected: (error) => error instanceof UiError || error instanceof ConfigError });

const HASHED_ASSET = /^\/assets\//;
/** POST /events/<token> and /dead-letters/<token>; the token is never logged or echoed. */
const EVENT_INGRESS = /^\/(events|dead-letters)(?:\/(.*))?$/;

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
      if (!readOnly) throw new MethodNotAllowed(method, ['GET', 'HEAD']);
      if (pathname === '/health/readiness' && closing) throw new UiError('shutting-down', 'Shutting down');
      return writeJson(res, 200, { status: 'ok' }, { 'cache-control': 'no-store' });
    }
    if (pathname === CONFIG_PATH) {
      if (!readOnly) throw new MethodNotAllowed(method, ['GET', 'HEAD']);
      return writeJson(res, 200, configJson, { 'cache-control': 'no-cache' });
    }
    if (pathname === EVENTS_STREAM_PATH) {
      if (method !== 'GET') throw new MethodNotAllowed(method, ['GET']);
      return hub.subscribe(req, res, clientAddress(req.socket.remoteAddress, req.headers['x-forwarded-for'], config.trustedProxies));
    }
    const ingress = EVENT_INGRESS.exec(pathname);
    if (ingress) {
      // Same answer for a wrong token, no token and no configured token: nothing to probe.
      if (!tokenMatches(ingress[2] ?? '', config.events.token)) {
        // The body is never read, so the connection goes too: a prober cannot keep it busy.
        res.setHeader('Connection', 'close');
        throw new NotFound(`/${ingress[1]}/…`);
      }
      if (method !== 'POST') throw new MethodNotAllowed(method, ['POST']);
      if (ingress[1] === 'events') {
        await ingest(req, hub, {
          maxBodyBytes: config.events.maxBodyBytes,
          maxEventDepth: config.events.maxEventDepth,
          timeoutMs: config.events.deadLetterTimeoutMs,
        });
      } else {
        const failure = await receiveDeadLetter(req, hub, { maxBytes: config.events.maxDeadLetterBytes, timeoutMs: config.events.deadLetterTimeoutMs });
        logger.error('event delivery failed (dead letter)', { ...failure });
      }
      res.writeHead(202, { 'Content-Length': 0 }).end();
      return;
    }
    if (pathname === API_PREFIX || pathname.startsWith(`${API_PREFIX}/`)) {
      return proxy.handle(req, res, pathname, search);
    }
    if (!readOnly) throw new MethodNotAllowed(method, ['GET', 'HEAD']);
    settleRange(req, config.publicDir, pathname);
    await new Promise<void>((resolve, reject) => {
      res.once('finish', resolve);
      res.once('close', resolve);
      serveStatic(req, res, () => reject(new NotFound(pathname)));
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
      const shown = redact(pathname);
      if (!(error instanceof UiError)) {
        logger.error('request failed', { method: req.method, path: shown, error });
      }
      sendProblem(res, error, shown);
    }
  });
  // Closes after an answer are staged, so a browser still uploading reads a 413
  // (server-kit/linger.ts).
  server.on('connection', (socket: Socket) => stageClose(socket));
  // The proxy forwards an allowlist of headers, so it must see all of them:
  // Node's default keeps only the first 2000 entries. maxHeaderSize (16 KiB) still bounds them.
  server.maxHeadersCount = 0;
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

/** The path as it may appear in logs and problems: never the event token. */
function redact(pathname: string): string {
  const ingress = EVENT_INGRESS.exec(pathname);
  return ingress ? `/${ingress[1]}/…` : pathname;
}
