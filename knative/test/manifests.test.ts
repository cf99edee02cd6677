// The manifests in knative/ pass every offline check, and each check catches the mistake
// it exists for: every suite feeds a broken copy of a real manifest to the checker.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  checkAll, checkSchema, goDurationSeconds, isoDurationSeconds, loadManifests, quantity, type Manifest, type Obj,
} from './check.ts';

const loaded = loadManifests();
const manifests = loaded.manifests;

/** checkAll over the real manifests, with `file` changed by `edit` (on a deep copy). */
function problemsAfter(file: string, edit: (obj: Obj) => void): string[] {
  const copy: Manifest[] = structuredClone(manifests);
  const target = copy.find((m) => m.file === file);
  assert.ok(target, `no manifest ${file}`);
  edit(target.obj);
  return checkAll(copy);
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

// ---------------------------------------------------------------------------------------
const files = suite('knative manifests: files');

files('every file is one resource, named NNN-name.yaml, in apply order', () => {
  assert.equal(loaded.problems, []);
  assert.equal(
    manifests.map((m) => `${m.obj.kind}/${m.obj.metadata.name}`),
    ['Namespace/klassify', 'Service/classify', 'Service/ui', 'Broker/default',
      'Trigger/image-submitted', 'Trigger/image-classified', 'Trigger/image-rejected'],
  );
});

files('all checks pass on the real manifests', () => {
  assert.equal(checkAll(manifests), []);
});

files('a file with two documents or a bad name is reported', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'knative-'));
  writeFileSync(path.join(dir, '100-two.yaml'), 'kind: A\n---\nkind: B\n');
  writeFileSync(path.join(dir, 'Broker.yaml'), 'kind: Broker\n');
  const { problems } = loadManifests(dir);
  assertCaught(problems, /100-two\.yaml: 2 documents/);
  assertCaught(problems, /Broker\.yaml: name must be NNN/);
});

files('a Trigger before the Service it references is reported', () => {
  const swapped = [...manifests];
  [swapped[1], swapped[4]] = [swapped[4], swapped[1]];
  assertCaught(checkAll(swapped), /Service must come before Trigger/);
});

files.run();

// ---------------------------------------------------------------------------------------
const schema = suite('knative manifests: kubernetes-models schemas');

schema('each kind goes through its model class', () => {
  for (const m of manifests) assert.equal(checkSchema(m), [], m.file);
});

schema('a wrong type is rejected by the Knative Service schema', () => {
  const problems = problemsAfter(CLASSIFY, (o) => { o.spec.template.spec.containerConcurrency = 'eight'; });
  assertCaught(problems, /200-classify-service\.yaml: schema: .*containerConcurrency/);
});

schema('a wrong apiVersion is rejected by the Trigger schema', () => {
  assertCaught(problemsAfter(SUBMITTED, (o) => { o.apiVersion = 'eventing.knative.dev/v1beta1'; }), /unsupported kind/);
  assertCaught(checkSchema({ file: 'x.yaml', obj: { apiVersion: 'eventing.knative.dev/v1', kind: 'Trigger', spec: { broker: 5 } } }), /schema/);
});

schema.run();

// ---------------------------------------------------------------------------------------
const keys = suite('knative manifests: unknown keys');

keys('a misspelt probe (schema-valid, rejected by Knative) is caught', () => {
  const problems = problemsAfter(CLASSIFY, (o) => {
    const c = classifyContainer(o);
    c.readinesProbe = c.readinessProbe;
    delete c.readinessProbe;
  });
  assertCaught(problems, /containers\[0\]\.readinesProbe: unknown key/);
  assertCaught(problems, /readinessProbe: missing/);
});

keys('a field Knative masks out (lifecycle, pod-level hostNetwork) is caught', () => {
  assertCaught(problemsAfter(CLASSIFY, (o) => { classifyContainer(o).lifecycle = {}; }), /lifecycle: unknown key/);
  assertCaught(problemsAfter(CLASSIFY, (o) => { o.spec.template.spec.hostNetwork = true; }), /hostNetwork: unknown key/);
});

keys('a misspelt autoscaling annotation is caught', () => {
  const problems = problemsAfter(CLASSIFY, (o) => { classifyAnnotations(o)['autoscaling.knative.dev/minScale'] = '0'; });
  assertCaught(problems, /minScale: unknown autoscaling annotation/);
});

keys('an unknown key in a Trigger delivery spec is caught', () => {
  assertCaught(problemsAfter(SUBMITTED, (o) => { o.spec.delivery.retries = 5; }), /spec\.delivery\.retries: unknown key/);
});

keys.run();

// ---------------------------------------------------------------------------------------
const ranges = suite('knative manifests: value ranges');

ranges('annotation values out of range are caught', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['target-utilization-percentage', '170', /target-utilization-percentage: "170" is not a number from 1 to 100/],
    ['initial-scale', '0', /initial-scale: "0" is not a number from 1 to/],
    ['max-scale', 'ten', /max-scale: "ten" is not an integer/],
    ['scale-to-zero-pod-retention-period', '5 minutes', /not a duration/],
    ['class', 'kpa', /not one of/],
  ];
  for (const [key, value, pattern] of cases) {
    assertCaught(problemsAfter(CLASSIFY, (o) => { classifyAnnotations(o)[`autoscaling.knative.dev/${key}`] = value; }), pattern);
  }
});

ranges('an unquoted annotation value is caught', () => {
  assertCaught(problemsAfter(CLASSIFY, (o) => { classifyAnnotations(o)['autoscaling.knative.dev/max-scale'] = 10; }), /quoted string/);
});

ranges('min-scale above max-scale is caught', () => {
  assertCaught(problemsAfter(CLASSIFY, (o) => { classifyAnnotations(o)['autoscaling.knative.dev/min-scale'] = '20'; }), /min-scale: 20 > max-scale 5/);
});

ranges('timeout, resources and delivery out of range are caught', () => {
  assertCaught(problemsAfter(CLASSIFY, (o) => { o.spec.template.spec.timeoutSeconds = 3600; }), /timeoutSeconds: "3600"/);
  assertCaught(problemsAfter(CLASSIFY, (o) => { classifyContainer(o).resources.requests.memory = '1Gi'; }), /memory request 1Gi > limit 512Mi/);
  assertCaught(problemsAfter(CLASSIFY, (o) => { classifyContainer(o).resources.limits.cpu = 'two'; }), /limits\.cpu: missing or not a quantity/);
  assertCaught(problemsAfter(SUBMITTED, (o) => { o.spec.delivery.backoffDelay = '0.5s'; }), /backoffDelay: "0.5s" is not an ISO-8601/);
  assertCaught(problemsAfter(SUBMITTED, (o) => { o.spec.delivery.backoffPolicy = 'fibonacci'; }), /backoffPolicy/);
});

ranges('security settings are required', () => {
  assertCaught(problemsAfter(CLASSIFY, (o) => { classifyContainer(o).securityContext.runAsNonRoot = false; }), /runAsNonRoot: must be true/);
  assertCaught(problemsAfter(UI, (o) => { o.spec.template.spec.volumes = []; }), /read-only root needs a volume at \/tmp/);
});

ranges.run();

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

classify('probes must hit the real health paths on an explicit port 8080', () => {
  assertCaught(problemsAfter(CLASSIFY, (o) => { classifyContainer(o).readinessProbe.httpGet.path = '/healthz'; }), /readinessProbe\.httpGet\.path: "\/healthz", want \/health\/readiness/);
  assertCaught(problemsAfter(CLASSIFY, (o) => { delete classifyContainer(o).livenessProbe.httpGet.port; }), /livenessProbe\.httpGet\.port: undefined, want an explicit 8080/);
  assertCaught(problemsAfter(CLASSIFY, (o) => { classifyContainer(o).ports[0].containerPort = 3000; }), /want exactly one containerPort 8080/);
});

classify('the image must be dev.local/klassify:<tag>', () => {
  assertCaught(problemsAfter(CLASSIFY, (o) => { classifyContainer(o).image = 'docker.io/klassify:latest'; }), /must start with dev\.local\/klassify:/);
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
  assertCaught(problemsAfter(SUBMITTED, (o) => { o.spec.delivery.deadLetterSink.ref.name = 'dlq'; }), /deadLetterSink dlq is not a Service/);
});

eventing('the submitted Trigger needs retries, exponential backoff and a dead-letter sink', () => {
  assertCaught(problemsAfter(SUBMITTED, (o) => { delete o.spec.delivery.deadLetterSink; }), /needs retries with exponential backoff and a deadLetterSink/);
  assertCaught(problemsAfter(SUBMITTED, (o) => { delete o.spec.filter; }), /filter\.attributes\.type is required/);
});

eventing.run();

// ---------------------------------------------------------------------------------------
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
