// A MODEL, not a measurement: what Knative's autoscaler (the KPA) and activator should do
// with classify pods under load, from the autoscaling settings of the classify Service and
// the per-pod throughput range in the same manifest (knative/sizing.ts). The real thing is
// measured on a cluster with `scripts/load-test.sh --knative`, whose report draws this
// model over the measurement.
//
//   node --import tsx bench/kpa-model.ts [--rps 250] [--hold 120] [--start 3] [--max-scale 5] [--out docs/perf]
//
// What it models (Knative Serving 1.22, simplified):
// - the autoscaler (pkg/autoscaler/scaling/autoscaler.go) every 2 s averages the observed
//   concurrency (requests in the pods plus those waiting in the activator) over the stable
//   window (60 s) and the panic window (10 % of it), and wants ceil(average / (target ×
//   utilisation)) pods; it panics when the panic-window want reaches the panic threshold
//   (200 %) of the ready pods, then never scales down until a stable window has passed
//   without panic; scale-up is capped at 1000 × the ready pods, scale-down at halving per
//   tick; min-scale and max-scale clamp it; from zero the activator asks for a pod at once;
// - the activator stays in the request path: with target-burst-capacity 211 (the default)
//   the excess burst capacity, ready pods × containerConcurrency − 211 − panic concurrency,
//   is negative for any pod count below ~105, so every request goes through the activator,
//   which queues what the ready pods cannot take and hands each pod at most
//   containerConcurrency at a time;
// - a request that waits in the activator for the revision's timeoutSeconds gets an error:
//   the activator's timeout handler answers 504 (pkg/http/handler/timeout.go; a 503 comes
//   only when its per-revision queue of 10 000 overflows);
// - to zero (pkg/reconciler/autoscaling/kpa/scaler.go): once a whole stable window has seen
//   no traffic the KPA wants zero pods and marks the revision inactive; it scales to zero
//   after max(scale-to-zero-grace-period 30 s, scale-to-zero-pod-retention-period). The
//   pod then takes the queue-proxy's 30 s drain to terminate (pkg/queue/sharedmain).
// A pod is ready `podStartS` seconds after it is asked for (scheduling, container start,
// model load: an assumption, not measured on a cluster). A ready pod with work serves at a
// fixed rate, run once at each end of the measured per-pod range: the low end is one pod
// held to its CPU request, which is what it gets when the node's CPUs are all busy (the
// activator, Kourier's Envoy, the queue-proxies and the load generator share them); the
// high end is one pod with its whole CPU limit.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { classifySizing, goDurationSeconds, readManifest, CLASSIFY_MANIFEST } from '../knative/sizing.ts';
import { cli } from './cli.ts';
import { lineChart } from './svg-chart.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

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
  /** The queue-proxy's drain before a pod that is scaled away is gone. */
  drainS: number;
  /** The revision's timeoutSeconds: how long a request may wait in the activator. */
  timeoutS: number;
  /** config-autoscaler target-burst-capacity (211 by default; -1: always in the path). */
  targetBurstCapacity: number;
  tickS: number;
  /** Seconds from "a pod is wanted" to "it is ready". */
  podStartS: number;
}

/** Offered load: open (requests per second arrive whatever happens) or closed (clients that send again as soon as they are answered, as hey -c does). */
export type Load = { durationS: number; rps: (t: number) => number } | { durationS: number; clients: (t: number) => number };

export interface Sample {
  t: number;
  /** Requests per second offered (open) or clients (closed). */
  offered: number;
  servedRps: number;
  /** Requests per second that waited out timeoutS in the activator. */
  timedOutRps: number;
  wanted: number;
  ready: number;
  /** Pods that exist: starting, ready, or draining after being scaled away. */
  pods: number;
  /** Requests waiting in the activator. */
  queued: number;
  panic: boolean;
  activatorInPath: boolean;
  /** Predicted latency of a request sent at t, ms (NaN when it times out). */
  latencyMs: number;
}

/**
 * Whether the activator is in the request path: the autoscaler puts it there when the
 * excess burst capacity is negative (scaling/autoscaler.go), and always with a
 * target-burst-capacity of -1.
 */
export function activatorInPath(readyPods: number, containerConcurrency: number, targetBurstCapacity: number, panicConcurrency: number): boolean {
  if (targetBurstCapacity < 0) return true;
  if (targetBurstCapacity === 0) return readyPods === 0;
  return Math.floor(readyPods * containerConcurrency - targetBurstCapacity - panicConcurrency) < 0;
}

/** The autoscaler's decision rules, one tick at a time. */
class Autoscaler {
  private readonly history: Array<{ t: number; concurrency: number }> = [];
  private panicUntil = -Infinity;
  private lastTraffic = -Infinity;
  wanted: number;
  constructor(private readonly s: KpaSettings, initialPods = 0) {
    this.wanted = Math.max(s.minScale, initialPods);
  }

  get inPanic() {
    return this.history.length > 0 && this.history.at(-1)!.t < this.panicUntil;
  }

  observe(t: number, concurrency: number) {
    this.history.push({ t, concurrency });
    while (this.history.length && this.history[0].t <= t - this.s.stableWindowS) this.history.shift();
    if (concurrency > 1e-9) this.lastTraffic = t;
    // From zero the activator asks for a pod at once, between ticks.
    if (this.wanted === 0 && concurrency > 1e-9) this.wanted = Math.max(1, this.s.minScale);
  }

  tick(t: number, ready: number) {
    const s = this.s;
    const perPod = s.target * (s.utilization / 100);
    const average = (window: number) => {
      const inWindow = this.history.filter((h) => h.t > t - window);
      return inWindow.reduce((sum, h) => sum + h.concurrency, 0) / Math.max(1, inWindow.length);
    };
    const stableWant = Math.ceil(average(s.stableWindowS) / perPod - 1e-9);
    const panicWant = Math.ceil(average((s.stableWindowS * s.panicWindowPercent) / 100) / perPod - 1e-9);
    const pods = Math.max(ready, 1);
    if (panicWant / pods >= s.panicThresholdPercent / 100) this.panicUntil = t + s.stableWindowS;
    let want = t < this.panicUntil ? Math.max(panicWant, this.wanted) : stableWant;
    want = Math.min(want, Math.ceil(s.maxScaleUpRate * pods));
    if (want < this.wanted) want = Math.max(want, Math.floor(this.wanted / s.maxScaleDownRate));
    // The stable window has seen no traffic: the revision goes inactive, and the last pod
    // stays for max(grace period, retention period) after that.
    if (want === 0 && this.wanted > 0) {
      const idle = t - this.lastTraffic;
      want = idle >= s.stableWindowS + Math.max(s.gracePeriodS, s.retentionS) ? 0 : 1;
    }
    this.wanted = Math.max(s.minScale, Math.min(s.maxScale, want));
  }
}

/** Pods from "wanted" to "ready" (podStartS), and from "scaled away" to gone (drainS). */
class Pods {
  private starting: number[] = [];
  private draining: number[] = [];
  constructor(private readonly s: KpaSettings, public ready = 0) {}

  advance(t: number, wanted: number) {
    while (this.starting.length && this.starting[0] <= t) (this.starting.shift(), this.ready++);
    this.draining = this.draining.filter((gone) => gone > t);
    const coming = this.ready + this.starting.length;
    for (let i = coming; i < wanted; i++) this.starting.push(t + this.s.podStartS);
    let drop = coming - wanted;
    while (drop > 0 && this.starting.length) (this.starting.pop(), drop--);
    for (; drop > 0 && this.ready > 0; drop--) (this.ready--, this.draining.push(t + this.s.drainS));
  }

  get total() {
    return this.ready + this.starting.length + this.draining.length;
  }
}

/**
 * Simulates `load` against pods that each serve `podRps` requests per second once they
 * have work. Open load queues what the pods cannot take in the activator, first come first
 * served, and times out what waits `timeoutS`; closed load keeps `clients` requests in
 * flight, in the pods or waiting.
 */
export function simulate(podRps: number, s: KpaSettings, load: Load, dt = 0.1, initialReady = 0): Sample[] {
  const autoscaler = new Autoscaler(s, initialReady);
  const pods = new Pods(s, initialReady);
  // Open load: the activator's queue as arrival-time buckets.
  const queue: Array<{ t: number; n: number }> = [];
  const served: Array<{ arrived: number; at: number }> = [];
  const samples: Sample[] = [];
  let nextTick = 0;
  const steps = Math.round(load.durationS / dt);
  for (let k = 0; k <= steps; k++) {
    const t = Math.round(k * dt * 1e6) / 1e6;
    pods.advance(t, autoscaler.wanted);
    const capacity = pods.ready * podRps;
    let offered: number;
    let servedRps: number;
    let timedOutRps = 0;
    let concurrency: number;
    let queued: number;
    let latencyMs: number;
    if ('rps' in load) {
      offered = load.rps(t);
      if (offered > 0) queue.push({ t, n: offered * dt });
      let expired = 0;
      while (queue.length && queue[0].t <= t - s.timeoutS + 1e-6) expired += queue.shift()!.n;
      timedOutRps = expired / dt;
      let budget = capacity * dt;
      let done = 0;
      while (budget > 1e-12 && queue.length) {
        const head = queue[0];
        const take = Math.min(head.n, budget);
        head.n -= take;
        budget -= take;
        done += take;
        if (head.n <= 1e-12) (queue.shift(), served.push({ arrived: head.t, at: t }));
      }
      servedRps = done / dt;
      queued = queue.reduce((sum, b) => sum + b.n, 0);
      // Concurrency the activator and queue-proxies report: in the pods plus waiting. With
      // random arrivals a pod busy a share ρ of the time holds ρ + ρ²/2(1−ρ) on average
      // (M/D/1), at most containerConcurrency.
      const rho = capacity > 0 ? Math.min(servedRps / capacity, 0.999) : 0;
      concurrency = pods.ready * Math.min(s.containerConcurrency, rho + (rho * rho) / (2 * (1 - rho))) + queued;
      latencyMs = NaN; // filled in below, once it is known when this second's requests are served
    } else {
      offered = load.clients(t);
      // Every client has one request in flight: at most containerConcurrency per ready pod,
      // the rest waiting in the activator. A pod with work serves at its rate.
      const inPods = Math.min(offered, pods.ready * s.containerConcurrency);
      const busyPods = Math.min(pods.ready, offered);
      servedRps = busyPods * podRps;
      queued = offered - inPods;
      concurrency = offered;
      // Little's law: each client waits clients / throughput per request.
      latencyMs = servedRps > 0 ? (offered / servedRps) * 1000 : offered > 0 ? NaN : 0;
      if (latencyMs > s.timeoutS * 1000) {
        timedOutRps = offered / s.timeoutS;
        latencyMs = NaN;
      }
    }
    autoscaler.observe(t, concurrency);
    if (t >= nextTick - 1e-9) {
      nextTick += s.tickS;
      autoscaler.tick(t, pods.ready);
    }
    samples.push({
      t: round(t), offered, servedRps: round(servedRps), timedOutRps: round(timedOutRps), wanted: autoscaler.wanted,
      ready: pods.ready, pods: pods.total, queued: round(queued), panic: autoscaler.inPanic,
      activatorInPath: activatorInPath(pods.ready, s.containerConcurrency, s.targetBurstCapacity, concurrency), latencyMs,
    });
  }
  if ('rps' in load) {
    // A request that arrived at t is served when its bucket is; it waited that long, then
    // took its own time at the pod (one request at a time through one worker).
    const servedAt = new Map(served.map((b) => [b.arrived, b.at]));
    const atPod = 1000 / podRps;
    for (const sample of samples) {
      const at = servedAt.get(sample.t);
      if (sample.offered > 0) sample.latencyMs = at === undefined ? NaN : round((at - sample.t) * 1000 + atPod);
    }
  }
  return samples;
}

const round = (n: number) => Math.round(n * 100) / 100;

/** A Go duration from an annotation, in seconds; one that cannot be read stops the model. */
function seconds(v: string): number {
  const s = goDurationSeconds(v);
  if (s === undefined) throw new Error(`cannot read the duration "${v}"`);
  return s;
}

/**
 * The KPA settings of a classify Service: its annotations, containerConcurrency and
 * timeoutSeconds, with Knative's defaults for the rest. `service` is the manifest, or what
 * scripts/load-test.sh recorded from the deployed Service.
 */
export function settingsFrom(annotations: Record<string, string>, containerConcurrency: number, timeoutS: number, podStartS = 3): KpaSettings {
  const get = (key: string, fallback: string) => annotations[`autoscaling.knative.dev/${key}`] ?? fallback;
  return {
    target: Number(get('target', '100')),
    utilization: Number(get('target-utilization-percentage', '70')),
    containerConcurrency,
    minScale: Number(get('min-scale', '0')),
    maxScale: Number(get('max-scale', '0')) || Infinity,
    stableWindowS: seconds(get('window', '60s')),
    panicWindowPercent: Number(get('panic-window-percentage', '10')),
    panicThresholdPercent: Number(get('panic-threshold-percentage', '200')),
    maxScaleUpRate: 1000,
    maxScaleDownRate: 2,
    retentionS: seconds(get('scale-to-zero-pod-retention-period', '0s')),
    gracePeriodS: 30,
    drainS: 30,
    timeoutS,
    targetBurstCapacity: Number(get('target-burst-capacity', '211')),
    tickS: 2,
    podStartS,
  };
}

/** The settings in knative/base/200-classify-service.yaml. */
export function settingsFromManifest(file = CLASSIFY_MANIFEST, podStartS = 3): KpaSettings {
  const svc = readManifest(file);
  const spec = svc.spec.template.spec;
  return settingsFrom(svc.spec.template.metadata.annotations, spec.containerConcurrency ?? 0, spec.timeoutSeconds ?? 300, podStartS);
}

export interface StepPrediction {
  concurrency: number;
  /** Mean throughput over the step, at the low and the high end of the per-pod range. */
  rps: [number, number];
  /** Mean latency over the step (Little's law), ms. */
  latencyMs: [number, number];
  /** Share of requests that would wait out the revision timeout. */
  timedOut: [number, number];
}

export interface RunPrediction {
  settings: KpaSettings;
  podRps: { low: number; high: number };
  /** Ready pods over time: seconds since t0, pods (the same at both ends in a closed loop). */
  ready: Array<[number, number]>;
  steps: StepPrediction[];
}

/**
 * The model of a stepped load test (scripts/load-test.sh: hey -c N for each step, with
 * pauses between): the steps' times are epoch seconds, t0 the first pod sample, and the
 * run starts with `initialReady` pods (the probe before the first step warms one).
 */
export function predictSteppedRun(
  steps: Array<{ concurrency: number; started: number; ended: number }>, t0: number, durationS: number,
  s: KpaSettings, podRps: { low: number; high: number }, initialReady = 0,
): RunPrediction {
  const clients = (t: number) => steps.find((st) => t + t0 >= st.started && t + t0 < st.ended)?.concurrency ?? 0;
  const load: Load = { clients, durationS };
  const low = simulate(podRps.low, s, load, 0.1, initialReady);
  const high = simulate(podRps.high, s, load, 0.1, initialReady);
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
  const over = (samples: Sample[], st: { started: number; ended: number }) => samples.filter((x) => x.t + t0 >= st.started && x.t + t0 < st.ended);
  const per = (samples: Sample[], st: { started: number; ended: number }) => {
    const inStep = over(samples, st);
    const served = mean(inStep.map((x) => x.servedRps));
    const timedOut = mean(inStep.map((x) => x.timedOutRps));
    return { rps: served, latency: mean(inStep.map((x) => x.latencyMs).filter(Number.isFinite)), timedOut: served + timedOut > 0 ? timedOut / (served + timedOut) : 0 };
  };
  return {
    settings: s,
    podRps,
    ready: high.filter((_, i) => i % 10 === 0).map((x) => [x.t, x.ready]),
    steps: steps.map((st) => {
      const [a, b] = [per(low, st), per(high, st)];
      return { concurrency: st.concurrency, rps: [round(a.rps), round(b.rps)], latencyMs: [round(a.latency), round(b.latency)], timedOut: [round(a.timedOut), round(b.timedOut)] };
    }),
  };
}

/** The model at both ends of the per-pod range. */
export function band(s: KpaSettings, load: Load, rps = classifySizing().rps): { low: Sample[]; high: Sample[] } {
  return { low: simulate(rps.low, s, load), high: simulate(rps.high, s, load) };
}

function main() {
  const { values } = cli(
    {
      options: {
        rps: { type: 'string', default: '250' },
        hold: { type: 'string', default: '120' },
        out: { type: 'string', default: path.join(ROOT, 'docs/perf') },
        start: { type: 'string', default: '3' },
        'max-scale': { type: 'string' },
      },
    },
    'node --import tsx bench/kpa-model.ts [--rps 250] [--hold 120] [--start 3] [--max-scale 5] [--out docs/perf]',
  );
  const rps = Number(values.rps);
  const hold = Number(values.hold);
  const out = path.resolve(values.out);
  const settings = settingsFromManifest(undefined, Number(values.start));
  if (values['max-scale'] !== undefined) settings.maxScale = Number(values['max-scale']);
  const sizing = classifySizing();
  const from = 10;
  const load: Load = { rps: (t) => (t >= from && t < from + hold ? rps : 0), durationS: from + hold + 480 };
  const { low, high } = band(settings, load, sizing.rps);
  const every = (samples: Sample[]) => samples.filter((_, i) => i % 5 === 0);
  mkdirSync(out, { recursive: true });
  const subtitle = `model, ${rps} req/s for ${hold} s, max-scale ${settings.maxScale}`;
  writeFileSync(path.join(out, 'kpa-model-pods.svg'), lineChart({
    title: `Pods over time (${subtitle})`,
    xLabel: 'seconds',
    yLabel: 'pods',
    series: [
      { name: 'ready pods', points: every(high).map((s) => [s.t, s.ready]) },
      { name: 'pods that exist (starting, ready, draining)', points: every(high).map((s) => [s.t, s.pods]), dashed: true },
      { name: `load ÷ one pod at ${sizing.rps.low} req/s`, points: every(low).map((s) => [s.t, s.offered / sizing.rps.low]), dashed: true },
    ],
  }));
  const busy = (samples: Sample[]) => every(samples).filter((s) => s.t >= from && s.t <= from + hold && Number.isFinite(s.latencyMs));
  writeFileSync(path.join(out, 'kpa-model-latency.svg'), lineChart({
    title: `Latency of a request sent at t (${subtitle})`,
    xLabel: 'seconds',
    yLabel: 'predicted latency, ms',
    series: [
      { name: `pods at ${sizing.rps.high} req/s (whole CPU limit)`, points: busy(high).map((s) => [s.t, s.latencyMs]) },
      { name: `pods at ${sizing.rps.low} req/s (CPU request only)`, points: busy(low).map((s) => [s.t, s.latencyMs]), dashed: true },
    ],
  }));
  console.log(JSON.stringify({ settings, podRps: sizing.rps, stepRps: rps, holdS: hold, low: summary(low, from, hold, sizing.rps.low), high: summary(high, from, hold, sizing.rps.high) }, null, 2));
}

/** What the docs quote from a run of the model of a step of `hold` seconds from `from`. */
export function summary(samples: Sample[], from: number, hold: number, podRps: number) {
  const at = (t: number) => samples.find((s) => s.t >= t)!;
  const maxPods = Math.max(...samples.map((s) => s.ready));
  const during = samples.filter((s) => s.t >= from && s.t < from + hold);
  const firstFull = during.find((s) => s.ready === maxPods);
  // The backlog has cleared once a request sent then waits no more than 100 ms in the activator.
  const cleared = during.find((s) => s.t > from + 1 && Number.isFinite(s.latencyMs) && s.latencyMs <= 1000 / podRps + 100);
  const gone = samples.find((s) => s.t > from + hold && s.pods === 0);
  const timedOut = during.reduce((sum, s) => sum + s.timedOutRps * 0.1, 0);
  const offered = during.reduce((sum, s) => sum + (s.offered > 0 ? s.offered * 0.1 : 0), 0);
  return {
    maxPods,
    allPodsReadyAfterS: firstFull ? round(firstFull.t - from) : null,
    backlogClearedAfterS: cleared ? round(cleared.t - from) : null,
    latencyMs: { first: at(from).latencyMs, after10s: at(from + 10).latencyMs, after30s: at(from + 30).latencyMs, atEnd: at(from + hold - 1).latencyMs },
    timedOutShare: offered > 0 ? round(timedOut / offered) : 0,
    activatorAlwaysInPath: samples.filter((s) => s.ready > 0).every((s) => s.activatorInPath),
    podsGoneAfterLastRequestS: gone ? round(gone.t - (from + hold)) : null,
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) main();
