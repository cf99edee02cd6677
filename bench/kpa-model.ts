// A MODEL, not a measurement: what Knative's autoscaler (the KPA) should do with classify
// pods under a step of load, fed by the one-pod curve that scripts/pod-capacity.sh
// measured and the autoscaling settings in knative/base/200-classify-service.yaml.
// The real thing is measured on a cluster with `scripts/load-test.sh --knative`.
//
//   node --import tsx bench/kpa-model.ts [--rps 250] [--hold 120] [--start 3] [--out docs/perf]
//
// What it models (Knative Serving's pkg/autoscaler/scaling/autoscaler.go, simplified):
// - every tick (2 s) the autoscaler averages the observed concurrency (requests in the
//   pods plus those queued in the activator and queue-proxies) over the stable window
//   (60 s) and the panic window (10 % of it, 6 s), and wants ceil(average / (target ×
//   utilisation)) pods;
// - it panics when the panic-window want reaches the panic threshold (200 %) of the ready
//   pods: it then follows the panic window and never scales down until a stable window has
//   passed without panic;
// - scale-up is capped at max-scale-up-rate (1000) × ready pods, scale-down at halving
//   (max-scale-down-rate 2) per tick; min-scale and max-scale clamp the result;
// - from zero, the activator asks for a pod at the first request;
// - to zero: once the stable window has seen no traffic, the last pod is kept for the
//   retention period, then drained within the scale-to-zero grace period (30 s).
// A pod is ready `start` seconds after it is asked for (scheduling, container start,
// model load; an assumption, not measured here). A ready pod serves at the measured peak
// throughput (a fluid model: no queue builds below it); a request's latency is its wait in
// the activator's queue plus the measured p50 latency at its pod's concurrency.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parse } from 'yaml';
import { lineChart } from './svg-chart.ts';
import { cli } from './cli.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface PodCurve {
  /** Measured points: requests in flight → throughput (req/s) and p50 latency (ms). */
  points: Array<{ concurrency: number; rps: number; p50Ms: number }>;
}

export interface KpaSettings {
  target: number;
  utilization: number;
  containerConcurrency: number;
  minScale: number;
  maxScale: number;
  stableWindowS: number;
  panicWindowPercent: number;
  panicThresholdPercent: number;
  maxScaleUpRate: number;
  maxScaleDownRate: number;
  retentionS: number;
  gracePeriodS: number;
  tickS: number;
  /** Seconds from "a pod is wanted" to "it is ready". */
  podStartS: number;
}

export interface Load {
  /** Offered load in requests per second as a function of time. */
  rps: (t: number) => number;
  durationS: number;
}

export interface Sample {
  t: number;
  offeredRps: number;
  servedRps: number;
  wanted: number;
  ready: number;
  queued: number;
  panic: boolean;
  /** Predicted latency of a request arriving now, ms. */
  latencyMs: number;
}

/** Peak throughput and the latency at a concurrency, interpolated on the measured curve. */
export function curveAt(curve: PodCurve, concurrency: number): { rps: number; p50Ms: number } {
  const pts = [...curve.points].sort((a, b) => a.concurrency - b.concurrency);
  const c = Math.max(pts[0].concurrency, Math.min(concurrency, pts.at(-1)!.concurrency));
  const hi = pts.findIndex((p) => p.concurrency >= c);
  const b = pts[hi];
  const a = pts[Math.max(0, hi - 1)];
  const f = b.concurrency === a.concurrency ? 0 : (c - a.concurrency) / (b.concurrency - a.concurrency);
  return { rps: a.rps + f * (b.rps - a.rps), p50Ms: a.p50Ms + f * (b.p50Ms - a.p50Ms) };
}

export function simulate(curve: PodCurve, s: KpaSettings, load: Load, dt = 0.1): Sample[] {
  const peak = Math.max(...curve.points.map((p) => p.rps));
  const perPod = s.target * (s.utilization / 100);
  const panicWindowS = (s.stableWindowS * s.panicWindowPercent) / 100;
  const history: Array<{ t: number; concurrency: number }> = [];
  const starting: number[] = []; // ready times of pods being started
  let ready = 0;
  let wanted = s.minScale;
  let queued = 0;
  let panicUntil = -Infinity;
  let lastTraffic = -Infinity;
  let zeroSince: number | undefined;
  let nextTick = 0;
  let arrived = 0;
  let done = 0;
  const cumulative: Array<{ t: number; arrived: number; done: number }> = [];
  const samples: Sample[] = [];
  const average = (t: number, window: number) => {
    const inWindow = history.filter((h) => h.t > t - window);
    return inWindow.reduce((sum, h) => sum + h.concurrency, 0) / Math.max(1, inWindow.length);
  };

  const steps = Math.round(load.durationS / dt);
  for (let k = 0; k <= steps; k++) {
    const t = Math.round(k * dt * 1e6) / 1e6;
    const offered = load.rps(t);
    if (offered > 0) lastTraffic = t;
    while (starting.length && starting[0] <= t) {
      starting.shift();
      ready++;
    }
    // Serve: ready pods at the measured peak, the rest waits in the activator/queue-proxies.
    queued += offered * dt;
    const served = Math.min(queued, ready * peak * dt);
    queued -= served;
    arrived += offered * dt;
    done += served;
    cumulative.push({ t, arrived, done });
    const servedRps = served / dt;
    // Concurrency the queue-proxies and activator report: in the pods plus waiting. With
    // random arrivals a pod busy a share ρ of the time holds ρ + ρ²/2(1−ρ) requests on
    // average (M/D/1), at most containerConcurrency.
    const rho = ready > 0 ? Math.min(servedRps / (ready * peak), 0.999) : 0;
    const inService = ready * Math.min(s.containerConcurrency, rho + (rho * rho) / (2 * (1 - rho)));
    const concurrency = inService + queued;
    history.push({ t, concurrency });
    while (history.length && history[0].t <= t - s.stableWindowS) history.shift();

    // From zero the activator asks for a pod at once, between ticks.
    if (wanted === 0 && queued > 0) wanted = 1;
    if (t >= nextTick - 1e-9) {
      nextTick += s.tickS;
      const stableWant = Math.ceil(average(t, s.stableWindowS) / perPod - 1e-9);
      const panicWant = Math.ceil(average(t, panicWindowS) / perPod - 1e-9);
      const pods = Math.max(ready, 1);
      if (panicWant / pods >= s.panicThresholdPercent / 100) panicUntil = t + s.stableWindowS;
      let want = t < panicUntil ? Math.max(panicWant, wanted) : stableWant;
      want = Math.min(want, Math.ceil(s.maxScaleUpRate * pods));
      if (want < wanted) want = Math.max(want, Math.floor(wanted / s.maxScaleDownRate));
      // To zero only after the retention period; the grace period drains the last pod.
      if (want === 0 && wanted > 0) {
        const idleFor = t - lastTraffic;
        want = idleFor >= s.stableWindowS + s.retentionS + s.gracePeriodS ? 0 : 1;
      }
      wanted = Math.max(s.minScale, Math.min(s.maxScale, want));
    }
    // Start or stop pods toward the wanted count.
    const coming = ready + starting.length;
    for (let i = coming; i < wanted; i++) starting.push(t + s.podStartS);
    if (wanted < coming) {
      let drop = coming - wanted;
      while (drop > 0 && starting.length) (starting.pop(), drop--);
      ready -= Math.min(ready, drop);
    }
    if (ready + starting.length === 0) zeroSince ??= t;
    else zeroSince = undefined;

    const perPodConcurrency = ready > 0 ? Math.min(s.containerConcurrency, Math.max(1, inService / ready)) : 1;
    samples.push({
      t: round(t), offeredRps: offered, servedRps: round(servedRps), wanted, ready, queued: round(queued),
      panic: t < panicUntil, latencyMs: curveAt(curve, perPodConcurrency).p50Ms,
    });
  }
  // First come, first served: a request that arrives when `arrived` requests have arrived
  // is served once `done` reaches that count; the wait adds to the latency at the pod.
  let j = 0;
  samples.forEach((sample, i) => {
    const { arrived: mine } = cumulative[i];
    j = Math.max(j, i);
    while (j < cumulative.length && cumulative[j].done < mine - 1e-6) j++;
    const waitS = j < cumulative.length ? cumulative[j].t - cumulative[i].t : NaN;
    sample.latencyMs = round(waitS * 1000 + sample.latencyMs);
  });
  return samples;
}

const round = (n: number) => Math.round(n * 100) / 100;

/** The settings from the classify Service's manifest, with Knative's defaults for the rest. */
export function settingsFromManifest(file = path.join(ROOT, 'knative/base/200-classify-service.yaml'), podStartS = 3): KpaSettings {
  const svc = parse(readFileSync(file, 'utf8'));
  const a: Record<string, string> = svc.spec.template.metadata.annotations;
  const get = (key: string, fallback: string) => a[`autoscaling.knative.dev/${key}`] ?? fallback;
  const seconds = (v: string) => {
    const m = /^(?:(\d+)m)?(?:(\d+)s)?$/.exec(v);
    if (!m || v === '') throw new Error(`cannot read the duration "${v}"`);
    return Number(m[1] ?? 0) * 60 + Number(m[2] ?? 0);
  };
  return {
    target: Number(get('target', '100')),
    utilization: Number(get('target-utilization-percentage', '70')),
    containerConcurrency: svc.spec.template.spec.containerConcurrency,
    minScale: Number(get('min-scale', '0')),
    maxScale: Number(get('max-scale', '0')) || Infinity,
    stableWindowS: seconds(get('window', '60s')),
    panicWindowPercent: Number(get('panic-window-percentage', '10')),
    panicThresholdPercent: Number(get('panic-threshold-percentage', '200')),
    maxScaleUpRate: 1000,
    maxScaleDownRate: 2,
    retentionS: seconds(get('scale-to-zero-pod-retention-period', '0s')),
    gracePeriodS: 30,
    tickS: 2,
    podStartS,
  };
}

/** The one-pod curve from a scripts/pod-capacity.sh results directory. */
export function curveFromResults(dir = path.join(ROOT, 'docs/perf/runs/pod-1cpu')): PodCurve {
  const results = JSON.parse(readFileSync(path.join(dir, 'results.json'), 'utf8'));
  return { points: results.steps.map((s: any) => ({ concurrency: s.concurrency, rps: s.okRps, p50Ms: s.latencyMs.p50 })) };
}

function main() {
  const { values } = cli(
    {
      options: {
        rps: { type: 'string', default: '250' },
        hold: { type: 'string', default: '120' },
        out: { type: 'string', default: path.join(ROOT, 'docs/perf') },
        start: { type: 'string', default: '3' },
        results: { type: 'string' },
      },
    },
    'node --import tsx bench/kpa-model.ts [--rps 250] [--hold 120] [--start 3] [--out docs/perf] [--results <load-test dir>]',
  );
  const rps = Number(values.rps);
  const hold = Number(values.hold);
  const out = path.resolve(values.out);
  const settings = settingsFromManifest(undefined, Number(values.start));
  const curve = curveFromResults(values.results as string);
  const from = 10;
  const load: Load = { rps: (t) => (t >= from && t < from + hold ? rps : 0), durationS: from + hold + 420 };
  const samples = simulate(curve, settings, load);
  const every = samples.filter((_, i) => i % 5 === 0);
  const peak = Math.max(...curve.points.map((p) => p.rps));
  mkdirSync(out, { recursive: true });
  const subtitle = `model, ${rps} req/s for ${hold} s`;
  writeFileSync(path.join(out, 'kpa-model-pods.svg'), lineChart({
    title: `Pods over time (${subtitle})`,
    xLabel: 'seconds',
    yLabel: 'pods / load in pods',
    series: [
      { name: 'ready pods', points: every.map((s) => [s.t, s.ready]) },
      { name: 'wanted pods', points: every.map((s) => [s.t, s.wanted]), dashed: true },
      { name: 'offered load ÷ one pod\'s peak', points: every.map((s) => [s.t, s.offeredRps / peak]), dashed: true },
    ],
  }));
  const busy = every.filter((s) => s.t <= from + 40);
  writeFileSync(path.join(out, 'kpa-model-latency.svg'), lineChart({
    title: `Latency of a request sent at t (${subtitle})`,
    xLabel: 'seconds',
    yLabel: 'predicted latency, ms',
    series: [{ name: 'wait + p50 at the pod', points: busy.filter((s) => s.offeredRps > 0).map((s) => [s.t, s.latencyMs]) }],
  }));
  const at = (t: number) => samples.find((s) => s.t >= t)!;
  const zero = samples.find((s) => s.t > from + hold && s.ready === 0 && s.wanted === 0);
  const firstFull = samples.find((s) => s.t >= from && s.ready === Math.max(...samples.map((x) => x.ready)));
  console.log(JSON.stringify({
    settings, peakRpsPerPod: peak, stepRps: rps,
    podsAtEnd: at(from + hold - 1).ready, maxPods: Math.max(...samples.map((s) => s.ready)),
    allPodsReadyAtS: firstFull ? round(firstFull.t - from) : null,
    latencyMs: { first: at(from).latencyMs, after5s: at(from + 5).latencyMs, after10s: at(from + 10).latencyMs, after30s: at(from + 30).latencyMs, steady: at(from + hold - 1).latencyMs },
    panicked: samples.some((s) => s.panic),
    zeroAfterLastRequestS: zero ? round(zero.t - (from + hold)) : null,
  }, null, 2));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) main();
