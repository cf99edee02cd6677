import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { charts, findKnee, parseHey, readPods, report, toCsv, type Step } from '../load-report.ts';

// Trimmed from real `hey -z 2s -c 40` output (hey 0.1.4) against the classify function.
const OVERLOADED = `
Summary:
  Total:	2.0400 secs
  Slowest:	1.8932 secs
  Fastest:	0.0001 secs
  Average:	0.1420 secs
  Requests/sec:	309.3137


Latency distribution:
  10% in 0.0032 secs
  25% in 0.0114 secs
  50% in 0.0250 secs
  75% in 0.0536 secs
  90% in 0.6566 secs
  95% in 0.7892 secs
  99% in 1.0476 secs

Details (average, fastest, slowest):
  DNS+dialup:	0.0007 secs, 0.0003 secs, 1.1211 secs
  resp read:	0.0002 secs, 0.0000 secs, 0.0154 secs

Status code distribution:
  [200]	101 responses
  [503]	530 responses


`;

const REFUSED = `
Summary:
  Total:	0.0024 secs
  Slowest:	0.0000 secs
  Fastest:	0.0000 secs
  Average:	 NaN secs
  Requests/sec:	1246.5170


Response time histogram:


Latency distribution:

Details (average, fastest, slowest):
  DNS+dialup:	 NaN secs, 0.0000 secs, 0.0000 secs

Status code distribution:

Error distribution:
  [3]	Get "http://127.0.0.1:8099/": dial tcp 127.0.0.1:8099: connect: connection refused

`;

const parse = suite('parseHey');

parse('reads throughput, percentiles in ms and status codes', () => {
  const s = parseHey(OVERLOADED);
  assert.is(s.seconds, 2.04);
  assert.is(s.rps, 309.31);
  assert.is(s.latencyMs.p50, 25);
  assert.is(s.latencyMs.p90, 656.6);
  assert.is(s.latencyMs.p99, 1047.6);
  assert.equal(s.statusCodes, { 200: 101, 503: 530 });
  assert.is(s.requests, 631);
  assert.equal(s.errors, {});
});

parse('reads transport errors and leaves missing percentiles null', () => {
  const s = parseHey(REFUSED);
  assert.equal(s.statusCodes, {});
  assert.is(s.latencyMs.p50, null);
  assert.equal(Object.values(s.errors), [3]);
  assert.match(Object.keys(s.errors)[0], 'connection refused');
});

parse('rejects text that is not a hey summary', () => {
  assert.throws(() => parseHey('curl: (7) Failed to connect'), /not a hey summary/);
});

parse.run();

const step = (concurrency: number, okRps: number, p50 = 10): Step => ({
  ...parseHey(OVERLOADED), concurrency, okRps, latencyMs: { p10: null, p25: null, p50, p75: null, p90: p50 * 2, p95: null, p99: p50 * 3 },
});

const knee = suite('findKnee');

knee('is the lowest concurrency within 90% of the best throughput', () => {
  const steps = [step(1, 40), step(2, 70), step(4, 92), step(8, 100), step(16, 99)];
  assert.is(findKnee(steps)?.concurrency, 4);
  assert.is(findKnee(steps, 0.99)?.concurrency, 8);
});

knee('is undefined when nothing succeeded', () => {
  assert.is(findKnee([step(1, 0)]), undefined);
});

knee.run();

const files = suite('report');

files('writes JSON, CSV and charts from a results directory', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'klassify-load-'));
  try {
    mkdirSync(path.join(dir, 'steps'));
    writeFileSync(path.join(dir, 'steps', 'c1.txt'), OVERLOADED.replace('[503]\t530', '[503]\t0'));
    writeFileSync(path.join(dir, 'steps', 'c8.txt'), OVERLOADED);
    writeFileSync(path.join(dir, 'steps.tsv'), '1\t100\t102\n8\t103\t105\n');
    writeFileSync(path.join(dir, 'pods.csv'), 'epoch,ready,total\n99,0,0\n101,1,1\n104,2,3\n');
    const { steps } = report(dir, 'test');
    assert.is(steps.length, 2);
    assert.is(steps[1].okRps, 49.51); // 101 × 200 in 2.04 s
    const json = JSON.parse(readFileSync(path.join(dir, 'results.json'), 'utf8'));
    assert.is(json.pods.length, 3);
    assert.is(json.knee, 1);
    const csv = readFileSync(path.join(dir, 'results.csv'), 'utf8').split('\n');
    assert.is(csv[0], 'concurrency,requests,seconds,rps,ok_rps,p50_ms,p90_ms,p99_ms,status_200,status_503,errors');
    assert.ok(csv[2].startsWith('8,631,2.04,309.31,49.51,25,656.6,1047.6,101,530,0'));
    for (const f of ['latency.svg', 'throughput.svg', 'pods.svg']) assert.match(readFileSync(path.join(dir, f), 'utf8'), /^<svg /);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

files('CSV leaves missing percentiles empty', () => {
  const s = { ...step(1, 0), latencyMs: { ...step(1, 0).latencyMs, p50: null } };
  assert.match(toCsv([s]).split('\n')[1], /^1,631,2.04,309.31,0,,20,30,/);
});

files.run();

const pods = suite('pods.csv');

pods('pending pods are read and charted; older files without the column still read', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'load-pods-'));
  try {
    writeFileSync(path.join(dir, 'pods.csv'), 'epoch,ready,pending,total\n100,1,0,1\n102,1,3,4\n104,nan,nan,nan\n');
    const samples = readPods(dir);
    assert.equal(samples[1], { t: 102, ready: 1, pending: 3, total: 4 });
    assert.ok(Number.isNaN(samples[2].total));
    assert.match(charts([], samples)['pods.svg'], 'pending pods');
    writeFileSync(path.join(dir, 'pods.csv'), 'epoch,ready,total\n100,1,1\n');
    assert.equal(readPods(dir), [{ t: 100, ready: 1, total: 1 }]);
    assert.not.match(charts([], readPods(dir))['pods.svg'], 'pending pods');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

pods.run();
