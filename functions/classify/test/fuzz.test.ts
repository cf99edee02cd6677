// Random and mutated bodies against the real server: only 2xx/4xx, the process stays up,
// and memory settles back near where it started.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { RunningService } from '../src/server.ts';
import { fixture, startTestService } from '../../../test/support.ts';

let svc: RunningService;
const fuzz = suite('fuzzed request bodies');
fuzz.before(async () => {
  svc = await startTestService({ KLASSIFY_BODY_LIMIT: String(1024 * 1024) });
});
fuzz.after(() => svc?.shutdown());

/** A small seeded PRNG (mulberry32), so a failure can be replayed. */
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function mutate(src: Uint8Array, rand: () => number): Uint8Array {
  const out = Uint8Array.from(src);
  switch (Math.floor(rand() * 4)) {
    case 0: // flip bytes, often in the header
      for (let i = 0; i < 1 + rand() * 20; i++) out[Math.floor(rand() * Math.min(out.length, rand() < 0.5 ? 64 : out.length))] ^= 1 << Math.floor(rand() * 8);
      return out;
    case 1: // truncate
      return out.subarray(0, Math.floor(rand() * out.length));
    case 2: // keep the header, randomise the rest
      for (let i = 32; i < out.length; i++) out[i] = Math.floor(rand() * 256);
      return out;
    default: // pure noise, sometimes behind a real signature
      return Uint8Array.from({ length: 1 + Math.floor(rand() * 4096) }, (_, i) => (i < 8 && rand() < 0.5 ? src[i] : Math.floor(rand() * 256)));
  }
}

fuzz('300 random and mutated images never cause a 5xx or a crash', async () => {
  const seeds = [await fixture('rocket.jpg'), await fixture('chelsea.png')];
  const small = await fixture('camera.png');
  seeds.push(small);
  const rand = rng(20261127);
  const types = ['image/jpeg', 'image/png', 'application/octet-stream', 'image/gif'];
  globalThis.gc?.();
  const rssBefore = process.memoryUsage().rss;
  const statuses = new Map<number, number>();
  for (let round = 0; round < 30; round++) {
    const batch = Array.from({ length: 10 }, async () => {
      const body = mutate(seeds[Math.floor(rand() * seeds.length)], rand) as Uint8Array<ArrayBuffer>;
      const res = await fetch(svc.url + '/classify', { method: 'POST', body, headers: { 'content-type': types[Math.floor(rand() * types.length)] } });
      await res.arrayBuffer();
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      assert.ok(res.status < 500, `status ${res.status}`);
    });
    await Promise.all(batch);
  }
  const total = [...statuses.values()].reduce((a, b) => a + b, 0);
  assert.is(total, 300);
  assert.ok((statuses.get(415) ?? 0) + (statuses.get(422) ?? 0) > 100, `mostly refused: ${[...statuses]}`);
  const health = await fetch(svc.url + '/health/readiness');
  assert.is(health.status, 200, 'still serving');
  globalThis.gc?.();
  await new Promise((r) => setTimeout(r, 200));
  const grown = (process.memoryUsage().rss - rssBefore) / 1024 / 1024;
  assert.ok(grown < 150, `RSS grew by ${grown.toFixed(0)} MB`);
});
fuzz.run();
