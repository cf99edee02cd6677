// `npm start` as a user runs it: function, UI and local relay; `npm run emit` reaches the
// UI's feed through the relay; a signal sent to npm's PID alone stops everything; problems
// with ports and values stop it before anything starts; an edit anywhere in a server's
// import graph is in the next start.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CLASSIFIED } from '../../contracts/events.ts';
import { copyClone } from '../../test/clone.ts';
import { fixtures } from '../../test/support.ts';
import { freePort, raw, ROOT } from '../../ui/test/support.ts';
import { openSse, type SseStream } from '../../ui/test/sse.ts';

interface Run {
  proc: ChildProcess;
  output: string;
  /** Started as a process group's leader, so that clean-up reaches whatever it left. */
  group: boolean;
}

/** A folder of this run's own, removed when the process exits. */
const RELAY_DIR = mkdtempSync(path.join(tmpdir(), 'klassify-start-'));
process.once('exit', () => rmSync(RELAY_DIR, { recursive: true, force: true }));
const RELAY_FILE = path.join(RELAY_DIR, 'relay.json');

interface Ports {
  fn: number;
  ui: number;
  relay: number;
}

const portEnv = (ports: Ports, extra: Record<string, string> = {}) => ({
  ...process.env,
  PORT: String(ports.fn),
  UI_PORT: String(ports.ui),
  RELAY_PORT: String(ports.relay),
  KLASSIFY_WORKERS: '1',
  KLASSIFY_MODEL_CACHE: path.join(ROOT, '.cache/model'),
  // Never the repository's own .cache/relay.json: a developer's `npm start` may be using it.
  KLASSIFY_RELAY_FILE: RELAY_FILE,
  npm_config_update_notifier: 'false',
  ...extra,
});

function launch(command: string, args: string[], env: NodeJS.ProcessEnv, cwd = ROOT, group = false): Run {
  const proc = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: group });
  const run: Run = { proc, output: '', group };
  proc.stdout!.on('data', (chunk: Buffer) => (run.output += chunk));
  proc.stderr!.on('data', (chunk: Buffer) => (run.output += chunk));
  return run;
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

async function ready(run: Run, timeoutMs = 180_000) {
  const deadline = Date.now() + timeoutMs;
  while (!/ready in \d+ ms/.test(run.output)) {
    if (Date.now() > deadline || run.proc.exitCode !== null) throw new Error(`npm start not ready:\n${run.output.slice(-2000)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const refused = (port: number) =>
  raw(`http://127.0.0.1:${port}/health/liveness`).then(() => false, (error: NodeJS.ErrnoException) => error.code === 'ECONNREFUSED');

/** Whether any process of the group led by `pid` is left. */
function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Stops what a test left running: SIGTERM, as a user would, so that its servers stop too.
 * For npm, the whole process group: a failed test may have left npm start's servers behind.
 */
async function reap(run?: Run) {
  if (!run) return;
  const pid = run.proc.pid!;
  const alive = () => (run.group ? groupAlive(pid) : run.proc.exitCode === null && run.proc.signalCode === null);
  const signal = (name: NodeJS.Signals) => (run.group ? process.kill(-pid, name) : run.proc.kill(name));
  if (!alive()) return;
  signal('SIGTERM');
  const deadline = Date.now() + 20_000;
  while (alive() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
  if (alive()) signal('SIGKILL');
  await exited(run.proc, 5000);
}

const start = suite<{ run?: Run; stream?: SseStream; ports: Ports }>('npm start: function, UI and local relay');
start.before.each(async (ctx) => {
  ctx.ports = { fn: await freePort(), ui: await freePort(), relay: await freePort() };
});
start.after.each(async (ctx) => {
  ctx.stream?.close();
  await reap(ctx.run);
});

start('emit goes through the relay into the feed', async (ctx) => {
  const env = portEnv(ctx.ports);
  ctx.run = launch(process.execPath, ['scripts/start.mjs'], env);
  await ready(ctx.run);
  assert.match(ctx.run.output, /listening on 127\.0\.0\.1:/, 'the function binds to loopback only');
  const uiBase = `http://127.0.0.1:${ctx.ports.ui}`;
  assert.is(JSON.parse((await raw(`${uiBase}/config.json`)).text).eventSource, true, 'the page knows a source is wired');
  ctx.stream = await openSse(`${uiBase}/events/stream`);

  const emit = launch(process.execPath, ['--import', 'tsx', 'scripts/emit.ts', path.join(await fixtures(), 'chelsea.png')], env);
  assert.is(await exited(emit.proc, 60_000), 0, emit.output);
  assert.match(emit.output, /^classified chelsea\.png: .+, delivered by the local relay/m);
  // emit found the relay and its token where npm start left them, for this user only.
  assert.is(statSync(RELAY_FILE).mode & 0o777, 0o600);

  let data;
  do {
    const frame = await ctx.stream.next(60_000);
    data = frame.data ? JSON.parse(frame.data) : undefined;
  } while (!data);
  assert.is(data.type, CLASSIFIED);
  assert.is(data.subject, 'chelsea.png');
});

// A process manager, an IDE or `kill` signals npm's PID only, not its process group.
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
  start(`${signal} to npm's PID alone leaves nothing listening within 15 s`, async (ctx) => {
    ctx.run = launch('npm', ['start'], portEnv(ctx.ports), ROOT, true);
    await ready(ctx.run);
    process.kill(ctx.run.proc.pid!, signal);
    const deadline = Date.now() + 15_000;
    const ports = [ctx.ports.fn, ctx.ports.ui, ctx.ports.relay];
    let open = ports;
    while (open.length > 0 && Date.now() < deadline) {
      open = (await Promise.all(ports.map(async (port) => ((await refused(port)) ? 0 : port)))).filter(Boolean);
      if (open.length > 0) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(open, [], `still listening 15 s after ${signal}:\n${ctx.run.output.slice(-1500)}`);
    assert.is.not(await exited(ctx.run.proc, 15_000), 'timeout', 'npm exited');
    assert.not.ok(existsSync(RELAY_FILE), 'the relay file goes with the relay');
  });
}
start.run();

// ---------------------------------------------------------------------------------------
const problems = suite<{ run?: Run; squatters: http.Server[]; ports: Ports }>('npm start: problems stop it before anything starts');
problems.before.each(async (ctx) => {
  ctx.squatters = [];
  ctx.ports = { fn: await freePort(), ui: await freePort(), relay: await freePort() };
});
problems.after.each(async (ctx) => {
  await reap(ctx.run);
  for (const server of ctx.squatters) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

/** Runs `npm start` to its end; it must end quickly, with 78, and start nothing. */
async function refusedStart(ctx: { run?: Run }, env: NodeJS.ProcessEnv): Promise<string[]> {
  ctx.run = launch(process.execPath, ['scripts/start.mjs'], env);
  assert.is(await exited(ctx.run.proc, 60_000), 78, ctx.run.output);
  assert.not.match(ctx.run.output, /ready in|\[classify\]|\[ui\]|\n\s+at /, 'nothing started, no stack trace');
  return ctx.run.output.trim().split('\n');
}

problems('bad values: one line each, naming the variable and what is valid', async (ctx) => {
  const lines = await refusedStart(ctx, portEnv(ctx.ports, { PORT: 'abc', UI_PORT: '0', RELAY_PORT: '70000', HOST: 'http://x' }));
  assert.equal(lines, [
    'npm start: HOST="http://x" is invalid; valid values: an IP address to listen on (0.0.0.0 or :: for every interface, 127.0.0.1 for this machine only) or a host name (default 127.0.0.1).',
    'npm start: PORT="abc" is invalid; valid values: an integer from 1 to 65535 (default 8080).',
    'npm start: UI_PORT="0" is invalid; valid values: an integer from 1 to 65535 (default 3000).',
    'npm start: RELAY_PORT="70000" is invalid; valid values: an integer from 1 to 65535 (default 8090).',
  ]);
});

problems('ports held by another server that answers "ready": one line each, never "ready"', async (ctx) => {
  for (const port of [ctx.ports.fn, ctx.ports.ui, ctx.ports.relay]) {
    const squatter = http.createServer((_req, res) => res.end('{"status":"ready"}'));
    await new Promise<void>((resolve) => squatter.listen(port, '127.0.0.1', resolve));
    ctx.squatters.push(squatter);
  }
  const lines = await refusedStart(ctx, portEnv(ctx.ports));
  assert.is(lines.length, 3, lines.join('\n'));
  const names = [['PORT', ctx.ports.fn], ['UI_PORT', ctx.ports.ui], ['RELAY_PORT', ctx.ports.relay]] as const;
  for (const [i, [variable, port]] of names.entries()) {
    assert.match(lines[i], new RegExp(`^npm start: port ${port} \\(${variable}, .*\\) is in use.* ${variable}=\\d+ npm start\\.$`));
  }
});

problems('two services on one port', async (ctx) => {
  const lines = await refusedStart(ctx, portEnv(ctx.ports, { UI_PORT: String(ctx.ports.fn) }));
  assert.is(lines.length, 1, lines.join('\n'));
  assert.match(lines[0], new RegExp(`^npm start: PORT and UI_PORT are both ${ctx.ports.fn}; give the UI its own port, e\\.g\\. UI_PORT=\\d+ npm start\\.$`));
});
problems.run();

// ---------------------------------------------------------------------------------------
const fresh = suite<{ dir: string; run?: Run }>('npm start: runs what is on disk');
fresh.before((ctx) => {
  ctx.dir = mkdtempSync(path.join(tmpdir(), 'klassify-start-'));
  copyClone(ctx.dir);
});
fresh.after.each((ctx) => reap(ctx.run));
fresh.after((ctx) => rmSync(ctx.dir, { recursive: true, force: true }));

fresh('an edit in server-kit/, which both servers import, is in the next start; no edit, no rebuild', async (ctx) => {
  const once = async (expectBuilt: boolean) => {
    const ports = { fn: await freePort(), ui: await freePort(), relay: await freePort() };
    ctx.run = launch(process.execPath, ['scripts/start.mjs', '--exit-when-ready'], portEnv(ports), ctx.dir);
    assert.is(await exited(ctx.run.proc, 180_000), 0, ctx.run.output.slice(-2000));
    for (const bundle of ['classify', 'ui']) assert.is(new RegExp(`^built ${bundle} in`, 'm').test(ctx.run.output), expectBuilt, `${bundle} built: ${!expectBuilt}`);
    return ctx.run.output;
  };
  await once(true);
  await once(false);
  const marker = `edited-${process.pid}-${Date.now()}`;
  appendFileSync(path.join(ctx.dir, 'server-kit/log.ts'), `\nprocess.stdout.write(${JSON.stringify(`${marker}\n`)});\n`);
  const output = await once(true);
  assert.match(output, new RegExp(`^\\[classify\\] ${marker}$`, 'm'), 'the function runs the edited code');
  assert.match(output, new RegExp(`^\\[ui\\] ${marker}$`, 'm'), 'the UI server runs the edited code');
});
fresh.run();
