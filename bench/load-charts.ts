// The charts of a scripts/load-test.sh run, as SVG strings: throughput and latency per step,
// and pods over time. load-report.ts writes them as files, load-html.ts puts them in the
// page; on Knative both carry the autoscaler model (bench/kpa-model.ts) as a shaded band
// or a dashed line.
import type { RunPrediction } from './kpa-model.ts';
import type { PodSample, Step } from './load-types.ts';
import { lineChart, PALETTE } from './svg-chart.ts';

const suffix = (label: string) => (label ? ` (${label})` : '');

export function throughputChart(steps: Step[], label = '', prediction?: RunPrediction): string {
  return lineChart({
    title: `Throughput vs clients${suffix(label)}`,
    xLabel: 'concurrent clients (hey -c)',
    yLabel: 'requests per second',
    xScale: 'log2',
    series: [
      { name: '200 OK (measured)', points: steps.map((s) => [s.concurrency, s.okRps]) },
      { name: 'all responses, 503s and 504s included (measured)', points: steps.map((s) => [s.concurrency, s.rps]), dashed: true },
    ],
    bands: prediction ? [{ name: `model: ${prediction.podRps.low}–${prediction.podRps.high} req/s per pod`, points: prediction.steps.map((p) => [p.concurrency, p.rps[0], p.rps[1]]) }] : [],
  });
}

export function latencyChart(steps: Step[], label = '', prediction?: RunPrediction): string {
  return lineChart({
    title: `Latency vs clients${suffix(label)}`,
    xLabel: 'concurrent clients (hey -c)',
    yLabel: 'latency (ms)',
    xScale: 'log2',
    series: (['p50', 'p90', 'p99'] as const).map((p) => ({ name: `${p} (measured)`, points: steps.map((s) => [s.concurrency, s.latencyMs[p] ?? NaN] as [number, number]) })),
    bands: prediction ? [{ name: 'model: mean latency', points: prediction.steps.map((p) => [p.concurrency, Math.min(...p.latencyMs), Math.max(...p.latencyMs)]) }] : [],
  });
}

/**
 * Ready, pending and all pods over time, the model's ready pods, and the load in pods: the
 * clients divided by what the autoscaler aims to give each pod (target × utilisation; 1
 * without a model).
 */
export function podsChart(pods: PodSample[], steps: Step[], label = '', prediction?: RunPrediction, width?: number): string {
  const t0 = pods[0]?.t ?? 0;
  const perPod = prediction ? (prediction.settings.target * prediction.settings.utilization) / 100 : 1;
  const clients = steps.filter((s) => s.started).flatMap((s) => [[s.started! - t0, s.concurrency / perPod], [s.ended! - t0, s.concurrency / perPod]] as Array<[number, number]>);
  return lineChart({
    title: `Pods over time${suffix(label)}`,
    xLabel: 'seconds since the first sample',
    yLabel: 'pods',
    width,
    height: width ? 420 : undefined,
    series: [
      { name: 'ready pods (measured)', points: pods.map((p) => [p.t - t0, p.ready]), colour: PALETTE[0] },
      ...(pods.some((p) => p.pending !== undefined)
        ? [{ name: 'pending pods (measured)', points: pods.map((p) => [p.t - t0, p.pending ?? NaN] as [number, number]), colour: PALETTE[1] }]
        : []),
      { name: 'all pods (measured)', points: pods.map((p) => [p.t - t0, p.total]), colour: PALETTE[3], dashed: true },
      ...(prediction ? [{ name: 'ready pods (model)', points: prediction.ready, colour: PALETTE[6], dashed: true }] : []),
      { name: prediction ? `clients ÷ ${Math.round(perPod * 100) / 100} (the pods the load asks for, before max-scale)` : 'concurrent clients', points: clients, colour: PALETTE[4] },
    ],
  });
}
