// Offline checks for the manifests in knative/ (the kustomize base and its overlays).
// Three layers:
//  1. schema: each Knative resource against the openAPIV3Schema of the pinned release's
//     own CRD (schema.ts, crds.ts), strict about unknown fields as kubectl is, and fields
//     behind a config-features flag refused as the webhook refuses them; the Namespace
//     through kubernetes-models;
//  2. webhook: the rules Knative's admission webhooks apply that no schema expresses
//     (autoscaling annotation values, containerConcurrency and timeout limits, one port,
//     delivery durations);
//  3. conventions and consistency: what this project relies on (probes, image, security,
//     names), the classify Service against the function's own config loader, and the
//     Triggers against the event types the code emits and handles.
// Every check returns problems as strings ("file: path: message"); an empty list passes.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import { Namespace } from 'kubernetes-models/v1';
import { loadConfig as loadClassifyConfig } from '../../functions/classify/src/config.ts';
import { CLASSIFIED, REJECTED, SUBMITTED } from '../../contracts/events.ts';
import { loadConfig as loadUiConfig } from '../../ui/server/config.ts';
import { RELAYED_TYPES } from '../../ui/server/events.ts';
import type { CrdValidator } from './schema.ts';
import { goDurationSeconds, quantity } from '../sizing.ts';

export { goDurationSeconds, quantity };

export type Obj = Record<string, any>;
export interface Manifest {
  file: string;
  obj: Obj;
}

export const MANIFEST_DIR = fileURLToPath(new URL('../base', import.meta.url));
export const OVERLAYS_DIR = fileURLToPath(new URL('../overlays', import.meta.url));
/** The image name in the base; kustomize's `images:` sets its tag (or another name). */
export const IMAGE_NAME = 'dev.local/klassify';
export const PORT = 8080;
export const PROBE_PATHS = { readinessProbe: '/health/readiness', livenessProbe: '/health/liveness' } as const;
/** The names the code and scripts rely on. */
export const NAMES = { namespace: 'klassify', classify: 'classify', ui: 'ui', broker: 'default' } as const;
/** The Secret with the token in the UI's event paths (scripts/lib/knative.sh creates it). */
export const EVENTS_SECRET = { name: 'klassify-ui-events', key: 'token', env: 'UI_EVENTS_TOKEN' } as const;
/** The placeholder in the Triggers' URIs that the scripts replace with the token. */
export const TOKEN_PLACEHOLDER = 'TOKEN';

// ---------------------------------------------------------------------------------------
// Loading

const FILE_NAME = /^(\d{3})-[a-z0-9]+(?:-[a-z0-9]+)*\.yaml$/;

export function readKustomization(dir = MANIFEST_DIR): Obj {
  return parse(readFileSync(path.join(dir, 'kustomization.yaml'), 'utf8'));
}

/** The base's resources in the order its kustomization lists them (apply order). */
export function loadManifests(dir = MANIFEST_DIR): { manifests: Manifest[]; problems: string[] } {
  return parseManifests(dir, (readKustomization(dir).resources ?? []) as string[]);
}

/** Reads NNN-name.yaml files; each must hold exactly one resource. */
export function parseManifests(dir: string, files: string[]): { manifests: Manifest[]; problems: string[] } {
  const problems: string[] = [];
  const manifests: Manifest[] = [];
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

/** Splits a rendered stream (`kubectl kustomize`) into manifests named Kind/name. */
export function parseRendered(text: string): Manifest[] {
  return parseAllDocuments(text).map((d) => d.toJS()).filter(Boolean).map((obj: Obj) => ({ file: `${obj.kind}/${obj.metadata?.name}`, obj }));
}

// ---------------------------------------------------------------------------------------
// Layer 1: schemas

/** Knative kinds against the pinned CRDs; the core Namespace through kubernetes-models. */
export function checkSchema(m: Manifest, crds: CrdValidator): string[] {
  const { file, obj } = m;
  if (`${obj.apiVersion}/${obj.kind}` === 'v1/Namespace') {
    try {
      new Namespace(obj as any).validate();
      return [];
    } catch (err) {
      return [`${file}: schema: ${(err as Error).message}`];
    }
  }
  return crds.check(m) ?? [`${file}: no schema for ${obj.apiVersion}/${obj.kind} (the pinned CRDs cover ${crds.kinds().join(', ')})`];
}

// ---------------------------------------------------------------------------------------
// Layer 2: webhook rules that no schema expresses

const AUTOSCALING = 'autoscaling.knative.dev/';
const KPA = 'kpa.autoscaling.knative.dev';
type Rule = (v: string, all: Record<string, string>) => string | undefined;
/**
 * Per-revision autoscaling annotations as Serving's webhook validates them
 * (pkg/apis/autoscaling/annotation_validation.go) under the default config-autoscaler.
 */
const ANNOTATIONS: Record<string, Rule> = {
  class: (v) => oneOf(v, [KPA, 'hpa.autoscaling.knative.dev']),
  // The KPA scales on concurrency or rps; cpu and memory are HPA metrics.
  metric: (v, all) => ((all[`${AUTOSCALING}class`] ?? KPA) === KPA ? oneOf(v, ['concurrency', 'rps']) : oneOf(v, ['cpu', 'memory', 'concurrency', 'rps'])),
  target: (v) => number(v, 0.01, Infinity),
  'target-utilization-percentage': (v) => number(v, 1, 100),
  'min-scale': (v) => integer(v, 0, Infinity),
  'max-scale': (v) => integer(v, 0, Infinity),
  // 0 needs allow-zero-initial-scale in config-autoscaler, off by default.
  'initial-scale': (v) => integer(v, 1, Infinity),
  'scale-down-delay': (v) => duration(v, 0, 3600, true),
  'scale-to-zero-pod-retention-period': (v) => duration(v, 0, 3600, false),
  window: (v) => duration(v, 6, 3600, true),
  'panic-window-percentage': (v) => number(v, 1, 100),
  'panic-threshold-percentage': (v) => number(v, 110, 1000),
  'activation-scale': (v) => integer(v, 2, Infinity),
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
function duration(v: string, min: number, max: number, wholeSeconds: boolean) {
  const s = goDurationSeconds(v);
  if (s === undefined || s < min || s > max) return `"${v}" is not a duration from ${min}s to ${max}s (e.g. 5m, 30s)`;
  if (wholeSeconds && !Number.isInteger(s)) return `"${v}" must be whole seconds`;
  return undefined;
}

/** ISO-8601 durations as Knative's delivery spec takes them (PT0.5S, PT1M). */
export function isoDurationSeconds(v: string): number | undefined {
  const m = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/.exec(v);
  if (!m || v === 'P' || v.endsWith('T')) return undefined;
  const [, d = '0', h = '0', min = '0', s = '0'] = m;
  return Number(d) * 86400 + Number(h) * 3600 + Number(min) * 60 + Number(s);
}

/** Knative's webhook rules for a Service or a Trigger that the CRD schema leaves open. */
export function checkWebhook({ file, obj }: Manifest): string[] {
  const problems: string[] = [];
  const add = (at: string, msg: string | undefined) => msg && problems.push(`${file}: ${at}: ${msg}`);
  if (obj.kind === 'Service') {
    const template = obj.spec?.template ?? {};
    const annotations: Record<string, string> = template.metadata?.annotations ?? {};
    for (const [key, value] of Object.entries(annotations)) {
      if (!key.startsWith(AUTOSCALING)) continue;
      const rule = ANNOTATIONS[key.slice(AUTOSCALING.length)];
      // Knative ignores unknown autoscaling keys; a misspelt one silently changes nothing.
      if (!rule) add(key, 'unknown autoscaling annotation');
      else add(key, rule(String(value), annotations));
    }
    const min = Number(annotations[`${AUTOSCALING}min-scale`] ?? 0);
    const max = Number(annotations[`${AUTOSCALING}max-scale`] ?? 0);
    if (max > 0 && min > max) add('min-scale', `${min} > max-scale ${max}`);
    const spec = template.spec ?? {};
    // container-concurrency-max-limit and max-revision-timeout-seconds in config-defaults.
    if (spec.containerConcurrency !== undefined) add('containerConcurrency', integer(String(spec.containerConcurrency), 0, 1000));
    if (spec.timeoutSeconds !== undefined) add('timeoutSeconds', integer(String(spec.timeoutSeconds), 0, 600));
    (spec.containers ?? []).forEach((c: Obj, i: number) => {
      const ports: Obj[] = c.ports ?? [];
      if (ports.length > 1) add(`containers[${i}].ports`, 'more than one port per container');
      if (ports[0]?.name !== undefined) add(`containers[${i}].ports[0].name`, oneOf(ports[0].name, ['http1', 'h2c']));
    });
  }
  const d = obj.spec?.delivery;
  if ((obj.kind === 'Trigger' || obj.kind === 'Broker') && d) {
    // eventing pkg/apis/duck/v1/delivery_types.go: Validate.
    if (d.retry !== undefined && d.retry < 0) add('spec.delivery.retry', `${d.retry} must be ≥ 0`);
    if (d.backoffPolicy !== undefined) add('spec.delivery.backoffPolicy', oneOf(d.backoffPolicy, ['exponential', 'linear']));
    for (const key of ['backoffDelay', 'timeout', 'retryAfterMax'] as const) {
      if (d[key] !== undefined && isoDurationSeconds(String(d[key])) === undefined) add(`spec.delivery.${key}`, `"${d[key]}" is not an ISO-8601 duration (PT0.5S)`);
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------
// Layer 3: this project's conventions

/** What the scripts and the code rely on, beyond what Knative accepts. */
export function checkConventions({ file, obj }: Manifest): string[] {
  const problems: string[] = [];
  const add = (at: string, msg: string | undefined) => msg && problems.push(`${file}: ${at}: ${msg}`);
  if (obj.metadata?.namespace !== undefined && obj.metadata.namespace !== NAMES.namespace) {
    add('metadata.namespace', `${obj.metadata.namespace}, want ${NAMES.namespace}`);
  }
  if (obj.kind !== 'Service') return problems;
  const spec = obj.spec?.template?.spec ?? {};
  const containers: Obj[] = spec.containers ?? [];
  if (containers.length !== 1) add('containers', `${containers.length} containers; one per Service here`);
  const volumes = new Set((spec.volumes ?? []).map((v: Obj) => v.name));
  containers.forEach((c, i) => {
    const at = `containers[${i}]`;
    if (typeof c.image !== 'string' || c.image.split(/[:@]/)[0] !== IMAGE_NAME) {
      add(`${at}.image`, `"${c.image}" must be ${IMAGE_NAME}; kustomize's images: sets the tag`);
    }
    const ports: Obj[] = c.ports ?? [];
    if (ports.length !== 1 || ports[0].containerPort !== PORT) add(`${at}.ports`, `want exactly one containerPort ${PORT}`);
    for (const [kind, want] of Object.entries(PROBE_PATHS)) {
      const get = c[kind]?.httpGet;
      if (!get) add(`${at}.${kind}`, `missing; want httpGet ${want} on port ${PORT}`);
      else {
        if (get.path !== want) add(`${at}.${kind}.httpGet.path`, `"${get.path}", want ${want}`);
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
  });
  return problems;
}

// ---------------------------------------------------------------------------------------
// Layer 3: consistency across manifests and with the code
const byKind = (ms: Manifest[], kind: string) => ms.filter((m) => m.obj.kind === kind);
/** A Service's env as the process sees it; values from a Secret stand in as a dummy token. */
const envOf = (svc: Obj): Record<string, string> =>
  Object.fromEntries((svc.spec?.template?.spec?.containers?.[0]?.env ?? []).map((e: Obj) => [e.name, e.valueFrom?.secretKeyRef ? 'f'.repeat(64) : e.value]));

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
  const max = m.obj.spec?.template?.metadata?.annotations?.[`${AUTOSCALING}max-scale`];
  if (max !== '1') add('max-scale must be "1": the event feed lives in one pod\'s memory');
  const token = (c.env ?? []).find((e: Obj) => e.name === EVENTS_SECRET.env)?.valueFrom?.secretKeyRef;
  if (token?.name !== EVENTS_SECRET.name || token?.key !== EVENTS_SECRET.key) {
    add(`${EVENTS_SECRET.env} must come from the Secret ${EVENTS_SECRET.name}, key ${EVENTS_SECRET.key} (secretKeyRef)`);
  }
  return problems;
}

/**
 * Triggers: brokers and subscribers exist, filters match what the code emits and handles.
 * Deliveries to the UI go to /events and dead letters to /dead-letters; the scripts append
 * the Secret's token to both at deploy time (`token`: the value to expect there).
 */
export function checkEventing(ms: Manifest[], token?: string): string[] {
  const suffix = token ? `/${token}` : '';
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
    if (target.name === NAMES.ui && spec.subscriber.uri !== `/events${suffix}`) add(`UI subscriber uri must be /events${token ? '/<token>' : ''}, got ${spec.subscriber.uri}`);
    const dls = spec.delivery?.deadLetterSink;
    if (dls && (dls.ref?.kind !== 'Service' || dls.ref?.name !== NAMES.ui || dls.uri !== `/dead-letters${suffix}`)) {
      add(`deadLetterSink must be the ui Service at /dead-letters${token ? '/<token>' : ''} (got ${JSON.stringify(dls)})`);
    }
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

export interface CheckOptions {
  /** The manifests are the base's files in apply order (not a rendered stream). */
  files?: boolean;
  /** The events token the Trigger URIs must carry (rendered by the scripts). */
  token?: string;
}

/** Every check over a set of manifests. */
export function checkAll(ms: Manifest[], crds: CrdValidator, opts: CheckOptions = { files: true }): string[] {
  return [
    ...ms.flatMap((m) => checkSchema(m, crds)),
    ...ms.flatMap(checkWebhook),
    ...ms.flatMap(checkConventions),
    ...(opts.files ? checkOrder(ms) : []),
    ...checkClassifyService(ms),
    ...checkUiService(ms),
    ...checkEventing(ms, opts.token),
  ];
}
