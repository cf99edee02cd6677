// Every shell script in the repository passes shellcheck (following sourced files).
// shellcheck is a Debian package that .ci/run installs. Without it the shellcheck suite
// skips with a printed reason, except in CI, where it fails: a CI image that lost it cannot
// pass silently.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { requireProgram, startEarly } from '../../test/programs.ts';
import { ROOT } from './shims.ts';

const DIRS = ['scripts', 'scripts/lib', 'container'];
const scripts = DIRS.flatMap((dir) =>
  readdirSync(path.join(ROOT, dir)).filter((f) => f.endsWith('.sh')).map((f) => path.join(dir, f)),
);

const list = suite('shell scripts');
list('the script list covers the deployment and container scripts', () => {
  for (const expected of ['scripts/minikube-up.sh', 'scripts/deploy.sh', 'scripts/teardown.sh', 'scripts/test-container.sh',
    'scripts/build-base-image.sh', 'scripts/versions.sh', 'scripts/lib/knative.sh', 'scripts/lib/capacity.sh', 'scripts/lib/platform.sh', 'scripts/load-test.sh', 'scripts/pod-capacity.sh', 'container/prune-node-modules.sh']) {
    assert.ok(scripts.includes(expected), `${expected} not found`);
  }
});
list.run();

const SHELLCHECK = requireProgram({
  name: 'shellcheck',
  env: 'SHELLCHECK_PATH',
  candidates: ['shellcheck'],
  install: 'Install it with `apt-get install -y shellcheck` (.ci/run does).',
  suite: 'shellcheck',
});
if (SHELLCHECK) {
  // Seconds of CPU: started now, it runs beside the other test files (startEarly).
  const checked = startEarly(() => promisify(execFile)(SHELLCHECK, ['-x', ...scripts], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 }).then(
    () => ({ status: 0, output: '' }),
    (err: { code?: number | string; stdout?: string; stderr?: string }) => ({ status: err.code, output: `${err.stdout}${err.stderr}` }),
  ));
  const shellcheck = suite('shellcheck');
  shellcheck('shellcheck passes on every script', async () => {
    const { status, output } = await checked;
    assert.is(status, 0, output);
  });
  shellcheck('shellcheck fails on a script with a known defect (the check can fail)', () => {
    const run = spawnSync(SHELLCHECK, ['-s', 'bash', '-'], { input: 'rm -rf $dir/*\n', encoding: 'utf8' });
    assert.is.not(run.status, 0);
    assert.match(run.stdout, 'SC2086');
  });
  shellcheck.run();
}
