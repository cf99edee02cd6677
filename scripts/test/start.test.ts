// `npm start` as a user runs it: function, UI and local relay; `npm run emit` reaches the
// UI's feed through the relay; SIGHUP (and SIGINT/SIGTERM) stop everything.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { CLASSIFIED } from '../../contracts/events.ts';
import { relayInfoFile } from '../relay.ts';
import { fixtures } from '../../test/support.ts';
import { freePort, raw, ROOT } from '../../ui/test/support.ts';
import { openSse, type SseStream } from '../../ui/test/sse.ts';

interface Ctx {
  start?: ChildProcess;
  output: string;
  stream?: SseStream;
  ports: { fn: number; ui: number; relay: number };
}

function exited(child: ChildProcess, timeoutMs: number): Promise<number | string | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode ?? child.signalCode);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('timeout'), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(code ?? signal);
    });
  });
}

const start = suite<Ctx>('npm start: function, UI and local relay');
start.before.each(async (ctx) => {
  ctx.output = '';
  ctx.ports = { fn: await freePort(), ui: await freePort(), relay: await freePort() };
});
start.after.each(async (ctx) => {
  ctx.stream?.close();
  if (ctx.start && (await exited(ctx.start, 0)) === null) {
    ctx.start.kill('SIGKILL');
  }
});

start('emit goes through the relay into the feed; SIGHUP stops every process', async (ctx) => {
  const env = {
    ...process.env,
    PORT: String(ctx.ports.fn),
    UI_PORT: String(ctx.ports.ui),
    RELAY_PORT: String(ctx.ports.relay),
    KLASSIFY_WORKERS: '1',
  };
  const child = spawn(process.execPath, ['scripts/start.mjs'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  ctx.start = child;
  child.stdout!.on('data', (chunk: Buffer) => (ctx.output += chunk));
  child.stderr!.on('data', (chunk: Buffer) => (ctx.output += chunk));
  const deadline = Date.now() + 180_000;
  while (!/ready in \d+ ms/.test(ctx.output)) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`npm start not ready:\n${ctx.output.slice(-2000)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const uiBase = `http://127.0.0.1:${ctx.ports.ui}`;
  assert.is(JSON.parse((await raw(`${uiBase}/config.json`)).text).eventSource, true, 'the page knows a source is wired');
  ctx.stream = await openSse(`${uiBase}/events/stream`);

  const emit = spawn(process.execPath, ['--import', 'tsx', 'scripts/emit.ts', path.join(await fixtures(), 'chelsea.png')], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let emitted = '';
  emit.stdout!.on('data', (chunk: Buffer) => (emitted += chunk));
  emit.stderr!.on('data', (chunk: Buffer) => (emitted += chunk));
  assert.is(await exited(emit, 60_000), 0, emitted);
  assert.match(emitted, /^classified chelsea\.png: .+, delivered by the local relay/m);
  // emit found the relay and its token where npm start left them, for this user only.
  assert.is(statSync(relayInfoFile(ROOT)).mode & 0o777, 0o600);

  let data;
  do {
    const frame = await ctx.stream.next(60_000);
    data = frame.data ? JSON.parse(frame.data) : undefined;
  } while (!data);
  assert.is(data.type, CLASSIFIED);
  assert.is(data.subject, 'chelsea.png');

  child.kill('SIGHUP');
  assert.is(await exited(child, 30_000), 0, ctx.output.slice(-2000));
  assert.not.ok(existsSync(relayInfoFile(ROOT)), 'the relay file goes with the relay');
  for (const port of [ctx.ports.fn, ctx.ports.ui, ctx.ports.relay]) {
    const refused = await raw(`http://127.0.0.1:${port}/health/liveness`).then(() => false, (error: NodeJS.ErrnoException) => error.code === 'ECONNREFUSED');
    assert.ok(refused, `port ${port} is closed`);
  }
});
start.run();
