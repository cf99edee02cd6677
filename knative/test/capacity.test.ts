// What a Minikube node holds, computed here from the manifests (knative/sizing.ts) and the
// install-overhead table in docs/scaling.md, and compared with the arithmetic the scripts
// run before `minikube start` and before each deploy (scripts/lib/capacity.sh): the same
// max-scale for 4, 6 and 8 CPUs, the same per-pod numbers read from the same place, and the
// same profile for hosts of 8 GB and 16 GB. The scheduler counts requests, not use, so this
// is what decides whether a pod stays Pending.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { classifySizing, readManifest, resourcesOf, CLASSIFY_MANIFEST, UI_MANIFEST } from '../sizing.ts';
import { ROOT } from '../../scripts/test/shims.ts';

export interface Overhead {
  parts: Array<{ part: string; cpu: number; memoryMiB: number }>;
  queueProxy: { cpu: number; memoryMiB: number };
}

/** Reads the two tables of docs/scaling.md: the install overhead and the per-pod sidecar. */
export function readOverhead(markdown: string): Overhead {
  const block = /<!-- install-overhead[^>]*-->([\s\S]*?)<!-- \/install-overhead -->/.exec(markdown);
  if (!block) throw new Error('docs/scaling.md: no install-overhead table');
  const parts = rows(block[1]).map(([part, cpu, memory]) => ({ part, cpu: Number(cpu), memoryMiB: Number(memory) }));
  for (const p of parts) {
    if (!Number.isFinite(p.cpu) || !Number.isFinite(p.memoryMiB)) throw new Error(`docs/scaling.md: "${p.part}" has no CPU or memory number`);
  }
  const qp = rows(markdown).find(([part]) => part.startsWith('queue-proxy'));
  if (!qp) throw new Error('docs/scaling.md: no queue-proxy row');
  return { parts, queueProxy: { cpu: Number(qp[1]), memoryMiB: Number(qp[2]) } };
}

function rows(markdown: string): string[][] {
  return markdown.split('\n')
    .filter((l) => l.startsWith('|') && !/^\|[-:| ]+\|$/.test(l) && !l.startsWith('| Part') && !l.startsWith('| Per pod'))
    .map((l) => l.slice(1, -1).split('|').map((c) => c.trim()));
}

const millis = (cores: number) => Math.round(cores * 1000);

/**
 * The same rule as scripts/lib/capacity.sh, written again from the parsed manifests:
 * the classify pods that fit beside the install and one UI pod, and max-scale, the most
 * that still leave room for a rollout's first classify and UI pods.
 */
export function capacity(cpuMilli: number, memoryMiB: number, overhead: Overhead, classify = resourcesOf(readManifest(CLASSIFY_MANIFEST)), ui = resourcesOf(readManifest(UI_MANIFEST))) {
  const free = { cpu: cpuMilli - millis(overhead.parts.reduce((s, p) => s + p.cpu, 0)), mem: memoryMiB - overhead.parts.reduce((s, p) => s + p.memoryMiB, 0) };
  const pod = { cpu: millis(classify.requests.cpu + overhead.queueProxy.cpu), mem: classify.requests.memoryMiB + overhead.queueProxy.memoryMiB };
  const uiPod = { cpu: millis(ui.requests.cpu + overhead.queueProxy.cpu), mem: ui.requests.memoryMiB + overhead.queueProxy.memoryMiB };
  const fits = (classifyPods: number, uiPods: number) =>
    classifyPods * pod.cpu + uiPods * uiPod.cpu <= free.cpu && classifyPods * pod.mem + uiPods * uiPod.mem <= free.mem;
  let besideUi = 0;
  while (fits(besideUi + 1, 1)) besideUi++;
  let maxScale = 0;
  while (fits(maxScale + 2, 2)) maxScale++;
  if (!fits(1, 1)) besideUi = 0;
  return { maxScale, besideUi };
}

/** Runs bash with common.sh and capacity.sh sourced, the way the scripts do. */
function capacitySh(commands: string): string {
  const run = spawnSync('bash', ['-c', `set -euo pipefail\nROOT=${JSON.stringify(ROOT)}\nsource "$ROOT/scripts/lib/common.sh"\nsource "$ROOT/scripts/lib/capacity.sh"\n${commands}`], { encoding: 'utf8' });
  assert.is(run.status, 0, run.stderr);
  return run.stdout.trim();
}

const overhead = readOverhead(readFileSync(path.join(ROOT, 'docs/scaling.md'), 'utf8'));
const PROFILES = Object.fromEntries(capacitySh('echo "$KLASSIFY_PROFILES"').split(' ').map((e) => {
  const [name, cpus, mib] = e.split(':');
  return [name, { cpus: Number(cpus), mib: Number(mib) }];
}));

const test = suite('capacity: the scripts\' arithmetic against the manifests');

test('the install overhead in the scripts is the docs table\'s sum (2.375 CPUs, 1444 MiB; 25m per queue-proxy)', () => {
  const [cpu, mib, qpCpu, qpMib] = capacitySh('echo "$INSTALL_CPU_MILLI $INSTALL_MEMORY_MIB $QUEUE_PROXY_CPU_MILLI $QUEUE_PROXY_MEMORY_MIB"').split(' ').map(Number);
  assert.is(cpu, millis(overhead.parts.reduce((s, p) => s + p.cpu, 0)));
  assert.is(mib, overhead.parts.reduce((s, p) => s + p.memoryMiB, 0));
  assert.is(cpu, 2375);
  assert.is(mib, 1444);
  assert.equal([qpCpu, qpMib], [millis(overhead.queueProxy.cpu), overhead.queueProxy.memoryMiB]);
  assert.ok(overhead.parts.length >= 5, JSON.stringify(overhead.parts));
});

test('the scripts read the per-pod requests from the manifests, as the YAML parser does', () => {
  const [classifyCpu, classifyMib, uiCpu, uiMib] = capacitySh('read_pod_requests; echo "$CLASSIFY_POD_CPU $CLASSIFY_POD_MIB $UI_POD_CPU $UI_POD_MIB"').split(' ').map(Number);
  const classify = classifySizing();
  const ui = resourcesOf(readManifest(UI_MANIFEST));
  assert.equal([classifyCpu, classifyMib], [millis(classify.requests.cpu + overhead.queueProxy.cpu), classify.requests.memoryMiB]);
  assert.equal([uiCpu, uiMib], [millis(ui.requests.cpu + overhead.queueProxy.cpu), ui.requests.memoryMiB]);
});

test('4, 6 and 8 CPUs: max-scale 1, 5 and 9, the same in the scripts and here', () => {
  const expected: Record<number, [number, number]> = { 4: [1, 2], 6: [5, 6], 8: [9, 10] };
  const profiles = Object.keys(expected).map((cpus) => Object.values(PROFILES).find((p) => p.cpus === Number(cpus))!);
  assert.ok(profiles.every(Boolean), 'a profile of 4, 6 and 8 CPUs');
  const fromBash = capacitySh(profiles.map((p) => `capacity_for ${p.cpus * 1000} ${p.mib}`).join('\n')).split('\n');
  Object.values(expected).forEach(([maxScale, besideUi], i) => {
    const { cpus, mib } = profiles[i];
    assert.equal(capacity(cpus * 1000, mib, overhead), { maxScale, besideUi }, `${cpus} CPUs`);
    assert.is(fromBash[i], `${maxScale} ${besideUi}`, `${cpus} CPUs in the scripts`);
  });
});

test('the scripts and this test agree on every node from 2 to 16 CPUs and 2 to 16 GiB', () => {
  const nodes: Array<[number, number]> = [];
  for (let cpu = 2000; cpu <= 16000; cpu += 250) for (const mib of [2048, 3072, 4096, 6144, 16384]) nodes.push([cpu, mib]);
  const fromBash = capacitySh(nodes.map(([c, m]) => `capacity_for ${c} ${m}`).join('\n')).split('\n');
  // Parsed once: capacity() would read both manifests again for each of the nodes.
  const classify = resourcesOf(readManifest(CLASSIFY_MANIFEST));
  const ui = resourcesOf(readManifest(UI_MANIFEST));
  nodes.forEach(([c, m], i) => {
    const { maxScale, besideUi } = capacity(c, m, overhead, classify, ui);
    assert.is(fromBash[i], `${maxScale} ${besideUi}`, `${c}m CPU, ${m} MiB`);
  });
});

test('on every profile the rollout takes one classify slot: max-scale is the pods beside the UI less one', () => {
  for (const { cpus, mib } of Object.values(PROFILES)) {
    const c = capacity(cpus * 1000, mib, overhead);
    assert.ok(c.maxScale >= 1, JSON.stringify({ cpus, ...c }));
    assert.is(c.maxScale, c.besideUi - 1, JSON.stringify({ cpus, ...c }));
  }
});

test('the base manifest\'s max-scale is the default profile\'s, so a plain `kubectl apply -k` fits it too', () => {
  const base = parse(readFileSync(CLASSIFY_MANIFEST, 'utf8')).spec.template.metadata.annotations['autoscaling.knative.dev/max-scale'];
  assert.is(Number(base), capacity(PROFILES.default.cpus * 1000, PROFILES.default.mib, overhead).maxScale);
});

test('hosts of 4, 6 and 8 CPUs with 8 or 16 GB get the largest profile that leaves 1 GiB', () => {
  const hosts: Array<[number, number, string]> = [
    [4, 7800, 'small 4 5120'],
    [6, 7800, 'default 6 6144'],
    [8, 7800, 'default 6 6144'],
    [8, 15900, 'large 8 8192'],
    [16, 64000, 'large 8 8192'],
    [4, 16000, 'small 4 5120'],
    [4, 6000, 'none'], // small needs 5120 + 1024 MiB
    [3, 16000, 'none'],
  ];
  // One shell for all, with the pods' requests read first in it, as minikube-up.sh does.
  const chosen = capacitySh(['read_pod_requests', ...hosts.map(([cpus, mib]) => `choose_profile ${cpus} ${mib} || echo none`)].join('\n')).split('\n');
  hosts.forEach(([cpus, mib, profile], i) => assert.is(chosen[i], profile, `a host of ${cpus} CPUs and ${mib} MiB`));
});

test('the checks can fail: 2-CPU pods (the old sizing) or 3 CPUs hold no pod with a rollout', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'klassify-capacity-'));
  try {
    const svc = readManifest(CLASSIFY_MANIFEST);
    svc.spec.template.spec.containers[0].resources.requests.cpu = '2';
    const file = path.join(dir, 'classify.yaml');
    writeFileSync(file, stringify(svc));
    assert.is(capacitySh(`CLASSIFY_MANIFEST=${JSON.stringify(file)}; capacity_for 6000 6144`), '0 1');
    assert.equal(capacity(6000, 6144, overhead, resourcesOf(svc)), { maxScale: 0, besideUi: 1 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(capacity(3000, 6144, overhead), { maxScale: 0, besideUi: 0 });
});

test('a table without numbers is refused, not read as zero', () => {
  assert.throws(() => readOverhead('<!-- install-overhead -->\n| Part | CPU | Memory |\n|---|--:|--:|\n| etcd | lots | 1 |\n<!-- /install-overhead -->\n| queue-proxy | 0.025 | 0 |'), /no CPU or memory number/);
  assert.throws(() => readOverhead('no table'), /no install-overhead table/);
});

test.run();
