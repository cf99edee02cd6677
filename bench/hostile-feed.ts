// `node --import tsx bench/hostile-feed.ts`: floods against the UI's event feed and the
// local relay of `npm start`, with their default limits, on loopback. Prints, per attack,
// the answers, how long it took, the RSS change of this process (which runs the server),
// and what a real viewer and a normal request saw meanwhile.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CLASSIFIED, SUBMITTED } from '../contracts/events.ts';
import { createRelay } from '../scripts/relay.ts';
import { uploadsWhileAnswered } from '../test/uploader.ts';
import { createUiServer } from '../ui/server/app.ts';
import { raw, silentLogger, testConfig } from '../ui/test/support.ts';
import { openSse, type SseStream } from '../ui/test/sse.ts';
import { loadAverage } from './stats.ts';

const rssMb = () => Math.round(process.memoryUsage().rss / 1024 / 1024);
const count = (statuses: Array<number | null>) => statuses.reduce<Record<string, number>>((acc, s) => ((acc[String(s)] = (acc[String(s)] ?? 0) + 1), acc), {});
const rows: string[][] = [];
const load = await loadAverage();

/** Opens one stream per entry of `clients` (an X-Forwarded-For value each), in turn. */
async function feedAttack(name: string, clients: string[]): Promise<void> {
  const ui = createUiServer(await testConfig({ UI_EVENTS_TOKEN: 'bench-token-0123456789abcdef' }), silentLogger);
  const base = `http://127.0.0.1:${(await ui.listen()).port}`;
  const streams: SseStream[] = [];
  try {
    const rss0 = rssMb();
    const t0 = performance.now();
    for (const client of clients) streams.push(await openSse(`${base}/events/stream`, { 'X-Forwarded-For': client }));
    const took = ((performance.now() - t0) / 1000).toFixed(1);
    const c0 = performance.now();
    const config = await raw(`${base}/config.json`);
    const configMs = Math.round(performance.now() - c0);
    // A real viewer from elsewhere: its stream, then an event published after it joined.
    const v0 = performance.now();
    const viewer = await openSse(`${base}/events/stream`, { 'X-Forwarded-For': '203.0.113.5' });
    streams.push(viewer);
    let seen = viewer.status === 200 ? 'no event' : `refused ${viewer.status}`;
    if (viewer.status === 200) {
      ui.hub.publish({ id: 'bench', type: CLASSIFIED, source: '/bench', data: {} });
      for (;;) {
        const frame = await viewer.next(5000);
        if (frame.data && JSON.parse(frame.data).id === 'bench') {
          seen = `stream and event in ${Math.round(performance.now() - v0)} ms`;
          break;
        }
      }
    }
    const statuses = streams.slice(0, clients.length).map((s) => s.status);
    rows.push([name, JSON.stringify(count(statuses)), `${took} s`, `${rssMb() - rss0} MB`, seen, `${config.status} in ${configMs} ms`, `${ui.hub.clients} open, ${ui.hub.evicted} evicted`]);
  } finally {
    for (const stream of streams) stream.close();
    await ui.close();
  }
}

const times = (n: number, each: number, address: (i: number) => string) => Array.from({ length: n * each }, (_, i) => address(Math.floor(i / each) + 1));
await feedAttack('SSE: 34 addresses in one IPv4 /24 × 6 streams', times(34, 6, (i) => `198.51.100.${i}`));
await feedAttack('SSE: 34 addresses in 34 IPv4 /24s × 6 streams', times(34, 6, (i) => `10.${i}.0.1`));
await feedAttack('SSE: 34 IPv6 /64s in one /48 × 6 streams', times(34, 6, (i) => `2001:db8:0:${i.toString(16)}::1`));
await feedAttack('SSE: one client opening 300 tabs', times(1, 300, () => '198.51.100.9'));

/** 16 events of 15 MiB at once against the relay (its function holds every delivery). */
async function relayAttack(chunked: boolean): Promise<void> {
  const held: http.ServerResponse[] = [];
  let holding = true;
  const fn = http.createServer((req, res) => void req.resume().once('end', () => (holding ? held.push(res) : res.writeHead(200).end())));
  await new Promise<void>((resolve) => fn.listen(0, '127.0.0.1', resolve));
  const fnPort = (fn.address() as AddressInfo).port;
  const relay = createRelay({ functionUrl: `http://127.0.0.1:${fnPort}`, uiUrl: 'http://127.0.0.1:9', token: 'bench-token-0123456789abcdef', port: 0, attempts: 1 });
  await relay.listen();
  try {
    const { port, pathname } = new URL(relay.url);
    const rss0 = rssMb();
    const t0 = performance.now();
    const headers = { 'ce-specversion': '1.0', 'ce-id': 'big', 'ce-source': '/bench', 'ce-type': SUBMITTED };
    const statuses = await uploadsWhileAnswered({ port, path: pathname, bytes: 15 * 1024 * 1024, chunked, count: 16, parallel: true, headers });
    const took = ((performance.now() - t0) / 1000).toFixed(1);
    const peak = Math.round(relay.held.peakBytes / 1024 / 1024);
    rows.push([`relay: 16 events of 15 MiB at once, ${chunked ? 'chunked' : 'declared'}`, JSON.stringify(count(statuses)), `${took} s`, `${rssMb() - rss0} MB`, '–', '–', `peak held ${peak} MiB`]);
  } finally {
    holding = false;
    for (const res of held.splice(0)) res.writeHead(200).end();
    await relay.idle();
    await relay.close();
    fn.closeAllConnections();
    await new Promise((resolve) => fn.close(resolve));
  }
}
await relayAttack(false);
await relayAttack(true);

console.log(`load average before: ${load}; default limits (200 streams, 6 per client; relay 8 events, 48 MiB)\n`);
console.log('| Attack | Answers | Took | RSS change | A real viewer from elsewhere | /config.json meanwhile | After |');
console.log('|---|---|--:|--:|---|---|---|');
for (const r of rows) console.log(`| ${r.join(' | ')} |`);
