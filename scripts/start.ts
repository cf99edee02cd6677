// `npm start`: the classify function on $PORT (default 8080), the UI on $UI_PORT (3000),
// and a local relay on $RELAY_PORT (8090) that stands in for the Knative Broker:
// `npm run emit -- photo.jpg` goes to the relay, which delivers to the function and
// forwards the reply event to the UI's feed, as the Broker and Triggers do on the cluster.
// All three listen on 127.0.0.1 unless HOST says otherwise (HOST=0.0.0.0: every interface).
//
// Before it starts anything it checks the settings and that each port is free (start-checks.ts),
// and reports every problem at once, exiting 78. Fast when warm: the function and the UI
// server run as plain Node from dist/, built as for the image (bundles.ts) and rebuilt only
// when a file in their import graph changed. It reports "ready" only once the servers it
// started say they listen on their ports and answer their readiness probes.
// SIGINT, SIGTERM and SIGHUP stop the children, and so does its parent going away (npm killed
// by a signal it does not pass on); it exits once they have.
// `npm start -- --exit-when-ready` prints the start-up time and stops (to measure it).
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { createInterface } from 'node:readline';
import { EXIT_CANNOT_START } from '../server-kit/exit.ts';
import { newToken } from '../server-kit/token.ts';
import { staleBundles } from './bundles.ts';
import { createRelay, relayInfoFile } from './relay.ts';
import { loopbackFor, portProblems, readSettings, urlHost, type Service } from './start-checks.ts';

const say = (line: string) => console.log(line);
const complain = (line: string) => console.error(`npm start: ${line}`);

/** One HTTP GET that resolves true on a 200, false on anything else. */
function ok(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
  });
}

/** Whether a server's JSON log line says it listens on `port` (both servers log one). */
function saysListening(line: string, port: number): boolean {
  try {
    const { msg, port: logged } = JSON.parse(line) as { msg?: unknown; port?: unknown };
    return logged === port && typeof msg === 'string' && /listening/.test(msg);
  } catch {
    return false; // not a log line
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Child {
  name: string;
  proc: ChildProcess;
  service: Service;
  /** The server has logged that it listens on its port: the port is this child's. */
  bound: boolean;
}

/** Runs `npm start` in the repository at `root`; resolves never (it exits). */
export async function start(root: string, argv: string[]): Promise<void> {
  const exitWhenReady = argv.includes('--exit-when-ready');
  const { settings, problems } = readSettings(process.env);
  if (problems.length === 0) problems.push(...(await portProblems(settings)));
  if (problems.length > 0) {
    problems.forEach(complain);
    process.exit(EXIT_CANNOT_START);
  }
  const { host, fn, ui, relay: relayService } = settings;
  const local = urlHost(loopbackFor(host));

  for (const bundle of staleBundles(root)) {
    const t0 = performance.now();
    try {
      await bundle.build(root);
    } catch (error) {
      // esbuild has already printed the source location; a stack trace would add nothing.
      complain(`building ${bundle.name} failed: ${(error as Error).message.split('\n')[0]}`);
      process.exit(1);
    }
    say(`built ${bundle.name} in ${Math.round(performance.now() - t0)} ms`);
  }

  // A fresh secret per run: only this relay can write to this UI's feed.
  const token = newToken();
  const children: Child[] = [];
  let stopping = false;
  let exitCode = 0;

  const relay = createRelay({
    functionUrl: `http://${local}:${fn.port}`,
    uiUrl: `http://${local}:${ui.port}`,
    token,
    host,
    port: relayService.port,
    // Where `npm run emit` finds this relay (and its token, for this user only);
    // KLASSIFY_RELAY_FILE moves it (tests do).
    infoFile: process.env.KLASSIFY_RELAY_FILE || relayInfoFile(root),
    log: (line) => say(`[relay] ${line}`),
  });

  /** Passes the signal on, waits for every child to exit, then exits. */
  function stop(signal: NodeJS.Signals, code = 0) {
    if (stopping) return;
    stopping = true;
    exitCode = code;
    // SIGHUP becomes SIGTERM: the function drains gracefully on SIGTERM and SIGINT only.
    const forwarded = signal === 'SIGHUP' ? 'SIGTERM' : signal;
    const running = children.map((c) => c.proc).filter((c) => c.exitCode === null && c.signalCode === null);
    for (const child of running) child.kill(forwarded);
    const exited = running.map((c) => new Promise((resolve) => c.once('exit', resolve)));
    // A child that ignores the signal is killed after its own shutdown grace period.
    const force = setTimeout(() => running.forEach((c) => c.kill('SIGKILL')), 15_000);
    force.unref();
    void Promise.all([...exited, relay.close()]).then(() => process.exit(exitCode));
  }
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => stop(signal));
  // npm passes SIGINT and SIGTERM on to its script, not SIGHUP: it dies of it, and this
  // process is handed to another parent. Then nobody is left to stop us, so we stop.
  const parent = process.ppid;
  setInterval(() => process.ppid !== parent && stop('SIGHUP'), 500).unref();

  function run(name: string, entry: string, service: Service, env: Record<string, string>) {
    const proc = spawn(process.execPath, ['--enable-source-maps', entry], {
      cwd: root,
      env: { ...process.env, ...env, HOST: host, PORT: String(service.port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const child: Child = { name, proc, service, bound: false };
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      say(`[${name}] ${line}`);
      if (!child.bound && line.includes('listening')) child.bound = saysListening(line, service.port);
    });
    createInterface({ input: proc.stderr! }).on('line', (line) => console.error(`[${name}] ${line}`));
    proc.on('exit', (code, signal) => {
      if (!stopping) {
        console.error(`[${name}] exited (${signal ?? code}); stopping the others`);
        stop('SIGTERM', code || 1);
      }
    });
    children.push(child);
  }

  // libuv sizes its thread pool before any JavaScript runs, so it is set here, as in the
  // Dockerfile: four decode threads plus two for header reads and file I/O.
  run('classify', 'dist/classify/main.js', fn, { UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE || '6' });
  run('ui', 'dist/ui/server.js', ui, { CLASSIFY_URL: process.env.CLASSIFY_URL || `http://${local}:${fn.port}`, UI_EVENTS_TOKEN: token });
  try {
    await relay.listen();
  } catch (error) {
    complain(`port ${relayService.port} (RELAY_PORT, the relay) cannot be opened (${(error as NodeJS.ErrnoException).code}); choose another port.`);
    stop('SIGTERM', EXIT_CANNOT_START);
  }

  // Ready once each child holds its port (its own log says so) and answers 200: a server
  // some other program runs on that port can never make this say "ready".
  const deadline = Date.now() + 300_000;
  while (!stopping && Date.now() < deadline) {
    if (children.every((c) => c.bound)) {
      const ready = await Promise.all(children.map((c) => ok(`http://${local}:${c.service.port}/health/readiness`)));
      if (ready.every(Boolean)) break;
    }
    await sleep(50);
  }
  if (stopping) return;
  if (Date.now() >= deadline) {
    complain('the function and the UI were not ready within 5 minutes; stopping.');
    return stop('SIGTERM', 1);
  }
  const shown = loopbackFor(host) === '127.0.0.1' || host === 'localhost' ? 'localhost' : urlHost(loopbackFor(host));
  say(`ready in ${Math.round(performance.now())} ms · UI: http://${shown}:${ui.port} · function: http://${shown}:${fn.port}` +
    ` · relay (npm run emit): http://${shown}:${relayService.port}`);
  if (exitWhenReady) stop('SIGTERM');
}
