import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import http, { type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { PROBLEM_MEDIA_TYPE, problemType } from '../../contracts/problems.ts';
import { INTERNAL_PROBLEM, writeProblem } from '../problem.ts';

interface Ctx {
  server?: http.Server;
}

async function serve(ctx: Ctx, handler: (res: ServerResponse) => void): Promise<string> {
  ctx.server = http.createServer((_req, res) => handler(res));
  ctx.server.listen(0, '127.0.0.1');
  await once(ctx.server, 'listening');
  return `http://127.0.0.1:${(ctx.server.address() as AddressInfo).port}/`;
}

const problem = suite<Ctx>('server-kit: problem+json writer', {});
problem.after.each((ctx) => {
  ctx.server?.closeAllConnections();
  ctx.server?.close();
  ctx.server = undefined;
});

problem('writes the status, media type, length, headers and instance; never cached', async (ctx) => {
  const body = { type: problemType('method-not-allowed'), title: 'Method not allowed', status: 405, detail: 'Use GET.' };
  const url = await serve(ctx, (res) => writeProblem(res, body, { instance: '/x', headers: { allow: 'GET, HEAD' } }));
  const res = await fetch(url);
  assert.is(res.status, 405);
  assert.is(res.headers.get('content-type'), PROBLEM_MEDIA_TYPE);
  assert.is(res.headers.get('cache-control'), 'no-store');
  assert.is(res.headers.get('allow'), 'GET, HEAD');
  const text = await res.text();
  assert.is(res.headers.get('content-length'), String(Buffer.byteLength(text)));
  assert.equal(JSON.parse(text), { ...body, instance: '/x' });
});

problem('a header cannot change the media type', async (ctx) => {
  const url = await serve(ctx, (res) => writeProblem(res, INTERNAL_PROBLEM, { headers: { 'content-type': 'text/html' } }));
  const res = await fetch(url);
  assert.is(res.headers.get('content-type'), PROBLEM_MEDIA_TYPE);
  assert.equal(await res.json(), { type: 'about:blank', title: 'Internal Server Error', status: 500, detail: 'The server failed to process the request.' });
});

problem('once a reply has begun, the connection is cut instead', async (ctx) => {
  let fail: () => void = () => {};
  const url = await serve(ctx, (res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('partial');
    fail = () => writeProblem(res, INTERNAL_PROBLEM);
  });
  const res = await fetch(url);
  assert.is(res.status, 200);
  fail(); // as when a failure comes mid-stream: the client has the 200 by now
  const ending = await res.text().then(() => 'complete', () => 'cut');
  assert.is(ending, 'cut', 'the body must end in an error, not look complete');
});

problem.run();
