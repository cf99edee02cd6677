// One self-contained HTML page for a scripts/load-test.sh run: inline CSS and SVG, no
// script, nothing fetched, so it opens from disk anywhere. On Knative it puts the
// autoscaler model (bench/kpa-model.ts) beside each measurement, so a first cluster run
// shows at a glance where reality and the model part.
import type { RunPrediction } from './kpa-model.ts';
import type { PodSample, Step } from './load-types.ts';
import { latencyChart, podsChart, throughputChart } from './load-charts.ts';
import { escapeXml } from './svg-chart.ts';

export interface ReportInput {
  meta: Record<string, any>;
  steps: Step[];
  pods: PodSample[];
  coldStarts: Array<{ run: number; seconds: number; status: number }>;
  knee?: Step;
  /** The model of this run; absent for a local (non-Knative) run. */
  prediction?: RunPrediction;
}

const esc = (v: unknown) => escapeXml(String(v ?? ''));
const num = (v: number | null | undefined, digits = 1) => (v === null || v === undefined || !Number.isFinite(v) ? '–' : String(Math.round(v * 10 ** digits) / 10 ** digits));
const range = ([a, b]: [number, number], digits = 0) => (num(a, digits) === num(b, digits) ? num(a, digits) : `${num(Math.min(a, b), digits)}–${num(Math.max(a, b), digits)}`);
const STATUS_COLOURS: Record<string, string> = { '200': '#009E73', '503': '#E69F00', '504': '#D55E00', errors: '#000000' };
const statusColour = (code: string) => STATUS_COLOURS[code] ?? (code.startsWith('2') ? '#56B4E9' : '#CC79A7');

const CSS = `
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1360px; padding: 16px 24px 48px; color: #1a1a1a; }
h1 { font-size: 24px; margin: 8px 0 4px; } h2 { font-size: 19px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.meta { color: #555; margin: 0; }
.banner { background: #fff3cd; border: 1px solid #e0b100; padding: 8px 12px; margin: 12px 0; border-radius: 4px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 16px 0; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 8px 14px; min-width: 150px; }
.card b { display: block; font-size: 22px; } .card span { color: #555; font-size: 13px; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid #eee; padding: 4px 8px; text-align: right; vertical-align: middle; }
th { background: #f6f6f6; font-weight: 600; } td.codes, th.codes { text-align: left; width: 30%; }
.bar { display: flex; height: 12px; border-radius: 2px; overflow: hidden; background: #eee; margin-bottom: 2px; }
.bar i { display: block; height: 100%; }
.model { color: #555; } .differs { background: #fde8e0; } .agrees { background: #e6f4ee; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; } .charts svg { max-width: 100%; height: auto; border: 1px solid #eee; }
.legend i { display: inline-block; width: 10px; height: 10px; margin: 0 4px 0 10px; border-radius: 2px; }
ul.model-notes li { margin: 2px 0; } code { background: #f3f3f3; padding: 0 3px; border-radius: 3px; }
`;

export function renderReport(input: ReportInput): string {
  const { meta, steps, pods, coldStarts, prediction } = input;
  const title = `Load test: ${meta.label ?? 'klassify'}`;
  const parts = [
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">`,
    `<title>${esc(title)}</title><style>${CSS}</style></head><body>`,
    `<header><h1>${esc(title)}</h1>`,
    `<p class="meta">${esc(meta.started ?? '')} · ${esc(meta.url ?? '')} · ${esc(meta.host ?? '')} (${esc(meta.os ?? '')}, ${esc(meta.cpu ?? '')}, ${esc(meta.cpus ?? meta.nproc ?? '?')} CPUs, load average before ${esc(meta.loadavgBefore ?? '?')}) · hey ${esc(meta.hey ?? '?')} · ${esc(meta.image ?? '')} (${esc(meta.imageBytes ?? '?')} bytes) · steps of ${esc(meta.duration ?? '?')}</p>`,
    meta.synthetic ? `<p class="banner" id="synthetic"><b>Synthesized data.</b> ${esc(meta.synthetic)} Nothing on this page was measured on a cluster.</p>` : '',
    '</header>',
    cards(input),
    stepsTable(input),
    `<h2>Throughput and latency per step</h2><div class="charts">${throughputChart(steps, meta.label, prediction)}${latencyChart(steps, meta.label, prediction)}</div>`,
    pods.length ? podsSection(pods, steps, prediction) : '',
    coldStarts.length ? coldStartSection(coldStarts, prediction) : '',
    prediction ? modelNotes(prediction) : '<h2>Autoscaler model</h2><p class="model">Not drawn: this run did not go through Knative (run <code>scripts/load-test.sh --knative</code>).</p>',
    `<footer><h2>Files</h2><p class="meta">Beside this page: results.json (everything above), results.csv (one row per step), steps/c&lt;N&gt;.txt (hey's own summaries)${pods.length ? ', pods.csv' : ''}${coldStarts.length ? ', cold-starts.csv' : ''}, meta.json. Made by <code>scripts/load-test.sh</code> and <code>bench/load-report.ts</code>.</p></footer>`,
    '</body></html>',
  ];
  return parts.join('\n') + '\n';
}

function cards({ steps, pods, coldStarts, knee }: ReportInput): string {
  const best = steps.reduce<Step | undefined>((a, s) => (!a || s.okRps > a.okRps ? s : a), undefined);
  const total = steps.reduce((n, s) => n + s.requests + errorsOf(s), 0);
  const failed = steps.reduce((n, s) => n + (s.requests - (s.statusCodes['200'] ?? 0)) + errorsOf(s), 0);
  const finite = (xs: number[]) => xs.filter(Number.isFinite);
  const card = (value: string, label: string) => `<div class="card"><b>${esc(value)}</b><span>${esc(label)}</span></div>`;
  const readyMax = Math.max(0, ...finite(pods.map((p) => p.ready)));
  const pendingMax = Math.max(0, ...finite(pods.map((p) => p.pending ?? 0)));
  const cold = finite(coldStarts.map((c) => c.seconds)).sort((a, b) => a - b);
  return `<section class="cards" id="summary">${[
    card(`${num(best?.okRps)} req/s`, `best throughput (200 OK), at ${best?.concurrency ?? '–'} clients`),
    card(knee ? `${knee.concurrency} clients` : '–', 'knee: 90 % of the best throughput'),
    card(total ? `${num((100 * failed) / total)} %` : '–', `not 200 OK (${failed} of ${total})`),
    pods.length ? card(String(readyMax), 'most ready pods') : '',
    pods.length ? card(String(pendingMax), 'most Pending pods') : '',
    cold.length ? card(`${num(cold[Math.floor(cold.length / 2)], 2)} s`, `median cold start (${cold.length})`) : '',
  ].join('')}</section>`;
}

const errorsOf = (s: Step) => Object.values(s.errors).reduce((a, b) => a + b, 0);

/** Where the measurement falls against the model's range (a 15 % margin either side). */
function verdict(measured: number, [a, b]: [number, number]): string {
  if (!Number.isFinite(measured) || !Number.isFinite(a) || !Number.isFinite(b)) return '';
  const [lo, hi] = [Math.min(a, b), Math.max(a, b)];
  return measured < lo * 0.85 || measured > hi * 1.15 ? 'differs' : 'agrees';
}

function stepsTable({ steps, knee, prediction }: ReportInput): string {
  const head = ['clients', 'req/s (200)', ...(prediction ? ['model req/s'] : []), 'p50 ms', 'p90 ms', 'p99 ms',
    ...(prediction ? ['model mean ms'] : []), 'status codes', 'transport errors'];
  const rows = steps.map((s, i) => {
    const p = prediction?.steps[i];
    const codes = Object.entries(s.statusCodes).sort(([a], [b]) => a.localeCompare(b));
    const errors = errorsOf(s);
    const all = s.requests + errors;
    const segments = [...codes.map(([code, n]) => [code, n] as const), ...(errors ? [['errors', errors] as const] : [])]
      .map(([code, n]) => `<i style="width:${((100 * n) / Math.max(1, all)).toFixed(2)}%;background:${statusColour(code)}" title="${esc(code)}: ${n}"></i>`).join('');
    const label = codes.map(([code, n]) => `${esc(code)} × ${n}`).join(', ') + (errors ? `, errors × ${errors}` : '');
    return `<tr data-concurrency="${s.concurrency}"><td>${s.concurrency}${s === knee ? ' (knee)' : ''}</td><td class="${p ? verdict(s.okRps, p.rps) : ''}">${num(s.okRps)}</td>${
      p ? `<td class="model">${range(p.rps)}${p.timedOut[0] > 0.001 || p.timedOut[1] > 0.001 ? ` (${range([p.timedOut[0] * 100, p.timedOut[1] * 100])} % time out)` : ''}</td>` : ''
    }<td>${num(s.latencyMs.p50)}</td><td>${num(s.latencyMs.p90)}</td><td>${num(s.latencyMs.p99)}</td>${
      p ? `<td class="model">${range(p.latencyMs)}</td>` : ''
    }<td class="codes"><div class="bar">${segments}</div>${label || '–'}</td><td>${errors}</td></tr>`;
  });
  const legend = ['200', '503', '504', 'errors'].map((c) => `<i style="background:${statusColour(c)}"></i>${c}`).join('');
  return `<h2>Per step</h2><table id="steps"><thead><tr>${head.map((h) => `<th${h === 'status codes' ? ' class="codes"' : ''}>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table>
<p class="meta legend">Status codes: ${legend}. ${prediction ? 'Green cells: within 15 % of the model\'s range; red: outside it. The model\'s latency is a mean (Little\'s law), the measurement\'s a percentile.' : ''}</p>`;
}

function podsSection(pods: PodSample[], steps: Step[], prediction?: RunPrediction): string {
  const svg = podsChart(pods, steps, '', prediction, 1300);
  return `<h2>Pods over time</h2><div class="charts" id="pods">${svg}</div>
<p class="meta">Sampled every few seconds with kubectl: <i>ready</i> pods pass their readiness probe; <i>Pending</i> pods wait for the scheduler (no room for their CPU or memory requests) or for their containers; <i>all</i> includes pods that are starting or draining after being scaled away.</p>`;
}

function coldStartSection(coldStarts: ReportInput['coldStarts'], prediction?: RunPrediction): string {
  const model = prediction ? prediction.settings.podStartS + 1 / prediction.podRps.high : undefined;
  const rows = coldStarts.map((c) => `<tr><td>${c.run}</td><td class="${model ? verdict(c.seconds, [model, model]) : ''}">${num(c.seconds, 3)}</td><td>${c.status || 'no answer'}</td>${model ? `<td class="model">${num(model, 2)}</td>` : ''}</tr>`).join('');
  return `<h2>Cold starts</h2><table id="cold-starts"><thead><tr><th>run</th><th>seconds to the answer</th><th>HTTP status</th>${model ? '<th>model (assumed pod start + one request)</th>' : ''}</tr></thead><tbody>${rows}</tbody></table>
<p class="meta">Each run waited until the Service had no pods, then timed one request from zero: the activator holds it while a pod is scheduled, its container starts and the model loads.</p>`;
}

function modelNotes(p: RunPrediction): string {
  const s = p.settings;
  return `<h2>The autoscaler model beside the measurement</h2><ul class="model-notes" id="model">
<li><b>Derived, not measured:</b> the model applies Knative's autoscaling rules (bench/kpa-model.ts) to this run's steps, with the deployed Service's settings: target ${s.target} × ${s.utilization} % utilisation per pod, containerConcurrency ${s.containerConcurrency}, max-scale ${s.maxScale}, stable window ${s.stableWindowS} s (panic window ${(s.stableWindowS * s.panicWindowPercent) / 100} s), timeout ${s.timeoutS} s.</li>
<li>Each pod serves ${p.podRps.low}–${p.podRps.high} req/s once it has work: the low end held to its CPU request, the high end with its whole CPU limit (klassify.dev/pod-rps in the manifest). A pod is assumed ready ${s.podStartS} s after it is wanted.</li>
<li>The activator stays in the path (target-burst-capacity ${s.targetBurstCapacity}): it queues what the ready pods cannot take and gives up on a request after the ${s.timeoutS} s timeout (504). Scale to zero: a stable window without traffic, then max(${s.gracePeriodS} s grace, ${s.retentionS} s retention), then the queue-proxy's ${s.drainS} s drain.</li>
<li>Not in the model: the CPU the activator, Kourier, the queue-proxies and the load generator take from the same node, beyond what the low end of the range allows for; network time; hey's own limits.</li></ul>`;
}
