// Shared by the UI server and browser tests: one build of the page per test
// process (in a temp folder, so tests never touch dist/), configs for
// loopback servers, and a raw HTTP client that shows bytes as sent.
import { spawn } from 'node:child_process';
import http, { type IncomingHttpHeaders } from 'node:http';
import { rmSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { CloudEvent, HTTP } from 'cloudevents';
import os from 'node:os';
import path from 'node:path';
import { SUBMITTED } from '../../contracts/events.ts';
import { buildUi, type BuildResult } from '../build.ts';
import { loadConfig, type UiConfig } from '../server/config.ts';
import type { Program } from '../../test/programs.ts';

export const ROOT = path.resolve(import.meta.dirname, '..', '..');
/** The fixture photos, verified: from the mirror (KLASSIFY_MIRROR) or downloaded once into .cache. */
export { fixtures } from '../../test/support.ts';
import { pollUntil } from '../../test/wait.ts';
export { pollUntil, waitForPort, within } from '../../test/wait.ts';

/** A Chromium (Debian's, by default): the path in CHROMIUM_PATH, else `chromium` in PATH. */
export const CHROMIUM_PROGRAM: Program = {
  name: 'Chromium',
  env: 'CHROMIUM_PATH',
  candidates: ['chromium', 'chromium-browser'],
  install: 'Install it with `apt-get install -y chromium` (.ci/run does), or set CHROMIUM_PATH.',
  suite: 'ui e2e',
};
/** The flags this machine's closed network needs. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

let build: Promise<BuildResult> | undefined;

/** Builds the page once per process into a temp folder removed at exit. */
export function builtUi(): Promise<BuildResult> {
  build ??= (async () => {
    const outdir = await mkdtemp(path.join(os.tmpdir(), 'klassify-ui-'));
    // Synchronous: at 'exit' an asynchronous rm never runs, and the folder stayed behind.
    process.once('exit', () => rmSync(outdir, { recursive: true, force: true }));
    return buildUi({ outdir, server: false, logLevel: 'error' });
  })();
  return build;
}

export async function testConfig(env: Record<string, string> = {}): Promise<Readonly<UiConfig>> {
  const { publicDir } = await builtUi();
  return loadConfig({ PORT: '0', HOST: '127.0.0.1', UI_SHUTDOWN_GRACE_MS: '200', ...env }, { publicDir });
}

export { silentLogger } from '../../server-kit/log.ts';

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  text: string;
}

/** One request with node:http: no automatic decompression, exact headers. */
export function raw(
  url: string,
  { method = 'GET', headers = {}, body }: { method?: string; headers?: Record<string, string | number>; body?: Buffer | string } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const bytes = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: bytes, text: bytes.toString('utf8') });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A free loopback port (for servers that must be given one, like a spawned function). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = http.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

export interface ClassifyProcess {
  url: string;
  log(): string;
  stop(): Promise<void>;
}

/**
 * Spawns functions/classify on a free loopback port, and resolves once
 * /health/readiness says the model is loaded. The function prepares the model
 * itself (from the mirror (KLASSIFY_MIRROR), or downloaded and converted into
 * .cache/model), so this works on a clean clone without any earlier suite.
 */
export async function startClassifyFunction(env: Record<string, string> = {}, readyTimeoutMs = 300_000): Promise<ClassifyProcess> {
  const port = await freePort();
  const output: string[] = [];
  const child = spawn(process.execPath, ['--import', 'tsx', 'functions/classify/src/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', KLASSIFY_MODEL_CACHE: path.join(ROOT, '.cache/model'), KLASSIFY_WORKERS: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const keep = (chunk: Buffer) => output.push(chunk.toString());
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };

  const ready = async () => {
    if (child.exitCode !== null) throw new Error(`the classify function exited with ${child.exitCode}`);
    return raw(`${url}/health/readiness`).then((res) => res.status === 200, () => false);
  };
  try {
    await pollUntil('the classify function to be ready', ready, { timeoutMs: readyTimeoutMs, intervalMs: 250 });
  } catch (err) {
    await stop();
    throw new Error(`${(err as Error).message}:\n${output.join('').slice(-2000)}`);
  }
  return { url, log: () => output.join(''), stop };
}

/**
 * Does what the Broker does with an upload event: sends dev.klassify.image.submitted
 * to the function, then delivers the function's reply event to the UI's
 * /events/<token>. Returns the reply's CloudEvent type.
 */
export async function relayThroughFunction(fnUrl: string, uiBase: string, token: string, image: string, id: string): Promise<string> {
  const submitted = HTTP.binary(new CloudEvent({
    id,
    type: SUBMITTED,
    source: '/klassify/tests',
    subject: path.basename(image),
    datacontenttype: image.endsWith('.jpg') ? 'image/jpeg' : 'image/png',
    data: await readFile(image),
  }));
  const reply = await raw(`${fnUrl}/`, { method: 'POST', headers: submitted.headers as Record<string, string>, body: submitted.body as Buffer });
  if (reply.status !== 200) throw new Error(`function answered ${reply.status}: ${reply.text}`);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(reply.headers)) {
    if (name.startsWith('ce-') || name === 'content-type') headers[name] = String(value);
  }
  const delivered = await raw(`${uiBase}/events/${token}`, { method: 'POST', headers, body: reply.body });
  if (delivered.status !== 202) throw new Error(`UI answered ${delivered.status}: ${delivered.text}`);
  return headers['ce-type'];
}
