// The KPA model: steady state, panic, limits and the way to zero follow the rules it
// states, for settings and curves made up here (the real ones change with measurements).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { curveAt, settingsFromManifest, simulate, type KpaSettings, type PodCurve } from '../kpa-model.ts';

const curve: PodCurve = { points: [{ concurrency: 1, rps: 50, p50Ms: 20 }, { concurrency: 2, rps: 100, p50Ms: 20 }, { concurrency: 4, rps: 100, p50Ms: 40 }] };
const settings: KpaSettings = {
  target: 2, utilization: 70, containerConcurrency: 2, minScale: 0, maxScale: 20, stableWindowS: 60, panicWindowPercent: 10,
  panicThresholdPercent: 200, maxScaleUpRate: 1000, maxScaleDownRate: 2, retentionS: 300, gracePeriodS: 30, tickS: 2, podStartS: 3,
};
const step = (rps: number, from: number, until: number, durationS: number) => ({ rps: (t: number) => (t >= from && t < until ? rps : 0), durationS });

const model = suite('KPA model');

model('the curve is interpolated and clamped to the measured range', () => {
  assert.equal(curveAt(curve, 3), { rps: 100, p50Ms: 30 });
  assert.equal(curveAt(curve, 0.2), { rps: 50, p50Ms: 20 });
  assert.equal(curveAt(curve, 99), { rps: 100, p50Ms: 40 });
});

model('steady load settles where each pod holds target × utilisation in flight', () => {
  const samples = simulate(curve, settings, step(300, 0, 200, 200));
  const end = samples.at(-1)!;
  // 300 req/s on pods of 100: ρ per pod = 300 / (100 n); the model wants the fewest pods
  // whose M/D/1 concurrency stays within 1.4 each: n = 5 gives ρ 0.6, L 1.05.
  assert.ok(end.ready >= 4 && end.ready <= 6, `ready ${end.ready}`);
  assert.is(end.queued, 0);
  assert.ok(end.latencyMs < 30, `latency ${end.latencyMs}`);
});

model('a step from zero panics and caps at max-scale', () => {
  const samples = simulate(curve, { ...settings, maxScale: 3 }, step(1000, 5, 60, 60));
  assert.ok(samples.some((s) => s.panic));
  assert.is(Math.max(...samples.map((s) => s.ready)), 3);
  assert.ok(samples.at(-1)!.queued > 0, 'the overload queues: 3 pods serve 300 of 1000 req/s');
});

model('the last pod goes stable window + retention + grace period after the last request', () => {
  const samples = simulate(curve, settings, step(50, 0, 10, 500));
  const zero = samples.find((s) => s.t > 10 && s.ready === 0 && s.wanted === 0)!;
  assert.ok(zero, 'never reached zero');
  assert.ok(Math.abs(zero.t - 10 - (60 + 300 + 30)) <= settings.tickS, `zero at ${zero.t}`);
  const noRetention = simulate(curve, { ...settings, retentionS: 0 }, step(50, 0, 10, 500)).find((s) => s.t > 10 && s.ready === 0)!;
  assert.ok(noRetention.t < 10 + 100, `zero at ${noRetention.t}`);
});

model('a cold start costs the pod start time in latency', () => {
  const samples = simulate(curve, settings, step(10, 1, 30, 30));
  const first = samples.find((s) => s.offeredRps > 0)!;
  assert.ok(first.latencyMs >= settings.podStartS * 1000, `first request ${first.latencyMs} ms`);
});

model('settings come from the classify manifest', () => {
  const s = settingsFromManifest();
  assert.is(s.stableWindowS, 60);
  assert.is(s.retentionS, 300);
  assert.ok(s.target > 0 && s.maxScale >= 4, JSON.stringify(s));
});

model.run();
