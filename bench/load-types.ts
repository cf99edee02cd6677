// The shapes of a scripts/load-test.sh run once read: hey's summary per step, the steps,
// and the pod samples. Shared by the reader (load-report.ts) and the page (load-html.ts).

export interface HeySummary {
  requests: number;
  seconds: number;
  rps: number;
  /** Latency percentiles in ms, over all answered requests (503s included). */
  latencyMs: Record<'p10' | 'p25' | 'p50' | 'p75' | 'p90' | 'p95' | 'p99', number | null>;
  statusCodes: Record<string, number>;
  /** Transport errors hey counted (refused connections, timeouts), by message. */
  errors: Record<string, number>;
}

export interface Step extends HeySummary {
  concurrency: number;
  /** Requests per second that got a 200. */
  okRps: number;
  started?: number;
  ended?: number;
}

export interface PodSample {
  t: number;
  ready: number;
  /** Pods not yet scheduled or started (absent from older pods.csv files). */
  pending?: number;
  total: number;
}
