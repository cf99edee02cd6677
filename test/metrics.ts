// Reading a server's Prometheus /metrics, the same way in every suite and benchmark.

export interface MetricSamples {
  /** The exposition as served. */
  text: string;
  /**
   * The sum of every sample named `name` whose labels include `labels`; 0 when there is none
   * (prom-client shows a labelled counter only once it has counted something).
   */
  value(name: string, labels?: Record<string, string>): number;
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const SAMPLE = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g;

/** Parses the Prometheus text format (the lines that are samples; comments are skipped). */
export function parseMetrics(text: string): MetricSamples {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = SAMPLE.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries([...(m[2] ?? '').matchAll(LABEL)].map(([, k, v]) => [k, v.replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c))]));
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return {
    text,
    value: (name, want = {}) =>
      samples
        .filter((s) => s.name === name && Object.entries(want).every(([k, v]) => s.labels[k] === v))
        .reduce((sum, s) => sum + s.value, 0),
  };
}

/** GETs `${baseUrl}/metrics` (with a deadline, so a wedged server fails the caller) and parses it. */
export async function scrapeMetrics(baseUrl: string, timeoutMs = 30_000): Promise<MetricSamples> {
  const res = await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(timeoutMs) });
  if (res.status !== 200) throw new Error(`GET ${baseUrl}/metrics answered ${res.status}`);
  return parseMetrics(await res.text());
}
