// `node --import tsx bench/hostile-http.ts`: hostile HTTP clients against a function with
// the default configuration (loopback only, bounded counts). For each attack class it
// prints how long it took, the RSS change, and what a legitimate request saw meanwhile.
// Attackers that name a client do so through X-Forwarded-For from loopback, which the
// function trusts by default, as it trusts Knative's queue-proxy.
import { execFile } from 'node:child_process';
import net from 'node:net';
import { promisify } from 'node:util';
import { fixture, scrapeMetrics, startTestService } from '../test/support.ts';
import { loadAverage } from './stats.ts';

const svc = await startTestService({ KLASSIFY_WORKERS: '1' });
const port = Number(new URL(svc.url).port);
const photo = await fixture('coffee.png');
const rssMb = () => Math.round(process.memoryUsage().rss / 1024 / 1024);

/** Sends `head` and `body` on a raw socket; resolves with the status (or "none") once closed. */
function send(head: string, body: string, opts: { destroyAfterMs?: number; trickleMs?: number } = {}): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let reply = '';
    let trickle: NodeJS.Timeout | undefined;
    const giveUp = setTimeout(() => socket.destroy(), 180_000);
    socket.on('data', (d) => (reply += d));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearInterval(trickle);
      clearTimeout(giveUp);
      resolve(reply.slice(9, 12) || 'none');
    });
    socket.write(head + body);
    if (opts.destroyAfterMs !== undefined) setTimeout(() => socket.resetAndDestroy(), opts.destroyAfterMs);
    if (opts.trickleMs) trickle = setInterval(() => socket.write('x'), opts.trickleMs);
  });
}

async function legitimate(): Promise<{ status: number; ms: number }> {
  const t0 = performance.now();
  const res = await fetch(svc.url + '/classify', { method: 'POST', body: photo, headers: { 'content-type': 'image/png' } });
  await res.arrayBuffer();
  return { status: res.status, ms: Math.round(performance.now() - t0) };
}

const inFlight = async () => (await scrapeMetrics(svc.url)).value('klassify_in_flight_requests');

const count = (statuses: string[]) => statuses.reduce<Record<string, number>>((acc, s) => ((acc[s] = (acc[s] ?? 0) + 1), acc), {});
const rows: string[][] = [];

async function attack(name: string, run: () => Promise<string[]>, during: () => Promise<string>): Promise<void> {
  const rss0 = rssMb();
  const t0 = performance.now();
  const [statuses, seen] = await Promise.all([run(), during()]);
  const seconds = ((performance.now() - t0) / 1000).toFixed(1);
  const after = await legitimate();
  rows.push([name, JSON.stringify(count(statuses)), `${seconds} s`, `${rssMb() - rss0} MB`, seen, `${after.status} in ${after.ms} ms`, String(await inFlight())]);
}

const multipart = (field: string, length: number) =>
  `POST /classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: ${length}\r\n\r\n`;
const truncatedForm = (field: string) => `--b\r\nContent-Disposition: form-data; name="${field}"; filename="a.jpg"\r\n\r\nxx`;
const rawHead = 'POST /classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\nContent-Length: 1000000\r\n\r\n';
/** The same upload from `client`, as the (trusted, loopback) proxy in front names it. */
const rawHeadFrom = (client: string) => rawHead.replace('\r\n\r\n', `\r\nX-Forwarded-For: ${client}\r\n\r\n`);

/**
 * Legitimate requests, one every 250 ms, while `busy()` is true (or until the first 200
 * with `untilServed`): their statuses and when the first was served.
 */
async function alongside(busy: () => boolean, untilServed = false, t0 = performance.now()): Promise<string> {
  const seen: number[] = [];
  let served = NaN;
  let lastRefused = NaN;
  while (busy()) {
    const r = await legitimate();
    seen.push(r.status);
    if (r.status === 200 && Number.isNaN(served)) served = performance.now() - t0;
    if (r.status !== 200) lastRefused = performance.now() - t0;
    if (untilServed && r.status === 200) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  const first = Number.isNaN(served) ? 'none served' : `first served after ${(served / 1000).toFixed(1)} s`;
  const last = untilServed || Number.isNaN(lastRefused) ? '' : `, last refused at ${(lastRefused / 1000).toFixed(1)} s`;
  return `${JSON.stringify(count(seen.map(String)))}, ${first}${last}`;
}

/** 32 uploads from one client at 1100 bytes every 250 ms, each reopened when it ends; prints the statuses. */
const RECONNECTING_UPLOADER = `
const net = require('node:net');
const [port, ms] = process.argv.slice(1).map(Number);
const end = Date.now() + ms;
const head = 'POST /classify HTTP/1.1\\r\\nHost: x\\r\\nContent-Type: image/jpeg\\r\\nContent-Length: 1000000\\r\\nX-Forwarded-For: 203.0.113.66\\r\\n\\r\\n';
const out = [];
const one = () => new Promise((resolve) => {
  const socket = net.connect(port, '127.0.0.1');
  let reply = '';
  socket.on('error', () => {});
  socket.on('data', (d) => (reply += d));
  const trickle = setInterval(() => socket.write('x'.repeat(1100)), 250);
  const stop = setTimeout(() => socket.resetAndDestroy(), Math.max(1, end - Date.now()));
  socket.on('close', () => { clearInterval(trickle); clearTimeout(stop); out.push(reply.slice(9, 12) || 'none'); resolve(); });
  socket.write(head + 'x');
});
Promise.all(Array.from({ length: 32 }, async () => { while (Date.now() < end) await one(); })).then(() => console.log(JSON.stringify(out)));
`;

const load = await loadAverage();

{
  let running = true;
  await attack(
    '200 forms ending inside a file part (120 bytes each)',
    async () => {
      const out: string[] = [];
      for (let i = 0; i < 200; i++) {
        const body = truncatedForm(i % 2 ? 'image' : 'other');
        out.push(await send(multipart('image', body.length), body));
      }
      running = false;
      return out;
    },
    () => alongside(() => running),
  );
}
{
  let running = true;
  await attack(
    '8 waves of 15 multipart and 15 raw uploads reset mid-body',
    async () => {
      // Each wave takes 30 of the 32 admission slots, leaving room for the legitimate
      // request: a slot that leaked would show as 503s.
      const out: string[] = [];
      for (let wave = 0; wave < 8; wave++) {
        const forms = Array.from({ length: 15 }, () => send(multipart('image', 1_000_000), truncatedForm('image'), { destroyAfterMs: 100 }));
        const raws = Array.from({ length: 15 }, () => send(rawHead, 'xx', { destroyAfterMs: 100 }));
        out.push(...(await Promise.all([...forms, ...raws])));
      }
      running = false;
      return out;
    },
    () => alongside(() => running),
  );
}
{
  let running = true;
  await attack(
    '32 uploads trickling 1 byte every 2 s, each from its own client',
    async () => {
      const out = await Promise.all(Array.from({ length: 32 }, (_, i) => send(rawHeadFrom(`198.51.100.${i + 1}`), 'x', { trickleMs: 2000 })));
      running = false;
      return out;
    },
    async () => {
      const began = performance.now();
      await new Promise((r) => setTimeout(r, 500)); // let the tricklers take every slot first
      return alongside(() => performance.now() < began + 60_000, true, began);
    },
  );
}

{
  // At 4.4 KB/s, above the minimum rate: only the body deadline (120 s) would end these. The
  // client opens a new upload each time one is refused or cut, for a minute. It runs in its
  // own process, so the RSS change is the function's alone.
  const ATTACK_MS = 60_000;
  const began = performance.now();
  await attack(
    '32 uploads at 4.4 KB/s from one client, reopened as soon as refused or cut, for 60 s',
    async () => {
      const { stdout } = await promisify(execFile)(process.execPath, ['-e', RECONNECTING_UPLOADER, String(port), String(ATTACK_MS)], { timeout: ATTACK_MS + 30_000, maxBuffer: 64 * 1024 * 1024 });
      return JSON.parse(stdout) as string[];
    },
    async () => {
      await new Promise((r) => setTimeout(r, 500)); // let the uploads take every place first
      return alongside(() => performance.now() < began + ATTACK_MS, false, began);
    },
  );
}

console.log(`load average before: ${load}; one worker, default limits\n`);
console.log('| Attack | Replies | Took | RSS change | Legitimate requests meanwhile | Then | In flight after |');
console.log('|---|---|--:|--:|---|---|--:|');
for (const r of rows) console.log(`| ${r.join(' | ')} |`);
await svc.shutdown();
