// Floods of event streams against the real UI server on loopback, through a trusted proxy
// (X-Forwarded-For from a loopback peer, as Knative's queue-proxy sends it). Each case
// asserts the statuses, how long the flood took, the RSS it added, and what a real viewer
// and a normal request saw meanwhile.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CLASSIFIED } from '../../../contracts/events.ts';
import { createUiServer, type UiServer } from '../../server/app.ts';
import { raw, silentLogger, testConfig } from '../support.ts';
import { openSse, type SseStream } from '../sse.ts';

interface Ctx {
  ui: UiServer;
  base: string;
  streams: SseStream[];
}

/** Generous: the server runs in this process on a shared machine. */
const FLOOD_MS = 30_000;
const RSS_BOUND_MB = 100;
const rssMb = () => process.memoryUsage().rss / 1024 / 1024;

function floodSuite(name: string, env: Record<string, string> = {}) {
  const s = suite<Ctx>(name);
  s.before.each(async (ctx) => {
    // Heartbeats every 5 s: 200 streams at the tests' usual 50 ms would only load the machine.
    ctx.ui = createUiServer(await testConfig({ UI_SSE_HEARTBEAT_MS: '5000', ...env }), silentLogger);
    ctx.base = `http://127.0.0.1:${(await ctx.ui.listen()).port}`;
    ctx.streams = [];
  });
  s.after.each(async (ctx) => {
    for (const stream of ctx.streams.splice(0)) stream.close();
    await ctx.ui?.close();
  });
  return s;
}

/** Opens a stream as the client `forwardedFor` names (behind the loopback proxy); 200 or the refusal. */
async function open(ctx: Ctx, forwardedFor: string): Promise<number> {
  const stream = await openSse(`${ctx.base}/events/stream`, { 'X-Forwarded-For': forwardedFor });
  ctx.streams.push(stream);
  return stream.status;
}

/** Opens `perClient` streams for each client, in turn; returns the statuses counted. */
async function flood(ctx: Ctx, clients: string[], perClient: number): Promise<Record<number, number>> {
  const counts: Record<number, number> = {};
  for (const client of clients) {
    for (let i = 0; i < perClient; i += 1) {
      const status = await open(ctx, client);
      counts[status] = (counts[status] ?? 0) + 1;
    }
  }
  return counts;
}

/** A real viewer: gets a stream, and then an event published after it joined. */
async function assertRealViewer(ctx: Ctx, forwardedFor: string, label: string): Promise<void> {
  const viewer = await openSse(`${ctx.base}/events/stream`, { 'X-Forwarded-For': forwardedFor });
  ctx.streams.push(viewer);
  assert.is(viewer.status, 200, `${label}: the viewer gets a stream`);
  ctx.ui.hub.publish({ id: `after-${label}`, type: CLASSIFIED, source: '/s', data: {} });
  // Replayed events come first; each next() has its own deadline.
  for (;;) {
    const frame = await viewer.next(5000);
    if (frame.data !== undefined && JSON.parse(frame.data).id === `after-${label}`) return;
  }
}

async function assertNormalRequest(ctx: Ctx, label: string): Promise<void> {
  const started = performance.now();
  const res = await raw(`${ctx.base}/config.json`);
  assert.is(res.status, 200, `${label}: /config.json`);
  assert.ok(performance.now() - started < 5000, `${label}: /config.json took ${performance.now() - started} ms`);
}

const range = (n: number, address: (i: number) => string) => Array.from({ length: n }, (_, i) => address(i + 1));

// ---------------------------------------------------------------------------------------
const caps = floodSuite('hostile SSE: the total cap cannot be filled against a real viewer');

for (const [label, clients] of [
  ['34 addresses in one IPv4 /24', range(34, (i) => `198.51.100.${i}`)],
  ['34 addresses in 34 IPv4 /24s', range(34, (i) => `10.${i}.0.1`)],
  ['34 IPv6 /64s in one /48', range(34, (i) => `2001:db8:0:${i.toString(16)}::1`)],
] as const) {
  caps(`${label} × 6 streams: the cap holds, and a real viewer still gets in`, async (ctx) => {
    const rss0 = rssMb();
    const started = performance.now();
    const counts = await flood(ctx, [...clients], 6);
    const took = performance.now() - started;
    assert.ok(took < FLOOD_MS, `the flood took ${took} ms`);
    assert.is(ctx.ui.hub.clients, 200, 'the total cap holds');
    assert.is((counts[200] ?? 0) + (counts[503] ?? 0), 204, JSON.stringify(counts));
    await assertNormalRequest(ctx, label);
    const evictedBefore = ctx.ui.hub.evicted;
    await assertRealViewer(ctx, '203.0.113.5', label);
    assert.is(ctx.ui.hub.evicted, evictedBefore + 1, 'one flood stream made room');
    assert.is(ctx.ui.hub.clients, 200);
    // A second real viewer from elsewhere gets in too; the flood's reconnects do not push them out.
    await assertRealViewer(ctx, '192.0.2.77', `${label}, second viewer`);
    const back = await open(ctx, clients[0]);
    if (label.includes('one')) assert.is(back, 503, 'the range that fills the cap gets no more');
    assert.ok(rssMb() - rss0 < RSS_BOUND_MB, `RSS grew by ${Math.round(rssMb() - rss0)} MB`);
  });
}

caps('one client with many tabs, or many addresses of one IPv6 /64, holds 6 streams', async (ctx) => {
  const single = await flood(ctx, ['198.51.100.9'], 50);
  assert.equal(single, { 200: 6, 429: 44 });
  const sameHost = await flood(ctx, range(50, (i) => `2001:db8:1:2::${i.toString(16)}`), 1);
  assert.equal(sameHost, { 200: 6, 429: 44 }, 'a /64 is one client');
  await assertRealViewer(ctx, '203.0.113.5', 'beside one heavy client');
});
caps.run();

// ---------------------------------------------------------------------------------------
const proxied = floodSuite('hostile SSE: per-client caps behind a trusted proxy', { UI_TRUSTED_PROXIES: '127.0.0.0/8,::1/128,10.244.0.0/16' });

proxied('a 7th tab from one client is refused; a tab from another client behind the same proxy works', async (ctx) => {
  // Knative's path: Envoy appends the client, the activator appends Envoy, queue-proxy the activator.
  const viaKnative = (client: string) => `${client}, 10.244.0.20, 10.244.0.31`;
  for (let i = 0; i < 6; i += 1) assert.is(await open(ctx, viaKnative('198.51.100.7')), 200);
  const seventh = await raw(`${ctx.base}/events/stream`, { headers: { 'X-Forwarded-For': viaKnative('198.51.100.7') } });
  assert.is(seventh.status, 429);
  assert.is(JSON.parse(seventh.text).title, 'Too many event streams from this address');
  // Without the activator in the path: the same client, the same count.
  assert.is(await open(ctx, '198.51.100.7, 10.244.0.20'), 429);
  // A client cannot claim to be someone else by prepending.
  assert.is(await open(ctx, viaKnative('1.2.3.4, 198.51.100.7')), 429);
  // Another client, same proxies.
  await assertRealViewer(ctx, viaKnative('198.51.100.8'), 'a distinct client');
  // Malformed entries do not crash the server and are not trusted: such a request counts as
  // the last trusted hop, whose streams it shares.
  for (const bad of ['garbage', '1.2.3.4.5', '[::1', '']) {
    const status = await open(ctx, `${bad}, 10.244.0.20`);
    assert.ok([200, 429].includes(status), `${JSON.stringify(bad)}: ${status}`);
  }
  await assertNormalRequest(ctx, 'after malformed entries');
});
proxied.run();
