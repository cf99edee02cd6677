// `node --import tsx bench/slow-clients.ts`: 32 uploads trickling 1 byte every 2 s against
// a function with the default body policy (loopback only). Prints how long a legitimate
// request, retried every 250 ms, was refused, and when the tricklers were cut.
import net from 'node:net';
import { fixture, startTestService } from '../test/support.ts';
import { loadAverage } from './stats.ts';

const TRICKLERS = 32;
const GAP_MS = 2000;
const MAX_MS = 60_000;

const svc = await startTestService({ KLASSIFY_WORKERS: '1' });
const port = Number(new URL(svc.url).port);
const sockets: net.Socket[] = [];

function trickler(): Promise<{ status: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    sockets.push(socket);
    let reply = '';
    const timer = setInterval(() => socket.write('x'), GAP_MS);
    socket.on('data', (d) => (reply += d));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearInterval(timer);
      resolve({ status: reply.slice(9, 12) || 'none', ms: performance.now() - started });
    });
    socket.write('POST /classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\nContent-Length: 1000000\r\n\r\nx');
  });
}

const load = await loadAverage();
const started = performance.now();
const tricklers = Array.from({ length: TRICKLERS }, trickler);
await new Promise((r) => setTimeout(r, 500)); // let them all be admitted
const body = await fixture('coffee.png');
const seen: Record<number, number> = {};
let servedAt = NaN;
while (performance.now() - started < MAX_MS) {
  const res = await fetch(svc.url + '/classify', { method: 'POST', body, headers: { 'content-type': 'image/png' } });
  await res.arrayBuffer();
  seen[res.status] = (seen[res.status] ?? 0) + 1;
  if (res.status === 200) {
    servedAt = performance.now() - started;
    break;
  }
  await new Promise((r) => setTimeout(r, 250));
}
const cut = await Promise.race([Promise.all(tricklers), new Promise<null>((r) => setTimeout(() => r(null), MAX_MS))]);
for (const s of sockets) s.destroy();
const statuses = cut ? [...new Set(cut.map((c) => c.status))].join(',') : 'still open';
const cutMs = cut ? Math.max(...cut.map((c) => c.ms)) : NaN;
console.log(`load average before: ${load}`);
console.log(`legitimate request first served after ${(servedAt / 1000).toFixed(1)} s; replies meanwhile: ${JSON.stringify(seen)}`);
console.log(`tricklers answered ${statuses}; the last was cut after ${(cutMs / 1000).toFixed(1)} s`);
await svc.shutdown();
