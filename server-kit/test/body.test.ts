// The body reader against a real loopback server, with a raw socket as the client so that
// a test can stall, trickle or cut the upload where it needs to.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import http, { type IncomingMessage } from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { BodyError, readBody, type BodyOptions } from '../body.ts';

type Outcome = { bytes: Buffer } | { error: unknown };

interface Ctx {
  server?: http.Server;
  socket?: net.Socket;
}

/**
 * A server whose one request is read with `options`; `reading` resolves once the read has
 * begun, `outcome` says how it settled.
 */
async function serve(ctx: Ctx, options: (req: IncomingMessage) => BodyOptions) {
  let report!: (o: Outcome & { listeners: number }) => void;
  const outcome = new Promise<Outcome & { listeners: number }>((resolve) => (report = resolve));
  let begun!: () => void;
  const reading = new Promise<void>((resolve) => (begun = resolve));
  ctx.server = http.createServer((req, res) => {
    const before = req.listenerCount('data') + req.listenerCount('end') + req.listenerCount('error') + req.listenerCount('close');
    const read = readBody(req, options(req));
    begun();
    read.then(
      (bytes) => ({ bytes }),
      (error: unknown) => ({ error }),
    ).then((o) => {
      const after = req.listenerCount('data') + req.listenerCount('end') + req.listenerCount('error') + req.listenerCount('close');
      report({ ...o, listeners: after - before });
      res.writeHead('bytes' in o ? 200 : 400, { connection: 'close' }).end();
    });
  });
  ctx.server.listen(0, '127.0.0.1');
  await once(ctx.server, 'listening');
  const { port } = ctx.server.address() as AddressInfo;
  ctx.socket = net.connect(port, '127.0.0.1');
  ctx.socket.on('error', () => {}); // the server may cut the upload; that is the point
  await once(ctx.socket, 'connect');
  return { socket: ctx.socket, outcome, reading };
}

const head = (headers: string) => `POST / HTTP/1.1\r\nHost: x\r\n${headers}\r\n`;

function failure(o: Outcome): BodyError {
  assert.ok('error' in o, 'the read should have failed');
  assert.instance(o.error, BodyError);
  return o.error as BodyError;
}

const body = suite<Ctx>('server-kit: bounded body reader', {});
body.after.each((ctx) => {
  ctx.socket?.destroy();
  ctx.server?.closeAllConnections();
  ctx.server?.close();
  ctx.server = ctx.socket = undefined;
});

body('reads a whole body within the limit, and leaves no listener behind', async (ctx) => {
  const { socket, outcome } = await serve(ctx, () => ({ maxBytes: 10 }));
  socket.write(`${head('Content-Length: 10\r\n')}0123456789`);
  const o = await outcome;
  assert.ok('bytes' in o);
  assert.is((o as { bytes: Buffer }).bytes.toString(), '0123456789');
  assert.is(o.listeners, 0);
});

body('a declared length over the limit is refused before a byte is read', async (ctx) => {
  const { socket, outcome } = await serve(ctx, () => ({ maxBytes: 10 }));
  socket.write(head('Content-Length: 11\r\n'));
  const err = failure(await outcome);
  assert.is(err.reason, 'too-large');
  assert.is(err.limit, 10);
});

body('a chunked body is stopped at the first byte past the limit', async (ctx) => {
  const { socket, outcome } = await serve(ctx, () => ({ maxBytes: 10 }));
  socket.write(`${head('Transfer-Encoding: chunked\r\n')}8\r\n01234567\r\n`);
  socket.write('8\r\n89abcdef\r\n'); // 16 bytes: over; the terminating chunk never comes
  const o = await outcome;
  assert.is(failure(o).reason, 'too-large');
  assert.is(o.listeners, 0);
});

body('a stalled body ends at the idle timeout', async (ctx) => {
  const { socket, outcome } = await serve(ctx, () => ({ maxBytes: 100, timing: { timeoutMs: 60_000, idleTimeoutMs: 150 } }));
  socket.write(`${head('Content-Length: 100\r\n')}0123`);
  const err = failure(await outcome);
  assert.is(err.reason, 'too-slow');
  assert.match(err.message, /No body data arrived for 150 ms/);
});

body('a body that keeps trickling ends at the deadline', async (ctx) => {
  const { socket, outcome } = await serve(ctx, () => ({ maxBytes: 10_000, timing: { timeoutMs: 150 } }));
  socket.write(head('Content-Length: 1000\r\n'));
  const trickle = setInterval(() => socket.write('x'), 20);
  try {
    const err = failure(await outcome);
    assert.is(err.reason, 'too-slow');
    assert.match(err.message, /longer than 150 ms/);
  } finally {
    clearInterval(trickle);
  }
});

body('a body slower than the minimum rate ends after its grace period', async (ctx) => {
  const timing = { timeoutMs: 60_000, idleTimeoutMs: 60_000, graceMs: 100, minRateBytesPerSec: 1_000_000 };
  const { socket, outcome } = await serve(ctx, () => ({ maxBytes: 10_000, timing }));
  socket.write(head('Content-Length: 1000\r\n'));
  const trickle = setInterval(() => socket.write('x'), 20);
  try {
    const err = failure(await outcome);
    assert.is(err.reason, 'too-slow');
    assert.match(err.message, /slower than 1000000 bytes\/s/);
  } finally {
    clearInterval(trickle);
  }
});

body('a client that goes away mid-body settles the read as closed', async (ctx) => {
  const { socket, outcome, reading } = await serve(ctx, () => ({ maxBytes: 100 }));
  socket.write(`${head('Content-Length: 100\r\n')}0123`);
  await reading;
  socket.destroy();
  const o = await outcome;
  assert.is(failure(o).reason, 'closed');
  assert.is(o.listeners, 0);
});

body("the caller's cancel ends the read with its reason", async (ctx) => {
  const cancel = new AbortController();
  const reason = new Error('the parser gave up');
  const { socket, outcome, reading } = await serve(ctx, () => ({ maxBytes: 100, cancel: cancel.signal }));
  socket.write(`${head('Content-Length: 100\r\n')}0123`);
  await reading;
  cancel.abort(reason);
  const o = await outcome;
  assert.ok('error' in o);
  assert.is((o as { error: unknown }).error, reason);
});

body.run();
