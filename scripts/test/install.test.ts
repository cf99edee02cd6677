// `npm install` on npm 10 and 11 downloads nothing but npm packages. npm >= 11.16 runs only
// the install scripts that package.json's allowScripts allows; npm 10 runs them all, so
// ONNX Runtime's (which fetches CUDA libraries from NuGet) must end at once there too:
// .npmrc's `onnxruntime-node-install=skip` reaches it as npm_config_onnxruntime_node_install.
// (.ci/run also installs a clean clone with npm 10.)
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { offlinePrefix } from '../../test/programs.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const ORT = path.join(ROOT, 'node_modules/onnxruntime-node');
const ORT_INSTALL = path.join(ORT, 'script/install.js');

/** The environment without what an outer `npm test` passed down, so npm reads .npmrc afresh. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(npm_|ONNXRUNTIME_NODE_)/i.test(name)));
  return { ...env, ...extra };
}

const declared = suite('install: every install script is decided');
declared('allowScripts names each package that has an install script; ONNX Runtime is denied', () => {
  const lock = JSON.parse(readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { hasInstallScript?: boolean }> };
  const allow = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { allowScripts: Record<string, boolean> }).allowScripts;
  const withScripts = Object.entries(lock.packages)
    .filter(([, meta]) => meta.hasInstallScript)
    .map(([where]) => where.slice(where.lastIndexOf('node_modules/') + 'node_modules/'.length));
  assert.ok(withScripts.includes('onnxruntime-node'), 'the lockfile marks ONNX Runtime as having an install script');
  for (const name of withScripts) assert.type(allow[name], 'boolean', `allowScripts has no entry for ${name}`);
  assert.is(allow['onnxruntime-node'], false);
});
declared('.npmrc tells ONNX Runtime\'s script to skip, and npm passes the key on to scripts', () => {
  assert.match(readFileSync(path.join(ROOT, '.npmrc'), 'utf8'), /^onnxruntime-node-install=skip$/m);
  const npm = spawnSync('npm', ['exec', '--offline', '-c', 'node -p process.env.npm_config_onnxruntime_node_install'], { cwd: ROOT, env: cleanEnv(), encoding: 'utf8' });
  assert.is(npm.status, 0, npm.stderr);
  assert.is(npm.stdout.trim(), 'skip');
});
declared.run();

const OFFLINE = offlinePrefix('install: ONNX Runtime\'s script with no network');
if (OFFLINE) {
  const offline = suite('install: ONNX Runtime\'s script with no network');
  const run = (env: NodeJS.ProcessEnv) => spawnSync(OFFLINE[0], [...OFFLINE.slice(1), process.execPath, ORT_INSTALL], { cwd: ORT, env, encoding: 'utf8', timeout: 60_000 });

  offline('with the key as npm sets it, it exits at once and fetches nothing', () => {
    const result = run(cleanEnv({ npm_config_onnxruntime_node_install: 'skip' }));
    assert.is(result.status, 0, result.stderr);
  });
  offline('without it, it reaches for the network (so the check above can fail)', () => {
    const metadata = createRequire(ORT_INSTALL)('./install-metadata.js') as { requirements: Record<string, string[]>; manifests: Record<string, Record<string, unknown>> };
    const platform = `${process.platform}/${process.arch}`;
    const files = (metadata.requirements[platform] ?? []).flatMap((name) => Object.keys(metadata.manifests[`${platform}:${name}`] ?? {}));
    const missing = files.filter((file) => !existsSync(path.join(ORT, 'bin/napi-v6', platform, file)));
    if (missing.length === 0) return; // nothing to download on this platform, or already there
    const result = run(cleanEnv());
    assert.is.not(result.status, 0, 'the script would have downloaded');
    assert.match(result.stderr, /nuget|ENOTFOUND|EAI_AGAIN|fetch failed|ENETUNREACH/i);
  });
  offline.run();
}
