// The manifests in knative/ (the base and its rendered overlays) pass every offline check,
// and each check catches the mistake it exists for: every suite feeds a broken copy of a
// real manifest to the checker. The Knative schemas are the pinned release's CRDs
// (the mirror, KLASSIFY_MIRROR, or downloaded and checked against their SHA-256).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  checkAll, checkSchema, goDurationSeconds, isoDurationSeconds, loadManifests, MANIFEST_DIR, OVERLAYS_DIR, parseRendered,
  quantity, readKustomization, type Manifest, type Obj,
} from './check.ts';
import { CRD_SHA256, loadCrds } from './crds.ts';
import { CrdValidator } from './schema.ts';
import { versions } from '../../scripts/test/shims.ts';

const loaded = loadManifests();
const manifests = loaded.manifests;
const crds = new CrdValidator(await loadCrds());

/** checkAll over the real manifests, with `file` changed by `edit` (on a deep copy). */
function problemsAfter(file: string, edit: (obj: Obj) => void): string[] {
  const copy: Manifest[] = structuredClone(manifests);
  const target = copy.find((m) => m.file === file);
  assert.ok(target, `no manifest ${file}`);
  edit(target.obj);
  return checkAll(copy, crds);
}

function assertCaught(problems: string[], pattern: RegExp) {
  assert.ok(problems.some((p) => pattern.test(p)), `expected a problem matching ${pattern}, got:\n${problems.join('\n') || '(none)'}`);
}

const CLASSIFY = '200-classify-service.yaml';
const UI = '210-ui-service.yaml';
const SUBMITTED = '310-trigger-submitted.yaml';
const CLASSIFIED = '320-trigger-classified.yaml';
const classifyContainer = (o: Obj) => o.spec.template.spec.containers[0];
const classifyAnnotations = (o: Obj) => o.spec.template.metadata.annotations;
const setEnv = (o: Obj, name: string, value: string) => {
  classifyContainer(o).env.find((e: Obj) => e.name === name).value = value;
};
const setAnnotation = (key: string, value: string) => problemsAfter(CLASSIFY, (o) => { classifyAnnotations(o)[`autoscaling.knative.dev/${key}`] = value; });

// ---------------------------------------------------------------------------------------
const files = suite('knative manifests: the kustomize base');

files('the kustomization lists every resource file, one resource each, in apply order', () => {
  assert.equal(loaded.problems, []);
  const onDisk = readdirSync(MANIFEST_DIR).filter((f) => /^\d{3}-.*\.yaml$/.test(f)).sort();
  assert.equal(readKustomization().resources, onDisk);
  assert.equal(
    manifests.map((m) => `${m.obj.kind}/${m.obj.metadata.name}`),
    ['Namespace/klassify', 'Service/classify', 'Service/ui', 'Broker/default',
      'Trigger/image-submitted', 'Trigger/image-classified', 'Trigger/image-rejected'],
  );
});

files('the image is set by kustomize images:, not written into the manifests', () => {
  assert.equal(readKustomization().images, [{ name: 'dev.local/klassify', newTag: 'dev' }]);
  for (const m of manifests.filter((x) => x.obj.kind === 'Service')) assert.is(classifyContainer(m.obj).image, 'dev.local/klassify');
  assertCaught(problemsAfter(CLASSIFY, (o) => { classifyContainer(o).image = 'docker.io/klassify:latest'; }), /must be dev\.local\/klassify/);
});

files('all checks pass on the real manifests', () => {
  assert.equal(checkAll(manifests, crds), []);
});

files('a file with two documents or a bad name is reported', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'knative-'));
  writeFileSync(path.join(dir, '100-two.yaml'), 'kind: A\n---\nkind: B\n');
  writeFileSync(path.join(dir, 'Broker.yaml'), 'kind: Broker\n');
  writeFileSync(path.join(dir, 'kustomization.yaml'), 'resources: [100-two.yaml, Broker.yaml]\n');
  const { problems } = loadManifests(dir);
  assertCaught(problems, /100-two\.yaml: 2 documents/);
  assertCaught(problems, /Broker\.yaml: name must be NNN/);
});

files('a Trigger before the Service it references is reported', () => {
  const swapped = [...manifests];
  [swapped[1], swapped[4]] = [swapped[4], swapped[1]];
  assertCaught(checkAll(swapped, crds), /Service must come before Trigger/);
});

files.run();

// ---------------------------------------------------------------------------------------
const pinned = suite('knative manifests: the pinned CRDs');

pinned('the release pinned in scripts/versions.sh has SHA-256 sums for its CRDs', () => {
  const v = versions();
  assert.ok(CRD_SHA256.serving[v.KNATIVE_SERVING_VERSION], v.KNATIVE_SERVING_VERSION);
  assert.ok(CRD_SHA256.eventing[v.KNATIVE_EVENTING_VERSION], v.KNATIVE_EVENTING_VERSION);
  assert.equal(crds.kinds().sort(), ['eventing.knative.dev/v1/Broker', 'eventing.knative.dev/v1/Trigger', 'serving.knative.dev/v1/Service']);
});

pinned('a mirror holding a changed CRD is refused', async () => {
  const v = versions();
  const mirror = mkdtempSync(path.join(tmpdir(), 'knative-mirror-'));
  const cache = mkdtempSync(path.join(tmpdir(), 'knative-cache-'));
  for (const [repo, tag] of [['serving', v.KNATIVE_SERVING_VERSION], ['eventing', v.KNATIVE_EVENTING_VERSION]] as const) {
    const folder = path.join(mirror, `${repo}-${tag}`);
    (await import('node:fs')).mkdirSync(folder);
    for (const file of Object.keys(CRD_SHA256[repo][tag])) writeFileSync(path.join(folder, file), 'kind: CustomResourceDefinition\n# edited\n');
  }
  try {
    await loadCrds(mirror, cache);
    assert.unreachable('a changed CRD was accepted');
  } catch (err) {
    assert.match((err as Error).message, /has SHA-256 [0-9a-f]{64}, expected/);
  }
});

pinned.run();

// ---------------------------------------------------------------------------------------
const schema = suite('knative manifests: CRD schemas, strict as kubectl');

schema('every resource validates against its schema', () => {
  for (const m of manifests) assert.equal(checkSchema(m, crds), [], m.file);
});

schema('unknown fields are reported with their path, as kubectl --validate=strict does', () => {
  const problems = problemsAfter(CLASSIFY, (o) => {
    const c = classifyContainer(o);
    c.readinesProbe = c.readinessProbe;
    delete c.readinessProbe;
    c.lifecycle = {};
  });
  assertCaught(problems, /unknown field "spec\.template\.spec\.containers\[0\]\.readinesProbe"/);
  assertCaught(problems, /unknown field "spec\.template\.spec\.containers\[0\]\.lifecycle"/);
  assertCaught(problems, /readinessProbe: missing/);
  assertCaught(problemsAfter(SUBMITTED, (o) => { o.spec.delivery.retries = 5; }), /unknown field "spec\.delivery\.retries"/);
  assertCaught(problemsAfter(SUBMITTED, (o) => { o.spec.subscriber.ref.nmae = 'x'; }), /unknown field "spec\.subscriber\.ref\.nmae"/);
  assertCaught(problemsAfter(UI, (o) => { o.metadata.lables = {}; }), /unknown field "metadata\.lables"/);
});

schema('wrong types are caught: a number for a string, a string for a number', () => {
  assertCaught(problemsAfter(CLASSIFY, (o) => { o.spec.template.spec.containerConcurrency = 'eight'; }), /containerConcurrency: must be integer/);
  assertCaught(problemsAfter(CLASSIFY, (o) => { classifyAnnotations(o)['autoscaling.knative.dev/max-scale'] = 10; }), /annotations\.autoscaling\.knative\.dev\/max-scale: must be string/);
  assertCaught(problemsAfter(CLASSIFY, (o) => setEnv(o, 'KLASSIFY_WORKERS', 1 as any)), /env\[0\]\.value: must be string/);
});

schema('fields behind a config-features flag are refused (capabilities.add, hostNetwork)', () => {
  assertCaught(problemsAfter(CLASSIFY, (o) => { classifyContainer(o).securityContext.capabilities.add = ['NET_ADMIN']; }),
    /capabilities\.add: needs the feature flag kubernetes\.containerspec-addcapabilities/);
  assertCaught(problemsAfter(CLASSIFY, (o) => { o.spec.template.spec.hostNetwork = true; }), /hostNetwork: needs the feature flag kubernetes\.podspec-hostnetwork/);
});

schema('a kind or version the pinned CRDs do not have is reported', () => {
  assertCaught(problemsAfter(SUBMITTED, (o) => { o.apiVersion = 'eventing.knative.dev/v1beta1'; }), /no schema for eventing\.knative\.dev\/v1beta1\/Trigger/);
});

schema.run();

// ---------------------------------------------------------------------------------------
const webhook = suite('knative manifests: webhook rules no schema expresses');

webhook('autoscaling annotation values Knative refuses are caught', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['metric', 'cpu', /metric: "cpu" is not one of concurrency, rps/],
    ['activation-scale', '1', /activation-scale: "1" is not a number from 2/],
    ['window', '6500ms', /window: "6500ms" must be whole seconds/],
    ['window', '5s', /window: "5s" is not a duration from 6s/],
    ['scale-down-delay', '1500ms', /scale-down-delay: "1500ms" must be whole seconds/],
    ['target', '0', /target: "0" is not a number from 0\.01/],
    ['target-utilization-percentage', '170', /target-utilization-percentage: "170" is not a number from 1 to 100/],
    ['initial-scale', '0', /initial-scale: "0" is not a number from 1/],
    ['max-scale', 'ten', /max-scale: "ten" is not an integer/],
    ['min-scale', '-1', /min-scale: "-1" is not an integer/],
    ['scale-to-zero-pod-retention-period', '5 minutes', /not a duration/],
    ['panic-threshold-percentage', '100', /panic-threshold-percentage: "100" is not a number from 110/],
    ['panic-window-percentage', '0', /panic-window-percentage: "0" is not a number from 1/],
    ['class', 'kpa', /class: "kpa" is not one of/],
    ['minScale', '0', /minScale: unknown autoscaling annotation/],
  ];
  for (const [key, value, pattern] of cases) assertCaught(setAnnotation(key, value), pattern);
});

webhook('min-scale above max-scale is caught', () => {
  assertCaught(setAnnotation('min-scale', '20'), /min-scale: 20 > max-scale 5/);
});

webhook('containerConcurrency, timeout and ports beyond what Serving admits are caught', () => {
  assertCaught(problemsAfter(CLASSIFY, (o) => { o.spec.template.spec.containerConcurrency = 2000; }), /containerConcurrency: "2000" is not a number from 0 to 1000/);
  assertCaught(problemsAfter(CLASSIFY, (o) => { o.spec.template.spec.timeoutSeconds = 3600; }), /timeoutSeconds: "3600"/);
  assertCaught(problemsAfter(CLASSIFY, (o) => { classifyContainer(o).ports.push({ containerPort: 9090 }); }), /more than one port/);
  assertCaught(problemsAfter(CLASSIFY, (o) => { classifyContainer(o).ports[0].name = 'http'; }), /ports\[0\]\.name: "http" is not one of http1, h2c/);
});

webhook('delivery settings eventing refuses are caught', () => {
  assertCaught(problemsAfter(SUBMITTED, (o) => { o.spec.delivery.backoffDelay = '0.5s'; }), /backoffDelay: "0\.5s" is not an ISO-8601/);
  assertCaught(problemsAfter(SUBMITTED, (o) => { o.spec.delivery.backoffPolicy = 'fibonacci'; }), /backoffPolicy: "fibonacci" is not one of/);
  assertCaught(problemsAfter(SUBMITTED, (o) => { o.spec.delivery.retry = -1; }), /retry: -1 must be ≥ 0/);
});

webhook.run();

// ---------------------------------------------------------------------------------------
const conventions = suite('knative manifests: this project\'s conventions');

conventions('resources, security settings and /tmp are required', () => {
  assertCaught(problemsAfter(CLASSIFY, (o) => { classifyContainer(o).resources.requests.memory = '1Gi'; }), /memory request 1Gi > limit 512Mi/);
  assertCaught(problemsAfter(CLASSIFY, (o) => { classifyContainer(o).resources.limits.cpu = 'two'; }), /limits\.cpu: missing or not a quantity/);
  assertCaught(problemsAfter(CLASSIFY, (o) => { classifyContainer(o).securityContext.runAsNonRoot = false; }), /runAsNonRoot: must be true/);
  assertCaught(problemsAfter(UI, (o) => { o.spec.template.spec.volumes = []; }), /read-only root needs a volume at \/tmp/);
});

conventions('probes must hit the real health paths on an explicit port 8080', () => {
  assertCaught(problemsAfter(CLASSIFY, (o) => { classifyContainer(o).readinessProbe.httpGet.path = '/healthz'; }), /readinessProbe\.httpGet\.path: "\/healthz", want \/health\/readiness/);
  assertCaught(problemsAfter(CLASSIFY, (o) => { delete classifyContainer(o).livenessProbe.httpGet.port; }), /livenessProbe\.httpGet\.port: undefined, want an explicit 8080/);
  assertCaught(problemsAfter(CLASSIFY, (o) => { classifyContainer(o).ports[0].containerPort = 3000; }), /want exactly one containerPort 8080/);
});

conventions.run();

// ---------------------------------------------------------------------------------------
const classify = suite('knative manifests: classify Service vs the function config');

classify('containerConcurrency below the worker pool is caught', () => {
  const problems = problemsAfter(CLASSIFY, (o) => { setEnv(o, 'KLASSIFY_WORKERS', '3'); });
  assertCaught(problems, /containerConcurrency 2 < KLASSIFY_WORKERS 3/);
});

classify('a queue smaller than containerConcurrency is caught', () => {
  assertCaught(problemsAfter(CLASSIFY, (o) => setEnv(o, 'KLASSIFY_QUEUE_SIZE', '1')), /containerConcurrency 2 > KLASSIFY_QUEUE_SIZE 1/);
});

classify('env the function rejects at start-up is caught by its own loader', () => {
  assertCaught(problemsAfter(CLASSIFY, (o) => setEnv(o, 'KLASSIFY_WORKERS', 'two')), /rejected by functions\/classify\/src\/config\.ts: KLASSIFY_WORKERS="two"/);
  assertCaught(problemsAfter(CLASSIFY, (o) => setEnv(o, 'KLASSIFY_ENGINE', 'torch')), /KLASSIFY_ENGINE="torch" is invalid/);
});

classify('more inference threads than requested CPUs is caught', () => {
  assertCaught(problemsAfter(CLASSIFY, (o) => setEnv(o, 'KLASSIFY_INTRA_OP_THREADS', '2')), /limits\.cpu 1 < 2 inference threads/);
});

classify('a soft target above the hard limit is caught', () => {
  assertCaught(problemsAfter(CLASSIFY, (o) => { classifyAnnotations(o)['autoscaling.knative.dev/target'] = '16'; }), /target 16 > containerConcurrency 2/);
});

classify('no scale to zero, or no retention, is caught', () => {
  assertCaught(problemsAfter(CLASSIFY, (o) => { classifyAnnotations(o)['autoscaling.knative.dev/min-scale'] = '1'; }), /min-scale must be "0"/);
  assertCaught(problemsAfter(CLASSIFY, (o) => { delete classifyAnnotations(o)['autoscaling.knative.dev/scale-to-zero-pod-retention-period']; }), /scale-down-delay or scale-to-zero/);
});

classify.run();

// ---------------------------------------------------------------------------------------
const ui = suite('knative manifests: ui Service vs the UI config');

ui('the UI must run the UI command and reach classify cluster-locally', () => {
  assertCaught(problemsAfter(UI, (o) => { delete o.spec.template.spec.containers[0].command; }), /command undefined/);
  const problems = problemsAfter(UI, (o) => {
    o.spec.template.spec.containers[0].env.find((e: Obj) => e.name === 'CLASSIFY_URL').value = 'http://classify.default.example.com';
  });
  assertCaught(problems, /CLASSIFY_URL host classify\.default\.example\.com, want the cluster-local classify\.klassify\.svc\.cluster\.local/);
});

ui('env the UI rejects, and more than one pod, are caught', () => {
  assertCaught(problemsAfter(UI, (o) => {
    o.spec.template.spec.containers[0].env.find((e: Obj) => e.name === 'CLASSIFY_URL').value = 'classify';
  }), /rejected by ui\/server\/config\.ts/);
  assertCaught(problemsAfter(UI, (o) => { o.spec.template.metadata.annotations['autoscaling.knative.dev/max-scale'] = '3'; }), /max-scale must be "1"/);
});

ui('the events token comes from the Secret, never from a literal value', () => {
  const problems = problemsAfter(UI, (o) => {
    o.spec.template.spec.containers[0].env.find((e: Obj) => e.name === 'UI_EVENTS_TOKEN').valueFrom.secretKeyRef.name = 'other';
  });
  assertCaught(problems, /UI_EVENTS_TOKEN must come from the Secret klassify-ui-events, key token/);
  assertCaught(problemsAfter(UI, (o) => {
    const env = o.spec.template.spec.containers[0].env.find((e: Obj) => e.name === 'UI_EVENTS_TOKEN');
    delete env.valueFrom;
    env.value = 'a-literal-token-in-the-manifest';
  }), /UI_EVENTS_TOKEN must come from the Secret/);
});

ui.run();

// ---------------------------------------------------------------------------------------
const eventing = suite('knative manifests: Triggers vs the event types in the code');

eventing('a reply type routed back to classify (a loop) is caught', () => {
  const problems = problemsAfter(CLASSIFIED, (o) => { o.spec.subscriber = { ref: { apiVersion: 'serving.knative.dev/v1', kind: 'Service', name: 'classify' } }; });
  assertCaught(problems, /classify does not handle dev\.klassify\.image\.classified/);
  assertCaught(problems, /delivering it back to classify loops/);
});

eventing('a type the UI does not relay is caught', () => {
  assertCaught(problemsAfter(CLASSIFIED, (o) => { o.spec.filter.attributes.type = 'dev.klassify.image.done'; }), /ui does not handle dev\.klassify\.image\.done/);
});

eventing('a filter on a misspelt submitted type leaves submissions undelivered', () => {
  const problems = problemsAfter(SUBMITTED, (o) => { o.spec.filter.attributes.type = 'dev.klassify.image.submited'; });
  assertCaught(problems, /no Trigger for dev\.klassify\.image\.submitted/);
});

eventing('unknown broker, subscriber and dead-letter sink are caught', () => {
  assertCaught(problemsAfter(SUBMITTED, (o) => { o.spec.broker = 'main'; }), /broker "main" is not defined/);
  assertCaught(problemsAfter(SUBMITTED, (o) => { o.spec.subscriber.ref.name = 'classifier'; }), /subscriber must reference a Knative Service/);
  assertCaught(problemsAfter(SUBMITTED, (o) => { o.spec.delivery.deadLetterSink.ref.name = 'dlq'; }), /deadLetterSink must be the ui Service at \/dead-letters/);
});

eventing('dead letters go to the UI dead-letter receiver, results to its event receiver', () => {
  assertCaught(problemsAfter(SUBMITTED, (o) => { o.spec.delivery.deadLetterSink.uri = '/events'; }), /deadLetterSink must be the ui Service at \/dead-letters/);
  assertCaught(problemsAfter(CLASSIFIED, (o) => { o.spec.subscriber.uri = '/dead-letters'; }), /UI subscriber uri must be \/events/);
});

eventing('the submitted Trigger needs retries, exponential backoff and a dead-letter sink', () => {
  assertCaught(problemsAfter(SUBMITTED, (o) => { delete o.spec.delivery.deadLetterSink; }), /needs retries with exponential backoff and a deadLetterSink/);
  assertCaught(problemsAfter(SUBMITTED, (o) => { delete o.spec.filter; }), /filter\.attributes\.type is required/);
});

eventing.run();

// ---------------------------------------------------------------------------------------
const rendered = suite('knative manifests: rendered with kustomize (base and overlays)');

/** `kubectl kustomize DIR`, or undefined (with the reason printed) where kubectl is missing. */
function kustomize(dir: string): string | undefined {
  const run = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8', timeout: 30_000 });
  if (run.error && (run.error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
  assert.is(run.status, 0, `kubectl kustomize ${dir}: ${run.stderr}`);
  return run.stdout;
}
const hasKubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0;
if (!hasKubectl) console.log('  (skipping the kustomize rendering tests: kubectl is not installed)');
const overlays = readdirSync(OVERLAYS_DIR);

rendered('the base renders with the image tag from images:, and passes every check', () => {
  if (!hasKubectl) return;
  const ms = parseRendered(kustomize(MANIFEST_DIR)!);
  assert.equal(ms.length, manifests.length);
  assert.equal(checkAll(ms, crds, {}), []);
  for (const m of ms.filter((x) => x.obj.kind === 'Service')) assert.is(classifyContainer(m.obj).image, 'dev.local/klassify:dev');
});

rendered('every overlay renders on the base and passes every check', () => {
  if (!hasKubectl) return;
  assert.ok(overlays.includes('gpu'), overlays.join());
  for (const overlay of overlays) {
    const ms = parseRendered(kustomize(path.join(OVERLAYS_DIR, overlay))!);
    assert.equal(checkAll(ms, crds, {}), [], overlay);
    const images = ms.filter((x) => x.obj.kind === 'Service').map((m) => classifyContainer(m.obj).image);
    assert.ok(images.every((i) => i.startsWith('dev.local/klassify:')), `${overlay}: ${images}`);
  }
});

rendered('the GPU overlay asks for a GPU, one worker and the WebGPU provider', () => {
  if (!hasKubectl) return;
  const ms = parseRendered(kustomize(path.join(OVERLAYS_DIR, 'gpu'))!);
  const c = classifyContainer(ms.find((m) => m.file === 'Service/classify')!.obj);
  assert.is(c.resources.limits['nvidia.com/gpu'], 1);
  const env = Object.fromEntries(c.env.map((e: Obj) => [e.name, e.value]));
  assert.is(env.KLASSIFY_WORKERS, '1');
  assert.is(env.KLASSIFY_PROVIDER, 'webgpu');
});

rendered('a rendered overlay that breaks a schema is caught (the check can fail)', () => {
  if (!hasKubectl) return;
  const ms = parseRendered(kustomize(path.join(OVERLAYS_DIR, 'gpu'))!);
  classifyContainer(ms.find((m) => m.file === 'Service/classify')!.obj).resources.limits.gpu = 1;
  ms.find((m) => m.file === 'Service/classify')!.obj.spec.template.spec.nodeSelector = { gpu: 'yes' };
  assertCaught(checkAll(ms, crds, {}), /nodeSelector: needs the feature flag kubernetes\.podspec-nodeselector/);
});

rendered.run();

const parse = suite('knative manifests: value parsers');

parse('Go durations', () => {
  assert.is(goDurationSeconds('5m'), 300);
  assert.is(goDurationSeconds('1m30s'), 90);
  assert.is(goDurationSeconds('500ms'), 0.5);
  assert.is(goDurationSeconds('0'), 0);
  assert.is(goDurationSeconds('5'), undefined);
  assert.is(goDurationSeconds('5 m'), undefined);
});

parse('ISO-8601 durations', () => {
  assert.is(isoDurationSeconds('PT0.5S'), 0.5);
  assert.is(isoDurationSeconds('PT1M2S'), 62);
  assert.is(isoDurationSeconds('P1D'), 86400);
  assert.is(isoDurationSeconds('PT'), undefined);
  assert.is(isoDurationSeconds('0.5s'), undefined);
});

parse('Kubernetes quantities', () => {
  assert.is(quantity('2'), 2);
  assert.is(quantity('500m'), 0.5);
  assert.is(quantity('512Mi'), 512 * 2 ** 20);
  assert.is(quantity('1G'), 1e9);
  assert.is(quantity('two'), undefined);
  assert.is(quantity(undefined), undefined);
});

parse.run();
