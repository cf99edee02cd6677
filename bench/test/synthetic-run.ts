// A synthesized `scripts/load-test.sh --knative` results directory, for testing the report
// in a browser and for its picture in the docs: no cluster has run it. "Reality" here is the
// autoscaler model itself with other numbers than the deployed Service's, so the report
// has something to show where the two part: pods that take 7 s to start instead of the
// assumed 3, a node that holds 4 pods while max-scale is 5 (the fifth stays Pending), and a
// few 503s and 504s at the top step. meta.json says it is synthesized, and the report shows
// that in a banner.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { settingsFromManifest, simulate } from '../kpa-model.ts';

const T0 = 1_800_000_000;
const LEVELS = [1, 2, 4, 8, 16, 32];
const STEP_S = 30;
const PAUSE_S = 5;

/** hey 0.1.x's text summary for a step. */
export function heyText(o: { seconds: number; ok: number; codes?: Record<string, number>; p50: number; errors?: Record<string, number> }): string {
  const codes: Record<string, number> = { 200: o.ok, ...o.codes };
  const answered = Object.values(codes).reduce((a, b) => a + b, 0);
  const pct = (k: number) => ((o.p50 * k) / 1000).toFixed(4);
  return `
Summary:
  Total:\t${o.seconds.toFixed(4)} secs
  Slowest:\t${pct(6)} secs
  Fastest:\t${pct(0.4)} secs
  Average:\t${pct(1.2)} secs
  Requests/sec:\t${(answered / o.seconds).toFixed(4)}


Latency distribution:
  10% in ${pct(0.6)} secs
  25% in ${pct(0.8)} secs
  50% in ${pct(1)} secs
  75% in ${pct(1.3)} secs
  90% in ${pct(1.7)} secs
  95% in ${pct(2.1)} secs
  99% in ${pct(3.2)} secs

Status code distribution:
${Object.entries(codes).filter(([, n]) => n > 0).map(([c, n]) => `  [${c}]\t${n} responses`).join('\n')}
${o.errors ? `\nError distribution:\n${Object.entries(o.errors).map(([m, n]) => `  [${n}]\t${m}`).join('\n')}\n` : ''}
`;
}

export function writeSyntheticRun(dir: string): void {
  mkdirSync(path.join(dir, 'steps'), { recursive: true });
  const steps = LEVELS.map((c, i) => ({ concurrency: c, started: T0 + 4 + i * (STEP_S + PAUSE_S), ended: T0 + 4 + i * (STEP_S + PAUSE_S) + STEP_S }));
  const deployed = settingsFromManifest();
  const reality = { ...deployed, podStartS: 7, maxScale: 4 };
  const end = steps.at(-1)!.ended - T0 + 60;
  const clients = (t: number) => steps.find((s) => t + T0 >= s.started && t + T0 < s.ended)?.concurrency ?? 0;
  const samples = simulate(48, reality, { clients, durationS: end }, 0.1, 1);
  const wanted = simulate(48, { ...reality, maxScale: deployed.maxScale }, { clients, durationS: end }, 0.1, 1);
  const pods = ['epoch,ready,pending,total'];
  for (let t = 0; t <= end; t += 2) {
    const i = Math.round(t / 0.1);
    const ready = samples[i].ready;
    const pending = Math.max(0, wanted[i].wanted - Math.max(samples[i].wanted, ready));
    pods.push(`${(T0 + t + 0.37).toFixed(2)},${ready},${pending},${samples[i].pods + pending}`);
  }
  writeFileSync(path.join(dir, 'pods.csv'), pods.join('\n') + '\n');
  const tsv: string[] = [];
  for (const s of steps) {
    const inStep = samples.filter((x) => x.t + T0 >= s.started && x.t + T0 < s.ended);
    const rps = inStep.reduce((a, x) => a + x.servedRps, 0) / inStep.length;
    // A little jitter, so the line is not the model's own.
    const measured = rps * (0.93 + ((s.concurrency * 7) % 5) / 50);
    const ok = Math.round(measured * STEP_S);
    const top = s.concurrency === 32;
    writeFileSync(path.join(dir, 'steps', `c${s.concurrency}.txt`), heyText({
      seconds: STEP_S + 0.0123, ok, p50: (s.concurrency / measured) * 1000 * 0.9 + 6,
      codes: top ? { 503: 37, 504: 12 } : {}, errors: top ? { 'Post "http://10.96.12.7/classify": EOF': 3 } : undefined,
    }));
    tsv.push(`${s.concurrency}\t${s.started.toFixed(2)}\t${s.ended.toFixed(2)}`);
  }
  writeFileSync(path.join(dir, 'steps.tsv'), tsv.join('\n') + '\n');
  writeFileSync(path.join(dir, 'cold-starts.csv'), 'run,seconds,status\n1,8.412,200\n2,7.905,200\n3,8.117,200\n');
  writeFileSync(path.join(dir, 'meta.json'), JSON.stringify({
    synthetic: 'Made by bench/test/synthetic-run.ts from the autoscaler model with other numbers than the deployed Service\'s (pods start in 7 s, the node holds 4 of them), to show what the report shows when reality and model part.',
    label: 'knative (synthesized)', url: 'http://10.96.12.7/classify', levels: LEVELS.join(' '), duration: `${STEP_S}s`,
    image: 'motorcycle_left-800x533-q85.jpg', imageBytes: 99248, host: 'laptop', os: 'Darwin', cpus: 8, cpu: 'Apple M2',
    loadavgBefore: '1.52 1.31 1.20', hey: '0.1.4', started: new Date(T0 * 1000).toISOString().replace(/\.\d+Z$/, 'Z'),
    service: {
      annotations: Object.fromEntries(Object.entries({ target: deployed.target, 'target-utilization-percentage': deployed.utilization, 'max-scale': deployed.maxScale, 'min-scale': 0, 'scale-to-zero-pod-retention-period': '5m' })
        .map(([k, v]) => [`autoscaling.knative.dev/${k}`, String(v)])),
      containerConcurrency: deployed.containerConcurrency, timeoutSeconds: deployed.timeoutS,
    },
  }, null, 2) + '\n');
}
