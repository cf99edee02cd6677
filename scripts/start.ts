// `npm start`: the classify function on $PORT (default 8080), the UI on $UI_PORT (3000),
// and a local relay on $RELAY_PORT (8090) that stands in for the Knative Broker:
// `npm run emit -- photo.jpg` goes to the relay, which delivers to the function and
// forwards the reply event to the UI's feed, as the Broker and Triggers do on the cluster.
//
// Fast when warm: the function and the UI server run as plain Node from dist/ (esbuild
// bundles, as in the container image), rebuilt only when their sources changed.
// SIGINT, SIGTERM and SIGHUP stop the children; this exits once they have.
// `npm start -- --exit-when-ready` prints the start-up time and stops (to measure it).
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createRelay } from './relay.ts';

// performance.now() counts from this process's launch, so "ready in" includes Node's own start-up.
const exitWhenReady = process.argv.includes('--exit-when-ready');
// Run from source (tsx) or as the bundle dist/start.mjs (scripts/start.mjs): both sit one level down.
const root = path.resolve(import.meta.dirname, '..');
const port = Number(process.env.PORT || 8080);
const uiPort = Number(process.env.UI_PORT || 3000);
const relayPort = Number(process.env.RELAY_PORT || 8090);
const hasUi = existsSync(path.join(root, 'ui/server/main.ts'));
// A fresh secret per run: only this relay can write to this UI's feed.
const token = randomBytes(24).toString('base64url');

/** A digest of every file's path, size and mtime under `dirs`: cheap, and changes on any edit. */
function fingerprint(dirs: string[]): string {
  const hash = createHash('sha256');
  const walk = (dir: string) => {
    if (!statSync(dir).isDirectory()) {
      const { size, mtimeMs } = statSync(dir);
      hash.update(`${dir}\0${size}\0${mtimeMs}\n`);
      return;
    }
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else {
        const { size, mtimeMs } = statSync(full);
        hash.update(`${full}\0${size}\0${mtimeMs}\n`);
      }
    }
  };
  for (const dir of dirs) if (existsSync(dir)) walk(dir);
  return hash.digest('hex');
}

/** Runs `build` unless the stamp says `output` was built from these very sources. */
async function buildIfChanged(name: string, sources: string[], output: string, build: () => Promise<unknown>) {
  const stamp = path.join(root, 'dist', `.${name}.stamp`);
  const digest = fingerprint(sources.map((dir) => path.join(root, dir)));
  if (existsSync(output) && existsSync(stamp) && readFileSync(stamp, 'utf8') === digest) return;
  const t0 = performance.now();
  try {
    await build();
  } catch (error) {
    // esbuild has already printed the source location; a stack trace would add nothing.
    console.error(`npm start: building ${name} failed: ${(error as Error).message.split('\n')[0]}`);
    process.exit(1);
  }
  mkdirSync(path.dirname(stamp), { recursive: true });
  writeFileSync(stamp, digest);
  console.log(`built ${name} in ${Math.round(performance.now() - t0)} ms`);
}

await buildIfChanged('classify', ['functions/classify/src', 'contracts', 'package-lock.json'], path.join(root, 'dist/classify/main.js'), async () => {
  const { build } = await import('esbuild');
  await build({
    entryPoints: ['functions/classify/src/main.ts', 'functions/classify/src/worker.ts', 'functions/classify/src/decoder-process.ts'].map((file) => path.join(root, file)),
    outdir: path.join(root, 'dist/classify'),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    splitting: true,
    sourcemap: true,
    logLevel: 'warning',
  });
});
if (hasUi) {
  await buildIfChanged('ui', ['ui/src', 'ui/server', 'contracts', 'ui/build.ts'], path.join(root, 'dist/ui/server.js'), () =>
    new Promise((resolve, reject) => {
      // ui/build.ts finds its sources beside itself, so it runs from source (tsx), not bundled.
      const child = spawn(process.execPath, ['--import', 'tsx', 'ui/build.ts'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
      child.once('error', reject);
      child.once('exit', (code) => (code === 0 ? resolve(null) : reject(new Error(`ui/build.ts exited with ${code}`))));
    }));
}

const children: ChildProcess[] = [];
let stopping = false;
let exitCode = 0;

function run(name: string, entry: string, env: Record<string, string>) {
  const child = spawn(process.execPath, ['--enable-source-maps', entry], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const prefix = (chunk: Buffer) => chunk.toString().replace(/^(?=.)/gm, `[${name}] `);
  child.stdout!.on('data', (c: Buffer) => process.stdout.write(prefix(c)));
  child.stderr!.on('data', (c: Buffer) => process.stderr.write(prefix(c)));
  child.on('exit', (code, signal) => {
    if (!stopping) {
      console.error(`[${name}] exited (${signal ?? code}); stopping the others`);
      stop('SIGTERM', code || 1);
    }
  });
  children.push(child);
}

const relay = createRelay({
  functionUrl: `http://127.0.0.1:${port}`,
  uiUrl: `http://127.0.0.1:${uiPort}`,
  token,
  port: relayPort,
  log: (line) => console.log(`[relay] ${line}`),
});

/** Passes the signal on, waits for every child to exit, then exits. */
function stop(signal: NodeJS.Signals, code = 0) {
  if (stopping) return;
  stopping = true;
  exitCode = code;
  // SIGHUP becomes SIGTERM: the children drain gracefully on SIGTERM and SIGINT only.
  const forwarded = signal === 'SIGHUP' ? 'SIGTERM' : signal;
  const running = children.filter((c) => c.exitCode === null && c.signalCode === null);
  for (const child of running) child.kill(forwarded);
  const exited = running.map((c) => new Promise((resolve) => c.once('exit', resolve)));
  // A child that ignores the signal is killed after its own shutdown grace period.
  const force = setTimeout(() => running.forEach((c) => c.kill('SIGKILL')), 15_000);
  force.unref();
  void Promise.all([...exited, relay.close()]).then(() => process.exit(exitCode));
}
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => stop(signal));

// libuv sizes its thread pool before any JavaScript runs, so it is set here, as in the
// Dockerfile: four decode threads plus two for header reads and file I/O.
run('classify', 'dist/classify/main.js', { PORT: String(port), UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE || '6' });
if (hasUi) {
  run('ui', 'dist/ui/server.js', {
    PORT: String(uiPort),
    CLASSIFY_URL: process.env.CLASSIFY_URL || `http://127.0.0.1:${port}`,
    UI_EVENTS_TOKEN: token,
  });
}
try {
  await relay.listen();
} catch (error) {
  console.error(`relay: cannot listen on 127.0.0.1:${relayPort} (${(error as Error).message}); set RELAY_PORT`);
  stop('SIGTERM', 1);
}

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

const probes = [`http://127.0.0.1:${port}/health/readiness`, ...(hasUi ? [`http://127.0.0.1:${uiPort}/health/readiness`] : [])];
const deadline = Date.now() + 300_000;
while (!stopping && Date.now() < deadline) {
  const ready = await Promise.all(probes.map(ok));
  if (ready.every(Boolean)) break;
  await new Promise((resolve) => setTimeout(resolve, 50));
}
if (!stopping) {
  const ms = Math.round(performance.now());
  console.log(hasUi
    ? `ready in ${ms} ms · UI: http://localhost:${uiPort} · function: http://localhost:${port} · relay (npm run emit): http://localhost:${relayPort}`
    : `ready in ${ms} ms · function: http://localhost:${port} · relay (npm run emit): http://localhost:${relayPort}`);
  // For measuring start-up: `npm start -- --exit-when-ready`.
  if (exitWhenReady) stop('SIGTERM');
}
