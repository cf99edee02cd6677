// `npm run emit`: inputs it must refuse before reading them, and what it says about each
// outcome, against a real relay and a scripted function on loopback (the function answers on
// cue). One case runs the real command line; the rest call emit() in this process.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile, spawnSync } from 'node:child_process';
import http from 'node:http';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { CloudEvent, HTTP } from 'cloudevents';
import { CLASSIFIED, REJECTED } from '../../contracts/events.ts';
import { emit } from '../emit.ts';
import { createRelay, type Relay } from '../relay.ts';
import { freePort } from '../../ui/test/support.ts';

const ROOT = path.resolve(import.meta.dirname, '..', '..');

interface Run {
  code: number;
  out: string[];
  err: string[];
  ms: number;
}

async function run(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const started = performance.now();
  const code = await emit(args, { KLASSIFY_RELAY_FILE: '/nonexistent/relay.json', ...env }, { log: (l) => out.push(l), error: (l) => err.push(l) });
  return { code, out, err, ms: performance.now() - started };
}

interface Ctx {
  dir: string;
  image: string;
  fn: http.Server;
  fnPort: number;
  relay: Relay;
  relayFile: string;
  answer: (res: http.ServerResponse) => void;
}

const refusals = suite<Ctx>('emit: inputs refused before they are read');
refusals.before(async (ctx) => {
  ctx.dir = await mkdtemp(path.join(os.tmpdir(), 'klassify-emit-'));
});
refusals.after(async (ctx) => {
  await rm(ctx.dir, { recursive: true, force: true });
});

refusals('a device, a FIFO, a folder, an empty, a huge and a missing file: one line each, at once', async (ctx) => {
  const fifo = path.join(ctx.dir, 'pipe.jpg');
  assert.is(spawnSync('mkfifo', [fifo]).status, 0, 'mkfifo');
  const empty = path.join(ctx.dir, 'empty.jpg');
  await writeFile(empty, '');
  // Sparse: 11 MiB on paper, nothing on disk.
  const huge = path.join(ctx.dir, 'huge.jpg');
  await writeFile(huge, '');
  await truncate(huge, 11 * 1024 * 1024);
  const cases: Array<[string, RegExp]> = [
    ['/dev/zero', /\/dev\/zero is not a regular file/],
    [fifo, /pipe\.jpg is not a regular file/],
    [ctx.dir, /is a folder, not an image/],
    [empty, /empty\.jpg is empty/],
    [huge, /huge\.jpg is 11534336 bytes; the function takes at most 10485760 \(KLASSIFY_BODY_LIMIT\)/],
    [path.join(ctx.dir, 'missing.jpg'), /missing\.jpg: no such file/],
  ];
  const rss0 = process.memoryUsage().rss;
  for (const [file, expected] of cases) {
    const result = await run([file, '--direct']);
    assert.is(result.code, 1, file);
    assert.equal(result.out, [], file);
    assert.is(result.err.length, 1, `${file}: ${result.err.join(' | ')}`);
    assert.match(result.err[0], expected);
    assert.ok(result.ms < 2000, `${file}: refused in ${Math.round(result.ms)} ms`);
  }
  const grown = (process.memoryUsage().rss - rss0) / 1024 / 1024;
  assert.ok(grown < 50, `RSS grew by ${Math.round(grown)} MB`);
  // The limit follows the function's setting.
  const small = await run([empty.replace('empty', 'small'), '--direct'], { KLASSIFY_BODY_LIMIT: '1024' });
  assert.match(small.err[0], /no such file/);
  await writeFile(path.join(ctx.dir, 'k.jpg'), Buffer.alloc(2000, 1));
  const over = await run([path.join(ctx.dir, 'k.jpg'), '--direct'], { KLASSIFY_BODY_LIMIT: '1024' });
  assert.match(over.err[0], /is 2000 bytes; the function takes at most 1024/);
});

refusals('arguments: an empty --subject, a bad --broker, no file, an unknown flag', async () => {
  for (const [args, expected] of [
    [['x.jpg', '--subject', ''], /--subject is empty/],
    [['x.jpg', '--subject', '   '], /--subject is empty/],
    [['x.jpg', '--subject', 'é'.repeat(200)], /takes 1200 characters once percent-encoded; the function takes at most 1024/],
    [[], /^usage: npm run emit/],
    [['x.jpg', '--bogus'], /Unknown option '--bogus'/],
    [['x.jpg', '--direct', '--broker', 'http://b'], /--broker and --direct are exclusive/],
  ] as Array<[string[], RegExp]>) {
    const result = await run(args);
    assert.is(result.code, 2, args.join(' '));
    assert.match(result.err[0], expected);
  }
});

refusals('the command line: --subject "" is one line and exit 2, no stack trace', async () => {
  const child = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'scripts/emit.ts', 'x.jpg', '--subject', ''], { cwd: ROOT, timeout: 30_000 }).then(
    () => ({ code: 0, stderr: '' }),
    (error: { code: number; stderr: string }) => error,
  );
  assert.is(child.code, 2);
  assert.is(child.stderr.trim().split('\n').length, 1, child.stderr);
  assert.not.match(child.stderr, /\n\s+at /);
});
refusals.run();

// ---------------------------------------------------------------------------------------
const outcomes = suite<Ctx>('emit: says what became of the event');
outcomes.before(async (ctx) => {
  ctx.dir = await mkdtemp(path.join(os.tmpdir(), 'klassify-emit-'));
  ctx.image = path.join(ctx.dir, 'cat photo.jpg');
  await writeFile(ctx.image, Buffer.alloc(3000, 7));
  ctx.fn = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => ctx.answer(res));
  });
  await new Promise<void>((resolve) => ctx.fn.listen(0, '127.0.0.1', resolve));
  ctx.fnPort = (ctx.fn.address() as AddressInfo).port;
  ctx.relayFile = path.join(ctx.dir, 'relay.json');
  // No UI: the relay's forward to the feed fails, which emit does not depend on.
  ctx.relay = createRelay({ functionUrl: `http://127.0.0.1:${ctx.fnPort}`, uiUrl: 'http://127.0.0.1:1', token: 'ui-token-0123456789abcdef', port: 0, infoFile: ctx.relayFile, attempts: 2, retryDelayMs: 10 });
  await ctx.relay.listen();
});
outcomes.after(async (ctx) => {
  await ctx.relay?.close();
  ctx.fn?.closeAllConnections();
  await new Promise((resolve) => ctx.fn?.close(resolve));
  await rm(ctx.dir, { recursive: true, force: true });
});

const replyWith = (type: string, data: unknown) => (res: http.ServerResponse) => {
  const reply = HTTP.binary(new CloudEvent({ id: 'r', type, source: '/fn', subject: 'cat%20photo.jpg', datacontenttype: 'application/json', data }));
  res.writeHead(200, reply.headers as Record<string, string>).end(reply.body as string);
};
const problem = (status: number, title: string, detail: string) => (res: http.ServerResponse) =>
  res.writeHead(status, { 'content-type': 'application/problem+json' }).end(JSON.stringify({ type: 'https://klassify.dev/problems/x', title, status, detail }));

outcomes('through the relay: classified with the top label, and where the feed is', async (ctx) => {
  ctx.answer = replyWith(CLASSIFIED, { predictions: [{ label: 'tabby', probability: 0.6234 }] });
  const result = await run([ctx.image], { KLASSIFY_RELAY_FILE: ctx.relayFile });
  assert.is(result.code, 0, result.err.join('\n'));
  assert.equal(result.out, ["classified cat photo.jpg: tabby (62.3 %), delivered by the local relay; the UI's live feed (http://127.0.0.1:1) shows it"]);
  assert.match(result.err[0], /^sending cat photo\.jpg \(3000 bytes\) as dev\.klassify\.image\.submitted id=\S+ to the local relay at http:\/\/127\.0\.0\.1:\d+\/…$/);
  assert.not.match(result.err.join(''), new RegExp(ctx.relay.ingressToken), 'the token is never printed');
});

outcomes('through the relay: rejected with the problem, dead-lettered with the answer', async (ctx) => {
  ctx.answer = replyWith(REJECTED, { title: 'Unsupported image format', status: 415, detail: 'Not an image.' });
  const rejected = await run([ctx.image, '--structured'], { KLASSIFY_RELAY_FILE: ctx.relayFile });
  assert.is(rejected.code, 1);
  assert.match(rejected.out[0], /^rejected cat photo\.jpg: Unsupported image format \(415\): Not an image\./);
  ctx.answer = problem(503, 'Server overloaded', 'The inference queue is full.');
  const dead = await run([ctx.image], { KLASSIFY_RELAY_FILE: ctx.relayFile });
  assert.is(dead.code, 1);
  assert.is(dead.out[0], 'dead-lettered cat photo.jpg after 2 attempts: the function answered Server overloaded (503): The inference queue is full.; the feed (http://127.0.0.1:1) shows a "failed" row');
});

outcomes('no relay, or a relay that has gone: what to start', async (ctx) => {
  const none = await run([ctx.image]);
  assert.is(none.code, 1);
  assert.match(none.err[0], /no local relay is running .*Start one with `npm start`, or send with --direct/);
  const stale = path.join(ctx.dir, 'stale.json');
  // A port nothing listens on: fetch refuses well-known ones such as 1.
  const port = await freePort();
  await writeFile(stale, JSON.stringify({ url: `http://127.0.0.1:${port}/0123456789abcdef0123456789abcdef`, ui: 'http://127.0.0.1:1' }));
  const gone = await run([ctx.image], { KLASSIFY_RELAY_FILE: stale });
  assert.is(gone.code, 1);
  assert.is(gone.err.at(-1), `emit: nothing listens at http://127.0.0.1:${port}/…. Is \`npm start\` still running? Start it again (it writes a fresh .cache/relay.json), or send with --direct.`);
});

outcomes('--direct: the function\'s reply, or its problem; --broker: accepted or not', async (ctx) => {
  ctx.answer = replyWith(CLASSIFIED, { predictions: [{ label: 'tabby', probability: 0.5 }] });
  const direct = await run([ctx.image, '--direct'], { PORT: String(ctx.fnPort) });
  assert.equal([direct.code, direct.out], [0, ['classified cat photo.jpg: tabby (50.0 %) (--direct: the feed does not see it)']]);
  ctx.answer = problem(400, 'Invalid CloudEvent', 'The required attribute "id" is missing.');
  const refused = await run([ctx.image, '--direct'], { PORT: String(ctx.fnPort) });
  assert.equal([refused.code, refused.out], [1, ['refused by the classify function at http://127.0.0.1:' + ctx.fnPort + '/: Invalid CloudEvent (400): The required attribute "id" is missing.']]);
  ctx.answer = (res) => res.writeHead(202).end();
  const broker = await run([ctx.image, '--broker', `http://127.0.0.1:${ctx.fnPort}/klassify/default`]);
  assert.is(broker.code, 0);
  assert.match(broker.out[0], /^accepted by the broker at http:\/\/127\.0\.0\.1:\d+\/klassify\/default \(202\): the classify Trigger delivers it/);
  const port = await freePort();
  const nobody = await run([ctx.image, '--direct'], { PORT: String(port) });
  assert.is(nobody.err.at(-1), `emit: nothing listens at http://127.0.0.1:${port}/. Start it with \`npm start\` (or set PORT to where it listens).`);
});
outcomes.run();
