// The per-pod numbers of the classify function, read from the one place they live: its
// Service manifest (knative/base/200-classify-service.yaml). The CPU and memory requests
// and limits are the container's resources; the throughput range is the annotation
// klassify.dev/pod-rps on the Service. The scripts' capacity arithmetic
// (scripts/lib/capacity.sh), the capacity test, the autoscaler model, the load-test report
// and the docs' checks all read them from there, so a new model or a new measurement
// changes that file only.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

export const CLASSIFY_MANIFEST = fileURLToPath(new URL('./base/200-classify-service.yaml', import.meta.url));
export const UI_MANIFEST = fileURLToPath(new URL('./base/210-ui-service.yaml', import.meta.url));
export const RPS_ANNOTATION = 'klassify.dev/pod-rps';

export interface Resources {
  /** CPU in cores, memory in MiB. */
  requests: { cpu: number; memoryMiB: number };
  limits: { cpu: number; memoryMiB: number };
}

export interface PodSizing extends Resources {
  containerConcurrency: number;
  /**
   * Requests per second one pod serves with containerConcurrency requests in flight: `low`
   * with its CPU request as a CFS quota (its guaranteed share on a busy node), `high` with
   * its CPU limit (an idle node).
   */
  rps: { low: number; high: number };
}

/** Kubernetes quantities: CPU in cores ("2", "500m"), memory in bytes ("512Mi", "1G"). */
export function quantity(v: unknown): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(String(v));
  if (!m) return undefined;
  const scale: Record<string, number> = {
    m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40,
  };
  return Number(m[1]) * (m[2] ? scale[m[2]] : 1);
}

/** Go's time.ParseDuration for the units Knative annotations use ("1m30s", "500ms"). */
export function goDurationSeconds(v: string): number | undefined {
  if (v === '0') return 0;
  const unit: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600 };
  const parts = [...v.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== v) return undefined;
  return parts.reduce((sum, [, n, u]) => sum + Number(n) * unit[u], 0);
}

/** "36-70" → { low: 36, high: 70 }; anything else is refused with the reason. */
export function parseRpsRange(value: unknown): { low: number; high: number } {
  const m = /^(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)$/.exec(String(value ?? ''));
  if (!m) throw new Error(`${RPS_ANNOTATION}: "${value}" is not a range like "36-70" (req/s per pod)`);
  const [low, high] = [Number(m[1]), Number(m[2])];
  if (!(low > 0 && low <= high)) throw new Error(`${RPS_ANNOTATION}: "${value}" needs 0 < low ≤ high`);
  return { low, high };
}

/** The requests and limits of a Service's only container, from a parsed manifest. */
export function resourcesOf(svc: Record<string, any>): Resources {
  const name = svc?.metadata?.name ?? '?';
  const container = svc?.spec?.template?.spec?.containers?.[0] ?? {};
  const read = (kind: 'requests' | 'limits', res: 'cpu' | 'memory') => {
    const v = quantity(container.resources?.[kind]?.[res]);
    if (v === undefined) throw new Error(`Service ${name}: resources.${kind}.${res} is missing or not a quantity`);
    return res === 'memory' ? v / 2 ** 20 : v;
  };
  return {
    requests: { cpu: read('requests', 'cpu'), memoryMiB: read('requests', 'memory') },
    limits: { cpu: read('limits', 'cpu'), memoryMiB: read('limits', 'memory') },
  };
}

/** The classify pod's sizing, throughput range included, from a parsed manifest. */
export function sizingOf(svc: Record<string, any>): PodSizing {
  return {
    ...resourcesOf(svc),
    containerConcurrency: Number(svc.spec?.template?.spec?.containerConcurrency ?? 0),
    rps: parseRpsRange(svc.metadata?.annotations?.[RPS_ANNOTATION]),
  };
}

export function readManifest(file: string): Record<string, any> {
  return parse(readFileSync(file, 'utf8'));
}

/** The classify pod's sizing, from knative/base/200-classify-service.yaml. */
export function classifySizing(file = CLASSIFY_MANIFEST): PodSizing {
  return sizingOf(readManifest(file));
}
