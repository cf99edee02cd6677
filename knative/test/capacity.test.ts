// What the default Minikube profile holds, computed from the manifests, the profile in
// scripts/versions.sh and the install-overhead table in docs/scaling.md: at least 4
// classify pods beside the UI, and a rollout's new pods while the old revision is at
// full scale (the scheduler counts requests, not use).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { loadManifests, quantity, type Obj } from './check.ts';
import { ROOT, versions } from '../../scripts/test/shims.ts';

export interface Overhead {
  parts: Array<{ part: string; cpu: number }>;
  queueProxyCpu: number;
}

/** Reads the two tables of docs/scaling.md: the install overhead and the per-pod sidecar. */
export function readOverhead(markdown: string): Overhead {
  const block = /<!-- install-overhead[^>]*-->([\s\S]*?)<!-- \/install-overhead -->/.exec(markdown);
  if (!block) throw new Error('docs/scaling.md: no install-overhead table');
  const parts = rows(block[1]).map(([part, cpu]) => ({ part, cpu: Number(cpu) }));
  const qp = rows(markdown).find(([part]) => part.startsWith('queue-proxy'));
  if (!qp) throw new Error('docs/scaling.md: no queue-proxy row');
  for (const p of parts) if (!Number.isFinite(p.cpu)) throw new Error(`docs/scaling.md: "${p.part}" has no CPU number`);
  return { parts, queueProxyCpu: Number(qp[1]) };
}

function rows(markdown: string): string[][] {
  return markdown.split('\n')
    .filter((l) => l.startsWith('|') && !/^\|[-:| ]+\|$/.test(l) && !l.startsWith('| Part') && !l.startsWith('| Per pod'))
    .map((l) => l.slice(1, -1).split('|').map((c) => c.trim()));
}

export interface Capacity {
  free: number;
  classifyPod: number;
  uiPod: number;
  maxScale: number;
  initialScale: number;
  /** Classify pods that fit beside one UI pod. */
  classifyPodsThatFit: number;
  /** Requests while the old revision is at max-scale and the new one starts its first pods. */
  duringRollout: number;
}

export function capacity(profileCpus: number, overhead: Overhead, services: Obj[]): Capacity {
  const svc = (name: string) => {
    const s = services.find((o) => o.kind === 'Service' && o.metadata?.name === name);
    if (!s) throw new Error(`no Service ${name}`);
    return s;
  };
  const podCpu = (s: Obj) => (quantity(s.spec.template.spec.containers[0].resources?.requests?.cpu) ?? NaN) + overhead.queueProxyCpu;
  const ann = (s: Obj, key: string, fallback: string) => Number(s.spec.template.metadata?.annotations?.[`autoscaling.knative.dev/${key}`] ?? fallback);
  const classify = svc('classify');
  const ui = svc('ui');
  const free = profileCpus - overhead.parts.reduce((sum, p) => sum + p.cpu, 0);
  const classifyPod = podCpu(classify);
  const uiPod = podCpu(ui);
  const maxScale = ann(classify, 'max-scale', '0');
  const initialScale = ann(classify, 'initial-scale', '1');
  const uiMax = ann(ui, 'max-scale', '0');
  const round = (n: number) => Math.round(n * 1000) / 1000;
  return {
    free: round(free),
    classifyPod: round(classifyPod),
    uiPod: round(uiPod),
    maxScale,
    initialScale,
    classifyPodsThatFit: Math.floor(round((free - uiPod * uiMax) / classifyPod)),
    duringRollout: round(maxScale * classifyPod + uiMax * uiPod + initialScale * classifyPod + uiPod),
  };
}

const docs = readFileSync(path.join(ROOT, 'docs/scaling.md'), 'utf8');
const overhead = readOverhead(docs);
const { manifests } = loadManifests();
const objs = manifests.map((m) => m.obj);
const cpus = Number(versions().MINIKUBE_CPUS);

const test = suite('capacity of the default Minikube profile');

test('the overhead table is the one the docs state (2.375 CPUs, 25m per queue-proxy)', () => {
  assert.is(Math.round(overhead.parts.reduce((s, p) => s + p.cpu, 0) * 1000) / 1000, 2.375);
  assert.is(overhead.queueProxyCpu, 0.025);
  assert.ok(overhead.parts.length >= 5, JSON.stringify(overhead.parts));
});

test('at least 4 classify pods fit beside the UI, and max-scale allows them', () => {
  const c = capacity(cpus, overhead, objs);
  assert.ok(c.classifyPodsThatFit >= 4, JSON.stringify(c));
  assert.ok(c.maxScale >= 4, `max-scale ${c.maxScale}`);
  assert.ok(c.maxScale <= c.classifyPodsThatFit, `max-scale ${c.maxScale} > the ${c.classifyPodsThatFit} pods that fit: pods would stay Pending`);
});

test('a rollout is schedulable while the old revision is at max-scale', () => {
  const c = capacity(cpus, overhead, objs);
  assert.ok(c.duringRollout <= c.free, `a rollout needs ${c.duringRollout} CPUs, ${c.free} are free (${JSON.stringify(c)})`);
});

test('the checks can fail: 2-CPU pods (the old sizing) or a smaller profile do not fit', () => {
  const big = structuredClone(objs);
  big.find((o) => o.metadata?.name === 'classify')!.spec.template.spec.containers[0].resources.requests.cpu = '2';
  assert.is(capacity(cpus, overhead, big).classifyPodsThatFit, 1);
  const small = capacity(4, overhead, objs);
  assert.ok(small.duringRollout > small.free);
  assert.ok(small.classifyPodsThatFit < 4);
});

test('a table without numbers is refused, not read as zero', () => {
  assert.throws(() => readOverhead('<!-- install-overhead -->\n| Part | CPU |\n|---|--:|\n| etcd | lots |\n<!-- /install-overhead -->\n| queue-proxy | 0.025 |'), /no CPU number/);
  assert.throws(() => readOverhead('no table'), /no install-overhead table/);
});

test.run();
