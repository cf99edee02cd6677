// Every shell script in the repository passes shellcheck (following sourced files).
// shellcheck is a Debian package that .ci/run installs; without it this test fails
// rather than skips, so a CI image that lost it cannot pass silently.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './shims.ts';

const DIRS = ['scripts', 'scripts/lib', 'container'];
const scripts = DIRS.flatMap((dir) =>
  readdirSync(path.join(ROOT, dir)).filter((f) => f.endsWith('.sh')).map((f) => path.join(dir, f)),
);

test('the script list covers the deployment and container scripts', () => {
  for (const expected of ['scripts/minikube-up.sh', 'scripts/deploy.sh', 'scripts/teardown.sh', 'scripts/test-container.sh',
    'scripts/build-base-image.sh', 'scripts/versions.sh', 'scripts/lib/knative.sh', 'scripts/load-test.sh', 'scripts/pod-capacity.sh', 'container/prune-node-modules.sh']) {
    assert.ok(scripts.includes(expected), `${expected} not found`);
  }
});

test('shellcheck passes on every script', () => {
  const version = spawnSync('shellcheck', ['--version'], { encoding: 'utf8' });
  assert.ok(!version.error, 'shellcheck is not installed: apt-get install -y shellcheck (.ci/run does)');
  const run = spawnSync('shellcheck', ['-x', ...scripts], { cwd: ROOT, encoding: 'utf8' });
  assert.is(run.status, 0, run.stdout + run.stderr);
});

test('shellcheck fails on a script with a known defect (the check can fail)', () => {
  const run = spawnSync('shellcheck', ['-s', 'bash', '-'], { input: 'rm -rf $dir/*\n', encoding: 'utf8' });
  assert.is.not(run.status, 0);
  assert.match(run.stdout, 'SC2086');
});

test.run();
