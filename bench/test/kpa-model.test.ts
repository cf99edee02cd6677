// The KPA model: steady state, panic, the activator, timeouts and the way to zero follow
// the rules it states, for settings made up here (the real ones change with measurements).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { activatorInPath, band, settingsFrom, settingsFromManifest, simulate, summary, type KpaSettings } from '../kpa-model.ts';
import { classifySizing } from '../../knative/sizing.ts';

const settings: KpaSettings = {
  target: 2, utilization: 70, containerConcurrency: 2, minScale: 0, maxScale: 20, stableWindowS: 60, panicWindowPercent: 10,
  panicThresholdPercent: 200, maxScaleUpRate: 1000, maxScaleDownRate: 2, retentionS: 300, gracePeriodS: 30, drainS: 30,
  timeoutS: 30, targetBurstCapacity: 211, tickS: 2, podStartS: 3,
};
const step = (rps: number, from: number, until: number, durationS: number) => ({ rps: (t: number) => (t >= from && t < until ? rps : 0), durationS });

const model = suite('KPA model');

model('steady open load settles where each pod holds target × utilisation in flight', () => {
  const samples = simulate(100, settings, step(300, 0, 200, 200));
  const end = samples.filter((s) => s.offered > 0).at(-1)!;
  // 300 req/s on pods of 100: the fewest pods whose M/D/1 concurrency stays within 1.4 each.
  assert.ok(end.ready >= 4 && end.ready <= 6, `ready ${end.ready}`);
  assert.ok(end.queued < 1, `queued ${end.queued}`);
  assert.ok(end.latencyMs < 30, `latency ${end.latencyMs}`);
  assert.is(end.timedOutRps, 0);
});

model('a step from zero panics and caps at max-scale; what waits past the timeout fails', () => {
  const samples = simulate(100, { ...settings, maxScale: 3 }, step(1000, 5, 90, 90));
  assert.ok(samples.some((s) => s.panic));
  assert.is(Math.max(...samples.map((s) => s.ready)), 3);
  // 3 pods serve 300 of 1000 req/s: the backlog grows until requests wait timeoutS (first
  // come, first served: the oldest unserved request then arrived at 5 + 0.3 (t − 8) s, so
  // from t ≈ 47 s), then the activator fails them, and no request waits longer than that.
  const late = samples.filter((s) => s.t > 50 && s.t < 89);
  assert.ok(late.every((s) => s.timedOutRps > 500), 'the activator times out the excess');
  const waited = samples.filter((s) => s.offered > 0 && Number.isFinite(s.latencyMs)).map((s) => s.latencyMs);
  assert.ok(Math.max(...waited) <= settings.timeoutS * 1000 + 20, `longest wait ${Math.max(...waited)} ms`);
  assert.ok(samples.some((s) => s.offered > 0 && Number.isNaN(s.latencyMs)), 'some requests time out');
});

model('the slower end of the per-pod range clears the same burst later', () => {
  const load = step(250, 10, 130, 140);
  const fast = summary(simulate(75, { ...settings, maxScale: 5 }, load), 10, 120, 75);
  const slow = summary(simulate(55, { ...settings, maxScale: 5 }, load), 10, 120, 55);
  assert.ok(fast.backlogClearedAfterS !== null && slow.backlogClearedAfterS !== null, JSON.stringify({ fast, slow }));
  assert.ok(slow.backlogClearedAfterS! > fast.backlogClearedAfterS!, JSON.stringify({ fast, slow }));
  // 5 × 30 = 150 < 250 req/s: never clears, and once requests have waited 30 s the excess times out.
  const overloaded = summary(simulate(30, { ...settings, maxScale: 5 }, load), 10, 120, 30);
  assert.is(overloaded.backlogClearedAfterS, null);
  assert.ok(overloaded.timedOutShare > 0.05, JSON.stringify(overloaded));
});

model('the activator stays in the path below ~105 pods with target-burst-capacity 211 and containerConcurrency 2', () => {
  assert.ok(activatorInPath(5, 2, 211, 0));
  assert.ok(activatorInPath(100, 2, 211, 5));
  assert.not.ok(activatorInPath(110, 2, 211, 5));
  assert.ok(activatorInPath(1000, 2, -1, 0), '-1 keeps it in the path always');
  assert.not.ok(activatorInPath(1, 2, 0, 0), '0 takes it out once a pod is ready');
  const samples = simulate(100, settings, step(300, 0, 60, 60));
  assert.ok(samples.filter((s) => s.ready > 0).every((s) => s.activatorInPath));
});

model('the last pod is scaled away after stable window + max(grace, retention), and gone a drain later', () => {
  const s = simulate(50, settings, step(50, 0, 10, 600));
  const scaledAway = s.find((x) => x.t > 10 && x.ready === 0)!;
  const gone = s.find((x) => x.t > 10 && x.pods === 0)!;
  assert.ok(Math.abs(scaledAway.t - 10 - (60 + 300)) <= settings.tickS + 1, `scaled away at ${scaledAway.t}`);
  assert.ok(Math.abs(gone.t - scaledAway.t - settings.drainS) <= 0.2, `gone at ${gone.t}`);
  // Grace and retention combine with max(): a retention shorter than the grace period
  // still waits the grace period, it is not added to it.
  const short = simulate(50, { ...settings, retentionS: 10 }, step(50, 0, 10, 300)).find((x) => x.t > 10 && x.ready === 0)!;
  assert.ok(Math.abs(short.t - 10 - (60 + 30)) <= settings.tickS + 1, `scaled away at ${short.t}`);
});

model('a cold start costs the pod start time in latency', () => {
  const samples = simulate(100, settings, step(10, 1, 30, 30));
  const first = samples.find((s) => s.offered > 0)!;
  assert.ok(first.latencyMs >= settings.podStartS * 1000, `first request ${first.latencyMs} ms`);
});

model('closed load (hey -c N): N in flight, pods = ceil(N / 1.4) up to max-scale, latency by Little\'s law', () => {
  const clients = (n: number) => ({ clients: (t: number) => (t >= 5 ? n : 0), durationS: 120 });
  const eight = simulate(60, { ...settings, maxScale: 5 }, clients(8));
  const end = eight.at(-1)!;
  assert.is(end.ready, 5); // ceil(8 / 1.4) = 6, capped at 5
  assert.is(end.servedRps, 300);
  assert.ok(Math.abs(end.latencyMs - (8 / 300) * 1000) < 1, `latency ${end.latencyMs}`);
  const two = simulate(60, { ...settings, maxScale: 5 }, clients(2)).at(-1)!;
  assert.is(two.ready, 2);
  assert.is(two.servedRps, 120);
});

model('settings come from the classify manifest or from a deployed Service\'s annotations', () => {
  const s = settingsFromManifest();
  assert.is(s.stableWindowS, 60);
  assert.is(s.retentionS, 300);
  assert.is(s.timeoutS, 30);
  assert.is(s.targetBurstCapacity, 211);
  assert.ok(s.target > 0 && s.maxScale >= 1, JSON.stringify(s));
  const deployed = settingsFrom({ 'autoscaling.knative.dev/max-scale': '9', 'autoscaling.knative.dev/window': '2m' }, 2, 30);
  assert.is(deployed.maxScale, 9);
  assert.is(deployed.stableWindowS, 120);
});

model('the band runs the model at both ends of the manifest\'s per-pod range', () => {
  const rps = classifySizing().rps;
  const { low, high } = band(settingsFromManifest(), step(100, 5, 40, 60));
  assert.ok(Math.max(...high.map((s) => s.servedRps)) <= Math.max(...high.map((s) => s.ready)) * rps.high + 1e-6);
  assert.ok(Math.max(...low.map((s) => s.servedRps)) <= Math.max(...low.map((s) => s.ready)) * rps.low + 1e-6);
});

model.run();
