// Turns a scripts/load-test.sh results directory into results.json, results.csv, SVG
// charts and report.html (bench/load-html.ts). The directory holds, per concurrency step,
// hey's text summary (steps/c<N>.txt), steps.tsv (concurrency, start and end epoch
// seconds), meta.json, and on Knative pods.csv (epoch seconds, ready, pending and all pods),
// cold-starts.csv (run, seconds, HTTP status) and, in meta.json, the deployed Service's
// autoscaling settings, from which the report draws the autoscaler model.
// Usage: node --import tsx bench/load-report.ts <results-dir> [label]
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { classifySizing, parseRpsRange } from '../knative/sizing.ts';
import { predictSteppedRun, settingsFrom, type RunPrediction } from './kpa-model.ts';
import { renderReport } from './load-html.ts';
import type { HeySummary, PodSample, Step } from './load-types.ts';
import { latencyChart, podsChart, throughputChart } from './load-charts.ts';
import { cli } from './cli.ts';

export type { HeySummary, PodSample, Step } from './load-types.ts';

/** Parses hey's default text summary (hey 0.1.x). */
export function parseHey(text: string): HeySummary {
  const num = (re: RegExp) => {
    const m = re.exec(text);
    return m ? Number(m[1]) : NaN;
  };
  const latencyMs: HeySummary['latencyMs'] = { p10: null, p25: null, p50: null, p75: null, p90: null, p95: null, p99: null };
  for (const m of text.matchAll(/^\s*(\d+)%+ in ([\d.]+) secs/gm)) {
    const key = `p${m[1]}` as keyof typeof latencyMs;
    if (key in latencyMs) latencyMs[key] = round(Number(m[2]) * 1000);
  }
  const statusCodes: Record<string, number> = {};
  for (const m of section(text, 'Status code distribution').matchAll(/\[(\d+)\]\s+(\d+) responses/g)) statusCodes[m[1]] = Number(m[2]);
  const errors: Record<string, number> = {};
  for (const m of section(text, 'Error distribution').matchAll(/\[(\d+)\]\s+(.+)/g)) errors[m[2].trim()] = Number(m[1]);
  const seconds = num(/Total:\s+([\d.]+) secs/);
  const rps = num(/Requests\/sec:\s+([\d.]+)/);
  const answered = Object.values(statusCodes).reduce((a, b) => a + b, 0);
  if (!Number.isFinite(seconds) || !Number.isFinite(rps)) throw new Error('not a hey summary: no "Total:" or "Requests/sec:" line');
  return { requests: answered, seconds, rps: round(rps), latencyMs, statusCodes, errors };
}

function section(text: string, heading: string): string {
  const start = text.indexOf(`${heading}:`);
  if (start < 0) return '';
  const rest = text.slice(start + heading.length + 1);
  const end = rest.search(/\n\s*\n(?=\S)|\n[A-Z][^\n]*:\n/);
  return end < 0 ? rest : rest.slice(0, end);
}

const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;

/**
 * The knee of the latency–throughput curve: the lowest concurrency whose good throughput
 * is within `share` of the best step's. Past it, more concurrency only adds queueing.
 */
export function findKnee(steps: Step[], share = 0.9): Step | undefined {
  const ok = steps.filter((s) => s.okRps > 0);
  if (!ok.length) return undefined;
  const best = Math.max(...ok.map((s) => s.okRps));
  return [...ok].sort((a, b) => a.concurrency - b.concurrency).find((s) => s.okRps >= share * best);
}

export function toCsv(steps: Step[]): string {
  const codes = [...new Set(steps.flatMap((s) => Object.keys(s.statusCodes)))].sort();
  const header = ['concurrency', 'requests', 'seconds', 'rps', 'ok_rps', 'p50_ms', 'p90_ms', 'p99_ms', ...codes.map((c) => `status_${c}`), 'errors'];
  const rows = steps.map((s) => [
    s.concurrency, s.requests, s.seconds, s.rps, s.okRps, s.latencyMs.p50, s.latencyMs.p90, s.latencyMs.p99,
    ...codes.map((c) => s.statusCodes[c] ?? 0),
    Object.values(s.errors).reduce((a, b) => a + b, 0),
  ]);
  return [header, ...rows].map((r) => r.map((v) => (v === null ? '' : String(v))).join(',')).join('\n') + '\n';
}

export function readSteps(dir: string): Step[] {
  const tsv = path.join(dir, 'steps.tsv');
  if (!existsSync(tsv)) throw new Error(`${tsv} not found: is ${dir} a load-test results directory?`);
  return readFileSync(tsv, 'utf8').trim().split('\n').filter(Boolean).map((line) => {
    const [c, started, ended] = line.split('\t').map(Number);
    const summary = parseHey(readFileSync(path.join(dir, 'steps', `c${c}.txt`), 'utf8'));
    const ok = summary.statusCodes['200'] ?? 0;
    return { concurrency: c, ...summary, okRps: round(ok / summary.seconds), started, ended };
  });
}

export function readPods(dir: string): PodSample[] {
  const file = path.join(dir, 'pods.csv');
  if (!existsSync(file)) return [];
  const [header, ...lines] = readFileSync(file, 'utf8').trim().split('\n');
  const columns = header.split(',');
  return lines.filter(Boolean).map((line) => {
    const row = Object.fromEntries(line.split(',').map((v, i) => [columns[i], Number(v)]));
    return { t: row.epoch, ready: row.ready, total: row.total, ...(row.pending === undefined ? {} : { pending: row.pending }) };
  });
}

export function readColdStarts(dir: string): Array<{ run: number; seconds: number; status: number }> {
  const file = path.join(dir, 'cold-starts.csv');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').trim().split('\n').slice(1).filter(Boolean).map((line) => {
    const [run, seconds, status] = line.split(',').map(Number);
    return { run, seconds, status };
  });
}

export function charts(steps: Step[], pods: PodSample[], label = '', prediction?: RunPrediction): Record<string, string> {
  return {
    'latency.svg': latencyChart(steps, label, prediction),
    'throughput.svg': throughputChart(steps, label, prediction),
    ...(pods.length ? { 'pods.svg': podsChart(pods, steps, label, prediction) } : {}),
  };
}

/**
 * The autoscaler model of a Knative run, from the Service settings load-test.sh recorded in
 * meta.json (`service`); undefined for a local run.
 */
export function predictionFor(meta: Record<string, any>, steps: Step[], pods: PodSample[]): RunPrediction | undefined {
  const svc = meta.service;
  if (!svc || typeof svc !== 'object') return undefined;
  const timed = steps.filter((s): s is Step & { started: number; ended: number } => Number.isFinite(s.started) && Number.isFinite(s.ended));
  if (!timed.length) return undefined;
  const settings = settingsFrom(svc.annotations ?? {}, Number(svc.containerConcurrency ?? 0), Number(svc.timeoutSeconds ?? 300));
  const rps = svc.podRps ? parseRpsRange(svc.podRps) : classifySizing().rps;
  const t0 = pods[0]?.t ?? timed[0].started;
  const end = Math.max(pods.at(-1)?.t ?? 0, timed.at(-1)!.ended) - t0;
  const initialReady = Number.isFinite(pods[0]?.ready) ? pods[0].ready : 1;
  return predictSteppedRun(timed, t0, end, settings, rps, initialReady);
}

function readMeta(dir: string): Record<string, any> {
  const file = path.join(dir, 'meta.json');
  if (!existsSync(file)) return {};
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file} is not valid JSON (${(err as Error).message}): the run's metadata was written wrongly`);
  }
}

export function report(dir: string, label = ''): { steps: Step[]; knee?: Step; prediction?: RunPrediction } {
  const steps = readSteps(dir);
  const pods = readPods(dir);
  const coldStarts = readColdStarts(dir);
  const knee = findKnee(steps);
  const meta = readMeta(dir);
  if (label) meta.label = label;
  const prediction = predictionFor(meta, steps, pods);
  writeFileSync(path.join(dir, 'results.json'), JSON.stringify({ meta, knee: knee?.concurrency ?? null, steps, pods, coldStarts, prediction: prediction ?? null }, null, 2) + '\n');
  writeFileSync(path.join(dir, 'results.csv'), toCsv(steps));
  for (const [name, svg] of Object.entries(charts(steps, pods, meta.label, prediction))) writeFileSync(path.join(dir, name), svg);
  writeFileSync(path.join(dir, 'report.html'), renderReport({ meta, steps, pods, coldStarts, knee, prediction }));
  return { steps, knee, prediction };
}

function printTable(steps: Step[], knee?: Step): void {
  console.log('| clients | req/s (200) | p50 ms | p90 ms | p99 ms | status codes | errors |');
  console.log('|--:|--:|--:|--:|--:|---|--:|');
  for (const s of steps) {
    const codes = Object.entries(s.statusCodes).map(([c, n]) => `${c}×${n}`).join(' ');
    const errors = Object.values(s.errors).reduce((a, b) => a + b, 0);
    const ms = (v: number | null) => (v === null ? '–' : String(v));
    console.log(`| ${s.concurrency}${s === knee ? ' (knee)' : ''} | ${s.okRps} | ${ms(s.latencyMs.p50)} | ${ms(s.latencyMs.p90)} | ${ms(s.latencyMs.p99)} | ${codes} | ${errors} |`);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const usage = 'node --import tsx bench/load-report.ts <results-dir> [label]';
  const { positionals: [dir, label] } = cli({ allowPositionals: true }, usage);
  if (!dir) {
    console.error(`usage: ${usage}`);
    process.exit(2);
  }
  const { steps, knee } = report(dir, label);
  printTable(steps, knee);
}
