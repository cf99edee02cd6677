// `npm start`: the classify function on $PORT (default 8080) and, once the UI exists, the
// UI on $UI_PORT (default 3000), from the TypeScript sources. Ctrl-C stops both.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';

const port = process.env.PORT || '8080';
const uiPort = process.env.UI_PORT || '3000';
const children: ChildProcess[] = [];

function run(name: string, entry: string, env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', entry], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const prefix = (chunk: Buffer) => chunk.toString().replace(/^(?=.)/gm, `[${name}] `);
  child.stdout!.on('data', (c: Buffer) => process.stdout.write(prefix(c)));
  child.stderr!.on('data', (c: Buffer) => process.stderr.write(prefix(c)));
  child.on('exit', (code, signal) => {
    if (!stopping) {
      console.error(`[${name}] exited (${signal ?? code}); stopping`);
      stop(code ?? 1);
    }
  });
  children.push(child);
}

let stopping = false;
function stop(code = 0) {
  stopping = true;
  for (const c of children) c.kill('SIGTERM');
  Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once('exit', r))))).then(() => process.exit(code));
}
process.on('SIGINT', () => stop(0));
process.on('SIGTERM', () => stop(0));

// libuv sizes its thread pool before any JavaScript runs, so it is set here, as in the
// Dockerfile: four decode threads plus two for header reads and file I/O.
run('classify', 'functions/classify/src/main.ts', { PORT: port, UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE || '6' });
if (existsSync('ui/server/main.ts')) {
  run('ui', 'ui/server/main.ts', { PORT: uiPort, CLASSIFY_URL: process.env.CLASSIFY_URL || `http://127.0.0.1:${port}` });
  console.log(`UI: http://localhost:${uiPort}  ·  function: http://localhost:${port}`);
} else {
  console.log(`function: http://localhost:${port}`);
}
