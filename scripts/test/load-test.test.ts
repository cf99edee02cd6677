// scripts/load-test.sh for real: a short run against the classify function on loopback,
// with the real hey, curl and report, on Linux and again on the macOS-like platform (bash
// 3.2, BSD tools; scripts/test/shims.ts). A step or a report that fails makes it exit non-zero.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { RunningService } from '../../functions/classify/src/server.ts';
import { requireProgram, startTestService } from '../../test/support.ts';
import { platforms, runScriptAsync } from './shims.ts';

const HEY = requireProgram({
  name: 'hey',
  candidates: ['hey'],
  install: 'Install it with `apt-get install -y hey` (brew install hey on a Mac).',
  suite: 'scripts/load-test.sh, a short local run',
});
const HEY_FAILS_AT_TWO = `#!/usr/bin/env bash
[[ " $* " == *" -c 2 "* ]] && { echo "hey: connection reset" >&2; exit 1; }
exec ${JSON.stringify(HEY)} "$@"`;
const HEY_PRINTS_NONSENSE = `#!/usr/bin/env bash
echo "this is not hey's summary"`;

for (const platform of HEY ? platforms('scripts/load-test.sh, a short local run') : []) {
  const on = platform === 'macos' ? ' [macOS-like: bash 3.2, BSD tools]' : '';
  const load = suite<{ service?: RunningService; out: string }>(`scripts/load-test.sh, a short local run${on}`, { out: '' });

  load.before(async (ctx) => {
    ctx.service = await startTestService();
  });
  load.after(async (ctx) => {
    await ctx.service?.shutdown();
  });
  load.before.each((ctx) => {
    ctx.out = mkdtempSync(path.join(os.tmpdir(), 'klassify-load-'));
  });
  load.after.each((ctx) => {
    rmSync(ctx.out, { recursive: true, force: true });
  });

  const run = (ctx: { service?: RunningService; out: string }, shims: Record<string, string> = {}) =>
    runScriptAsync('scripts/load-test.sh', ['--url', `${ctx.service!.url}/classify`, '--levels', '1 2', '--duration', '1s', '--pause', '0', '--out', ctx.out, '--label', 'short'],
      {}, { platform, shims, timeoutMs: 100_000 });

  load('two steps against the function: results, charts and the HTML report', async (ctx) => {
    const r = await run(ctx);
    assert.is(r.status, 0, r.stderr);
    const results = JSON.parse(readFileSync(path.join(ctx.out, 'results.json'), 'utf8'));
    assert.equal(results.steps.map((s: { concurrency: number }) => s.concurrency), [1, 2]);
    for (const step of results.steps) {
      assert.ok(step.statusCodes['200'] > 0, JSON.stringify(step));
      assert.ok(step.ended > step.started, JSON.stringify(step));
    }
    const meta = results.meta;
    assert.is(meta.os, platform === 'macos' ? 'Darwin' : 'Linux');
    assert.type(meta.cpus, 'number');
    assert.match(meta.loadavgBefore, /^\d+\.\d+ \d+\.\d+ \d+\.\d+$/);
    // Sub-second step times: bash 5's EPOCHREALTIME, or perl where bash 3.2 and BSD date have none.
    assert.match(readFileSync(path.join(ctx.out, 'steps.tsv'), 'utf8'), /^1\t\d+\.\d+\t\d+\.\d+\n2\t/);
    const html = readFileSync(path.join(ctx.out, 'report.html'), 'utf8');
    assert.match(html, '<h2>Per step</h2>');
    assert.match(html, 'did not go through Knative');
    for (const f of ['results.csv', 'latency.svg', 'throughput.svg']) assert.ok(existsSync(path.join(ctx.out, f)), f);
    assert.match(r.stderr, 'report.html (open it in a browser)');
  });

  load('a step that fails stops the run with a non-zero exit', async (ctx) => {
    const r = await run(ctx, { hey: HEY_FAILS_AT_TWO });
    assert.is.not(r.status, 0);
    assert.not.ok(existsSync(path.join(ctx.out, 'report.html')));
  });

  load('a report that fails is a failed run', async (ctx) => {
    const r = await run(ctx, { hey: HEY_PRINTS_NONSENSE });
    assert.is.not(r.status, 0);
    assert.match(r.stderr, 'not a hey summary');
    assert.match(r.stderr, 'the report failed');
  });

  load.run();
}
