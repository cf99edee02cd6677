// `npm run test:unit` needs no model, no photos, no browser and no network. This runs it as
// a fresh clone would: in a copy of the files git knows (no .cache/, no dist/), in a network
// namespace with no network at all, with no mirror variables, and with `chromium` on PATH a
// stub that fails. A file the selection should not hold fails there.
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { copyClone } from '../../test/clone.ts';
import { offlinePrefix } from '../../test/programs.ts';

const BROWSERS = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'];

const OFFLINE = offlinePrefix('npm run test:unit: offline, no browser, no mirror');
if (OFFLINE) {
  const selection = suite<{ dir: string }>('npm run test:unit: offline, no browser, no mirror');
  selection.before((ctx) => {
    ctx.dir = mkdtempSync(path.join(tmpdir(), 'klassify-unit-'));
  });
  selection.after((ctx) => rmSync(ctx.dir, { recursive: true, force: true }));

  selection('passes in a fresh copy with nothing to download and no browser to start', async ({ dir }) => {
    const clone = path.join(dir, 'clone');
    copyClone(clone);
    const stubs = path.join(dir, 'bin');
    mkdirSync(stubs);
    for (const name of BROWSERS) {
      writeFileSync(path.join(stubs, name), `#!/bin/sh\necho "test:unit started ${name}: a browser test is in the unit selection" >&2\nexit 1\n`);
      chmodSync(path.join(stubs, name), 0o755);
    }
    const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) =>
      !/MIRROR$|^CHROMIUM_PATH$|^npm_|^PLAYWRIGHT_/i.test(name)));
    Object.assign(env, { PATH: `${stubs}${path.delimiter}${process.env.PATH}`, HOME: dir, PLAYWRIGHT_BROWSERS_PATH: path.join(dir, 'no-browsers'), npm_config_update_notifier: 'false' });

    const started = performance.now();
    const child = spawn(OFFLINE[0], [...OFFLINE.slice(1), 'npm', 'run', 'test:unit'], { cwd: clone, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk));
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    const seconds = (performance.now() - started) / 1000;
    console.log(`  npm run test:unit, offline in a fresh copy: ${seconds.toFixed(1)} s`);

    assert.is(code, 0, output.slice(-4000));
    assert.not.match(output, /e2e\.test\.ts/, 'the browser test is not selected');
    const total = Number(/Total:\s+(\d+)/.exec(output)?.[1]);
    assert.ok(total > 100, `${total} tests ran`);
    assert.is(Number(/Passed:\s+(\d+)/.exec(output)?.[1]), total, output.slice(-4000));
    for (const fetched of ['.cache/model', '.cache/fixtures', '.cache/knative']) {
      assert.not.ok(existsSync(path.join(clone, fetched)), `test:unit fetched ${fetched}`);
    }
    // The budget is 15 s on two idle cores; this bound only catches a heavy file creeping in
    // on a busy machine (the model alone takes longer to prepare).
    assert.ok(seconds < 60, `took ${seconds.toFixed(1)} s`);
  });
  selection.run();
}
