// Offline checks for the manifests in knative/. Three layers:
//  1. schema: each resource through its kubernetes-models class (the published CRD and
//     Kubernetes schemas);
//  2. shape: unknown keys and value ranges. The Knative CRD schemas preserve unknown
//     fields under spec.template, so a typo such as `readinesProbe` passes them; Knative's
//     webhook would reject it at apply time. The allowlists mirror the webhook's field
//     masks (knative.dev/serving pkg/apis/serving/fieldmask.go) for the fields a Service
//     may set with default feature flags;
//  3. consistency: the classify Service against the function's own config loader, and the
//     Triggers against the event types the code emits and handles.
// Every check returns problems as strings ("file: path: message"); an empty list passes.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { Namespace } from 'kubernetes-models/v1';
import { Service } from '@kubernetes-models/knative/serving.knative.dev/v1';
import { Broker, Trigger } from '@kubernetes-models/knative/eventing.knative.dev/v1';
import { loadConfig as loadClassifyConfig } from '../../functions/classify/src/config.ts';
import { CLASSIFIED, REJECTED, SUBMITTED } from '../../functions/classify/src/cloudevents.ts';
import { loadConfig as loadUiConfig } from '../../ui/server/config.ts';
import { RELAYED_TYPES } from '../../ui/server/events.ts';

export type Obj = Record<string, any>;
export interface Manifest {
  file: string;
  obj: Obj;
}

export const MANIFEST_DIR = fileURLToPath(new URL('..', import.meta.url));
export const IMAGE_PREFIX = 'dev.local/klassify:';
export const PORT = 8080;
export const PROBE_PATHS = { readinessProbe: '/health/readiness', livenessProbe: '/health/liveness' } as const;
/** The names the code and scripts rely on. */
export const NAMES = { namespace: 'klassify', classify: 'classify', ui: 'ui', broker: 'default' } as const;

// ---------------------------------------------------------------------------------------
// Loading

const FILE_NAME = /^(\d{3})-[a-z0-9]+(?:-[a-z0-9]+)*\.yaml$/;

/** Reads every NNN-name.yaml in apply order; each file must hold exactly one resource. */
export function loadManifests(dir = MANIFEST_DIR): { manifests: Manifest[]; problems: string[] } {
  const problems: string[] = [];
  const manifests: Manifest[] = [];
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml') || f.endsWith('.yml')).sort();
  for (const file of files) {
    if (!FILE_NAME.test(file)) problems.push(`${file}: name must be NNN-lowercase-words.yaml`);
    const docs = parseAllDocuments(readFileSync(path.join(dir, file), 'utf8'));
    if (!Array.isArray(docs)) {
      problems.push(`${file}: empty`);
      continue;
    }
    for (const doc of docs) for (const err of doc.errors) problems.push(`${file}: YAML: ${err.message}`);
    if (docs.length !== 1) problems.push(`${file}: ${docs.length} documents; one resource per file`);
    const obj = docs[0]?.toJS();
    if (obj && typeof obj === 'object') manifests.push({ file, obj });
    else problems.push(`${file}: not a YAML mapping`);
  }
  return { manifests, problems };
}

// ---------------------------------------------------------------------------------------
// Layer 1: schemas

const MODELS: Record<string, new (data: any) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'serving.knative.dev/v1/Service': Service,
  'eventing.knative.dev/v1/Broker': Broker,
  'eventing.knative.dev/v1/Trigger': Trigger,
};

export function checkSchema({ file, obj }: Manifest): string[] {
  const Model = MODELS[`${obj.apiVersion}/${obj.kind}`];
  if (!Model) return [`${file}: unsupported kind ${obj.apiVersion}/${obj.kind}; add its model to knative/test/check.ts`];
  try {
    new Model(obj).validate();
    return [];
  } catch (err) {
    return [`${file}: schema: ${(err as Error).message}`];
  }
}

// ---------------------------------------------------------------------------------------
// Layer 2: unknown keys and value ranges

/** A shape: the allowed keys, each with a nested shape, or true for "any value". */
type Shape = { [key: string]: Shape | true } | 'map';

const ref: Shape = { apiVersion: true, kind: true, name: true, namespace: true };
const destination: Shape = { ref, uri: true, CACerts: true, audience: true };
const metadata: Shape = { name: true, namespace: true, labels: 'map', annotations: 'map' };
const httpGet: Shape = { path: true, port: true, host: true, scheme: true, httpHeaders: true };
// HandlerMask + ProbeMask: exec/httpGet/tcpSocket/grpc and the timing fields.
const probe: Shape = {
  httpGet, tcpSocket: true, exec: true, grpc: true,
  initialDelaySeconds: true, timeoutSeconds: true, periodSeconds: true, successThreshold: true, failureThreshold: true,
};
// ContainerMask.
const container: Shape = {
  name: true, image: true, imagePullPolicy: true, command: true, args: true, workingDir: true,
  env: true, envFrom: true, ports: true, resources: { requests: 'map', limits: 'map' },
  readinessProbe: probe, livenessProbe: probe, startupProbe: probe,
  securityContext: {
    runAsNonRoot: true, runAsUser: true, runAsGroup: true, readOnlyRootFilesystem: true,
    allowPrivilegeEscalation: true, capabilities: { drop: true, add: true }, seccompProfile: { type: true },
  },
  terminationMessagePath: true, terminationMessagePolicy: true, volumeMounts: true,
};
const delivery: Shape = { retry: true, backoffPolicy: true, backoffDelay: true, deadLetterSink: destination, timeout: true };

const SHAPES: Record<string, Shape> = {
  Namespace: { apiVersion: true, kind: true, metadata },
  Service: {
    apiVersion: true, kind: true, metadata,
    spec: {
      template: {
        metadata: { labels: 'map', annotations: 'map' },
        // PodSpecMask with default feature flags.
        spec: {
          containerConcurrency: true, timeoutSeconds: true, responseStartTimeoutSeconds: true, idleTimeoutSeconds: true,
          serviceAccountName: true, containers: true, volumes: true, imagePullSecrets: true, enableServiceLinks: true,
        },
      },
      traffic: true,
    },
  },
  Broker: { apiVersion: true, kind: true, metadata, spec: { config: ref, delivery } },
  Trigger: {
    apiVersion: true, kind: true, metadata,
    spec: { broker: true, filter: { attributes: 'map' }, filters: true, subscriber: destination, delivery },
  },
};

/** Reports keys that the shape does not allow, with their path. */
export function unknownKeys(value: unknown, shape: Shape, at: string): string[] {
  if (shape === 'map' || !value || typeof value !== 'object' || Array.isArray(value)) return [];
  const problems: string[] = [];
  for (const [key, inner] of Object.entries(value)) {
    const allowed = shape[key];
    if (allowed === undefined) problems.push(`${at}.${key}: unknown key (allowed: ${Object.keys(shape).join(', ')})`);
    else if (allowed !== true) problems.push(...unknownKeys(inner, allowed, `${at}.${key}`));
  }
  return problems;
}

const AUTOSCALING = 'autoscaling.knative.dev/';
/** Per-revision autoscaling annotations and a check of each value. */
const ANNOTATIONS: Record<string, (v: string) => string | undefined> = {
  class: (v) => oneOf(v, ['kpa.autoscaling.knative.dev', 'hpa.autoscaling.knative.dev']),
  metric: (v) => oneOf(v, ['concurrency', 'rps', 'cpu', 'memory']),
  target: (v) => number(v, 0.01, 10_000),
  'target-utilization-percentage': (v) => number(v, 1, 100),
  'min-scale': (v) => integer(v, 0, 1000),
  'max-scale': (v) => integer(v, 0, 1000),
  // 0 needs allow-zero-initial-scale in the cluster's config-autoscaler; we never rely on it.
  'initial-scale': (v) => integer(v, 1, 1000),
  'scale-down-delay': (v) => duration(v, 0, 3600),
  'scale-to-zero-pod-retention-period': (v) => duration(v, 0, 3600),
  window: (v) => duration(v, 6, 3600),
  'panic-window-percentage': (v) => number(v, 1, 100),
  'panic-threshold-percentage': (v) => number(v, 110, 1000),
  'activation-scale': (v) => integer(v, 1, 1000),
};

function oneOf(v: string, values: string[]) {
  return values.includes(v) ? undefined : `"${v}" is not one of ${values.join(', ')}`;
}
function number(v: string, min: number, max: number) {
  const n = Number(v);
  return v.trim() !== '' && Number.isFinite(n) && n >= min && n <= max ? undefined : `"${v}" is not a number from ${min} to ${max}`;
}
function integer(v: string, min: number, max: number) {
  return /^\d+$/.test(v) ? number(v, min, max) : `"${v}" is not an integer from ${min} to ${max}`;
}
function duration(v: string, min: number, max: number) {
  const s = goDurationSeconds(v);
  return s !== undefined && s >= min && s <= max ? undefined : `"${v}" is not a duration from ${min}s to ${max}s (e.g. 5m, 30s)`;
}

/** Go's time.ParseDuration for the units Knative annotations use ("1m30s", "500ms"). */
export function goDurationSeconds(v: string): number | undefined {
  if (v === '0') return 0;
  const unit: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600 };
  const parts = [...v.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== v) return undefined;
  return parts.reduce((sum, [, n, u]) => sum + Number(n) * unit[u], 0);
}

/** ISO-8601 durations as Knative's delivery spec takes them (PT0.5S, PT1M). */
export function isoDurationSeconds(v: string): number | undefined {
  const m = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/.exec(v);
  if (!m || v === 'P' || v.endsWith('T')) return undefined;
  const [, d = '0', h = '0', min = '0', s = '0'] = m;
  return Number(d) * 86400 + Number(h) * 3600 + Number(min) * 60 + Number(s);
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

export function checkShape({ file, obj }: Manifest): string[] {
  const shape = SHAPES[obj.kind];
  if (!shape) return [`${file}: no shape for kind ${obj.kind}`];
  const problems = unknownKeys(obj, shape, obj.kind).map((p) => `${file}: ${p}`);
  if (obj.metadata?.namespace !== undefined && obj.metadata.namespace !== NAMES.namespace) {
    problems.push(`${file}: metadata.namespace is ${obj.metadata.namespace}, want ${NAMES.namespace}`);
  }
  if (obj.kind === 'Service') problems.push(...checkService(file, obj));
  if (obj.kind === 'Trigger') problems.push(...checkDelivery(file, obj.spec?.delivery));
  return problems;
}

function checkService(file: string, obj: Obj): string[] {
  const problems: string[] = [];
  const add = (at: string, msg: string | undefined) => msg && problems.push(`${file}: ${at}: ${msg}`);
  const template = obj.spec?.template ?? {};
  const annotations: Record<string, string> = template.metadata?.annotations ?? {};
  for (const [key, value] of Object.entries(annotations)) {
    if (!key.startsWith(AUTOSCALING)) continue;
    const check = ANNOTATIONS[key.slice(AUTOSCALING.length)];
    if (!check) add(key, 'unknown autoscaling annotation');
    else if (typeof value !== 'string') add(key, `must be a quoted string, not ${typeof value}`);
    else add(key, check(value));
  }
  const min = Number(annotations[`${AUTOSCALING}min-scale`] ?? 0);
  const max = Number(annotations[`${AUTOSCALING}max-scale`] ?? 0);
  const initial = Number(annotations[`${AUTOSCALING}initial-scale`] ?? 1);
  if (max > 0 && min > max) add('min-scale', `${min} > max-scale ${max}`);
  if (max > 0 && initial > max) add('initial-scale', `${initial} > max-scale ${max}`);

  const spec = template.spec ?? {};
  const cc = spec.containerConcurrency;
  if (cc !== undefined) add('containerConcurrency', Number.isInteger(cc) ? integer(String(cc), 0, 1000) : `${cc} is not an integer`);
  if (spec.timeoutSeconds !== undefined) {
    // 600 s is Knative's default max-revision-timeout-seconds.
    add('timeoutSeconds', Number.isInteger(spec.timeoutSeconds) ? integer(String(spec.timeoutSeconds), 1, 600) : 'not an integer');
  }
  const containers: Obj[] = spec.containers ?? [];
  if (containers.length !== 1) add('containers', `${containers.length} containers; one per Service here`);
  const volumes = new Set((spec.volumes ?? []).map((v: Obj) => v.name));
  containers.forEach((c, i) => {
    const at = `containers[${i}]`;
    problems.push(...unknownKeys(c, container, at).map((p) => `${file}: ${p}`));
    if (typeof c.image !== 'string' || !c.image.startsWith(IMAGE_PREFIX)) add(`${at}.image`, `"${c.image}" must start with ${IMAGE_PREFIX}`);
    const ports: Obj[] = c.ports ?? [];
    if (ports.length !== 1 || ports[0].containerPort !== PORT) add(`${at}.ports`, `want exactly one containerPort ${PORT}`);
    else if (!['http1', 'h2c'].includes(ports[0].name)) add(`${at}.ports[0].name`, 'must be http1 or h2c');
    for (const [kind, path] of Object.entries(PROBE_PATHS)) {
      const get = c[kind]?.httpGet;
      if (!get) add(`${at}.${kind}`, `missing; want httpGet ${path} on port ${PORT}`);
      else {
        if (get.path !== path) add(`${at}.${kind}.httpGet.path`, `"${get.path}", want ${path}`);
        if (get.port !== PORT) add(`${at}.${kind}.httpGet.port`, `${get.port}, want an explicit ${PORT}`);
      }
    }
    const { requests = {}, limits = {} } = c.resources ?? {};
    for (const res of ['cpu', 'memory']) {
      const req = quantity(requests[res]);
      const lim = quantity(limits[res]);
      if (req === undefined) add(`${at}.resources.requests.${res}`, `missing or not a quantity (${requests[res]})`);
      if (lim === undefined) add(`${at}.resources.limits.${res}`, `missing or not a quantity (${limits[res]})`);
      if (req !== undefined && lim !== undefined && req > lim) add(`${at}.resources`, `${res} request ${requests[res]} > limit ${limits[res]}`);
    }
    const sc = c.securityContext ?? {};
    if (sc.runAsNonRoot !== true) add(`${at}.securityContext.runAsNonRoot`, 'must be true');
    if (sc.readOnlyRootFilesystem !== true) add(`${at}.securityContext.readOnlyRootFilesystem`, 'must be true');
    if (sc.allowPrivilegeEscalation !== false) add(`${at}.securityContext.allowPrivilegeEscalation`, 'must be false');
    const tmp = (c.volumeMounts ?? []).find((m: Obj) => m.mountPath === '/tmp');
    if (sc.readOnlyRootFilesystem === true && (!tmp || !volumes.has(tmp.name))) {
      add(`${at}.volumeMounts`, 'a read-only root needs a volume at /tmp (HOME and TMPDIR)');
    }
    for (const e of c.env ?? []) {
      if (typeof e.value !== 'string' && e.valueFrom === undefined) add(`${at}.env.${e.name}`, 'value must be a quoted string');
    }
  });
  return problems;
}

function checkDelivery(file: string, d: Obj | undefined): string[] {
  if (!d) return [];
  const problems: string[] = [];
  const add = (at: string, msg: string | undefined) => msg && problems.push(`${file}: spec.delivery.${at}: ${msg}`);
  if (d.retry !== undefined) add('retry', Number.isInteger(d.retry) ? integer(String(d.retry), 0, 10) : 'not an integer');
  if (d.backoffPolicy !== undefined) add('backoffPolicy', oneOf(d.backoffPolicy, ['exponential', 'linear']));
  if (d.backoffDelay !== undefined) {
    const s = isoDurationSeconds(String(d.backoffDelay));
    add('backoffDelay', s !== undefined && s > 0 && s <= 60 ? undefined : `"${d.backoffDelay}" is not an ISO-8601 duration up to PT60S`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------
// Layer 3: consistency across manifests and with the code

const byKind = (ms: Manifest[], kind: string) => ms.filter((m) => m.obj.kind === kind);
const envOf = (svc: Obj): Record<string, string> =>
  Object.fromEntries((svc.spec?.template?.spec?.containers?.[0]?.env ?? []).map((e: Obj) => [e.name, e.value]));

/** Apply order: a resource may only refer to resources in earlier files. */
export function checkOrder(ms: Manifest[]): string[] {
  const rank = (kind: string) => ({ Namespace: 1, Service: 2, Broker: 3, Trigger: 4 })[kind] ?? 9;
  const problems: string[] = [];
  for (let i = 1; i < ms.length; i++) {
    if (rank(ms[i].obj.kind) < rank(ms[i - 1].obj.kind)) {
      problems.push(`${ms[i].file}: ${ms[i].obj.kind} must come before ${ms[i - 1].obj.kind} (${ms[i - 1].file})`);
    }
  }
  const numbers = ms.map((m) => m.file.slice(0, 3));
  if (new Set(numbers).size !== numbers.length) problems.push(`duplicate file numbers: ${numbers.join(', ')}`);
  return problems;
}

/** The classify Service's settings, read through the function's own config loader. */
export function checkClassifyService(ms: Manifest[]): string[] {
  const m = byKind(ms, 'Service').find((s) => s.obj.metadata?.name === NAMES.classify);
  if (!m) return [`no Service named ${NAMES.classify}`];
  const problems: string[] = [];
  const add = (msg: string) => problems.push(`${m.file}: ${msg}`);
  const spec = m.obj.spec?.template?.spec ?? {};
  const annotations = m.obj.spec?.template?.metadata?.annotations ?? {};
  let config;
  try {
    config = loadClassifyConfig({ ...envOf(m.obj), PORT: String(PORT) });
  } catch (err) {
    return [`${m.file}: env rejected by functions/classify/src/config.ts: ${(err as Error).message}`];
  }
  if (config.engine !== 'onnx') add(`KLASSIFY_ENGINE=${config.engine}; the image's fast path and the benchmark use onnx`);
  const cc = spec.containerConcurrency ?? 0;
  if (!(cc > 0)) add('containerConcurrency must be set (a hard per-pod limit) for a CPU-bound function');
  if (cc > 0 && cc < config.workers) add(`containerConcurrency ${cc} < KLASSIFY_WORKERS ${config.workers}: workers would sit idle`);
  if (cc > config.queueSize) add(`containerConcurrency ${cc} > KLASSIFY_QUEUE_SIZE ${config.queueSize}: the function would 503 requests Knative admitted`);
  const target = Number(annotations[`${AUTOSCALING}target`]);
  if (!(target > 0)) add(`${AUTOSCALING}target must be set`);
  if (cc > 0 && target > cc) add(`target ${target} > containerConcurrency ${cc}: the soft target can never be reached`);
  if (annotations[`${AUTOSCALING}min-scale`] !== '0') add('min-scale must be "0" (scale to zero)');
  for (const key of ['class', 'metric', 'target-utilization-percentage', 'max-scale', 'initial-scale']) {
    if (annotations[AUTOSCALING + key] === undefined) add(`missing ${AUTOSCALING}${key}`);
  }
  if (annotations[`${AUTOSCALING}scale-down-delay`] === undefined && annotations[`${AUTOSCALING}scale-to-zero-pod-retention-period`] === undefined) {
    add('set scale-down-delay or scale-to-zero-pod-retention-period (cold starts are expensive)');
  }
  if (annotations[`${AUTOSCALING}metric`] !== 'concurrency') add('metric must be concurrency');
  const cpu = quantity(spec.containers?.[0]?.resources?.limits?.cpu) ?? 0;
  const threads = config.workers * config.intraOpThreads;
  if (cpu < threads) add(`limits.cpu ${cpu} < ${threads} inference threads (KLASSIFY_WORKERS x KLASSIFY_INTRA_OP_THREADS)`);
  return problems;
}

export function checkUiService(ms: Manifest[]): string[] {
  const m = byKind(ms, 'Service').find((s) => s.obj.metadata?.name === NAMES.ui);
  if (!m) return [`no Service named ${NAMES.ui}`];
  const problems: string[] = [];
  const add = (msg: string) => problems.push(`${m.file}: ${msg}`);
  const c = m.obj.spec?.template?.spec?.containers?.[0] ?? {};
  if (JSON.stringify(c.command) !== JSON.stringify(['node', 'dist/ui/server.js'])) add(`command ${JSON.stringify(c.command)}, want ["node","dist/ui/server.js"]`);
  let config;
  try {
    config = loadUiConfig({ ...envOf(m.obj), PORT: String(PORT) }, { publicDir: '/app/dist/ui/public' });
  } catch (err) {
    return [`${m.file}: env rejected by ui/server/config.ts: ${(err as Error).message}`];
  }
  const want = `${NAMES.classify}.${NAMES.namespace}.svc.cluster.local`;
  if (config.classifyUpstream.host !== want) add(`CLASSIFY_URL host ${config.classifyUpstream.host}, want the cluster-local ${want}`);
  const own = `${NAMES.ui}.${NAMES.namespace}.svc.cluster.local`;
  if (config.events.allowedHosts.length > 0 && !config.events.allowedHosts.includes(own)) {
    add(`UI_EVENTS_ALLOWED_HOSTS must include ${own}, the host the Triggers deliver to`);
  }
  const max = m.obj.spec?.template?.metadata?.annotations?.[`${AUTOSCALING}max-scale`];
  if (max !== '1') add('max-scale must be "1": the event feed lives in one pod\'s memory');
  return problems;
}

/** Triggers: brokers and subscribers exist, filters match what the code emits and handles. */
export function checkEventing(ms: Manifest[]): string[] {
  const problems: string[] = [];
  const brokers = new Set(byKind(ms, 'Broker').map((m) => m.obj.metadata?.name));
  const services = new Set(byKind(ms, 'Service').map((m) => m.obj.metadata?.name));
  const handled: Record<string, { service: string; types: ReadonlySet<string> }> = {
    [NAMES.classify]: { service: NAMES.classify, types: new Set([SUBMITTED]) },
    [NAMES.ui]: { service: NAMES.ui, types: RELAYED_TYPES },
  };
  const replies = new Set([CLASSIFIED, REJECTED]);
  const seen = new Set<string>();
  for (const { file, obj } of byKind(ms, 'Trigger')) {
    const add = (msg: string) => problems.push(`${file}: ${msg}`);
    const spec = obj.spec ?? {};
    if (!brokers.has(spec.broker)) add(`broker "${spec.broker}" is not defined in knative/`);
    const type = spec.filter?.attributes?.type;
    if (!type) add('filter.attributes.type is required: an unfiltered Trigger would deliver every event');
    seen.add(type);
    const target = spec.subscriber?.ref;
    if (target?.kind !== 'Service' || target?.apiVersion !== 'serving.knative.dev/v1' || !services.has(target?.name)) {
      add(`subscriber must reference a Knative Service defined in knative/ (got ${JSON.stringify(target)})`);
      continue;
    }
    const handler = handled[target.name];
    if (handler && !handler.types.has(type)) add(`${target.name} does not handle ${type} (handles ${[...handler.types].join(', ')})`);
    if (target.name === NAMES.classify && replies.has(type)) add(`${type} is a reply of classify: delivering it back to classify loops`);
    if (target.name === NAMES.ui && spec.subscriber.uri !== '/events') add('UI subscriber uri must be /events');
    const dls = spec.delivery?.deadLetterSink;
    if (dls?.ref && !services.has(dls.ref.name)) add(`deadLetterSink ${dls.ref.name} is not a Service defined in knative/`);
  }
  for (const type of [SUBMITTED, CLASSIFIED, REJECTED]) {
    if (!seen.has(type)) problems.push(`no Trigger for ${type}`);
  }
  const submitted = byKind(ms, 'Trigger').find((m) => m.obj.spec?.filter?.attributes?.type === SUBMITTED);
  const d = submitted?.obj.spec?.delivery;
  if (submitted && (!d?.retry || d.backoffPolicy !== 'exponential' || !d.deadLetterSink)) {
    problems.push(`${submitted.file}: the ${SUBMITTED} Trigger needs retries with exponential backoff and a deadLetterSink`);
  }
  return problems;
}

/** Every check over a set of manifests. */
export function checkAll(ms: Manifest[]): string[] {
  return [
    ...ms.flatMap(checkSchema),
    ...ms.flatMap(checkShape),
    ...checkOrder(ms),
    ...checkClassifyService(ms),
    ...checkUiService(ms),
    ...checkEventing(ms),
  ];
}
