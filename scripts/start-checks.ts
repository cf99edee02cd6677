// What `npm start` checks before it starts anything: the values of PORT, UI_PORT, RELAY_PORT
// and HOST, and that each port is free. Every problem is one line that names the variable
// and a fix, so that two `npm start`s, or one beside another program, end in a plain
// message instead of a half-started set of servers.
import net from 'node:net';
import { envReader, type Env } from '../server-kit/config.ts';

export interface Service {
  /** The variable that sets its port. */
  variable: 'PORT' | 'UI_PORT' | 'RELAY_PORT';
  what: string;
  port: number;
}

export interface StartSettings {
  /** Where all three listen: 127.0.0.1 unless HOST says otherwise. */
  host: string;
  fn: Service;
  ui: Service;
  relay: Service;
}

const DEFAULT_HOST = '127.0.0.1';

/** Reads the settings; an invalid value is reported, never thrown. */
export function readSettings(env: Env): { settings: StartSettings; problems: string[] } {
  const read = envReader(env);
  const port = (variable: Service['variable'], what: string, fallback: number): Service =>
    ({ variable, what, port: read.int(variable, fallback, 1, 65535) });
  const settings: StartSettings = {
    host: read.host('HOST', DEFAULT_HOST),
    fn: port('PORT', 'the function', 8080),
    ui: port('UI_PORT', 'the UI', 3000),
    relay: port('RELAY_PORT', 'the relay', 8090),
  };
  let problems: string[] = [];
  try {
    read.done();
  } catch (error) {
    problems = [...(error as { problems: string[] }).problems];
  }
  return { settings, problems };
}

/** The address to reach a server bound to `host` from this machine. */
export function loopbackFor(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '::1';
  return host;
}

/** `host` as it goes in a URL. */
export const urlHost = (host: string) => (net.isIPv6(host) ? `[${host}]` : host);

/** Opens and closes a listener: undefined if the port is free, else the error's code. */
function tryListen(port: number, host: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(undefined)));
  });
}

/** Bound where the servers will bind, and on loopback too when that is every interface. */
async function portError(port: number, host: string): Promise<string | undefined> {
  const hosts = loopbackFor(host) === host ? [host] : [host, loopbackFor(host)];
  for (const where of hosts) {
    const code = await tryListen(port, where);
    if (code) return code;
  }
  return undefined;
}

/** A free port near `port` that no other service takes, to suggest. */
async function freeNear(port: number, host: string, taken: number[]): Promise<number | undefined> {
  for (let candidate = port + 1; candidate <= Math.min(port + 50, 65535); candidate += 1) {
    if (!taken.includes(candidate) && (await portError(candidate, host)) === undefined) return candidate;
  }
  return undefined;
}

/** One line per port that clashes with another of ours or cannot be opened. */
export async function portProblems(settings: StartSettings): Promise<string[]> {
  const services = [settings.fn, settings.ui, settings.relay];
  const ports = services.map((s) => s.port);
  const suggest = async (service: Service) => {
    const free = await freeNear(service.port, settings.host, ports);
    return free ? `, e.g. ${service.variable}=${free} npm start` : '';
  };
  const problems: string[] = [];
  const reported = new Set<Service>();
  for (const [i, service] of services.entries()) {
    const earlier = services.slice(0, i).find((s) => s.port === service.port);
    if (!earlier) continue;
    reported.add(service);
    problems.push(`${earlier.variable} and ${service.variable} are both ${service.port}; give ${service.what} its own port${await suggest(service)}.`);
  }
  const codes = await Promise.all(services.map((s) => portError(s.port, settings.host)));
  if (codes.some((code) => code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN')) {
    return [...problems, `HOST=${JSON.stringify(settings.host)} is not an address of this machine; leave HOST unset (${DEFAULT_HOST}), or set 0.0.0.0 for every interface.`];
  }
  for (const [i, service] of services.entries()) {
    const code = codes[i];
    if (!code || reported.has(service)) continue;
    problems.push(code === 'EADDRINUSE'
      ? `port ${service.port} (${service.variable}, ${service.what}) is in use, perhaps by another npm start; stop that program, or choose a free port${await suggest(service)}.`
      : `port ${service.port} (${service.variable}, ${service.what}) cannot be opened (${code}); choose another port${await suggest(service)}.`);
  }
  return problems;
}
