// The Dockerfile, and the script that prunes its node_modules.
//
// The Dockerfile's model stage copies only what `npm run model` needs, so that a code change
// elsewhere does not rebuild the model layer. That list has to follow the imports: a module
// the converter starts to import, but the stage does not copy, breaks only the container
// build. esbuild's metafile lists every source file the script loads.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** The sources of the COPY instructions in one stage (`FROM … AS name`), build-context only. */
function stageCopies(dockerfile: string, stage: string): string[] {
  const lines = dockerfile.split('\n');
  const start = lines.findIndex((l) => new RegExp(`^FROM\\s+\\S+\\s+AS\\s+${stage}\\s*$`, 'i').test(l));
  assert.ok(start >= 0, `no stage named ${stage}`);
  const end = lines.findIndex((l, i) => i > start && /^FROM\s/i.test(l));
  return lines
    .slice(start + 1, end < 0 ? undefined : end)
    .filter((l) => /^COPY\s/i.test(l) && !/--from=/i.test(l))
    .flatMap((l) => l.trim().split(/\s+/).slice(1, -1));
}

const model = suite('Dockerfile: the model stage');
model('copies every source file that `npm run model` loads', async () => {
  const copies = stageCopies(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'), 'model');
  const result = await build({
    entryPoints: [path.join(ROOT, 'scripts/fetch-model.ts')],
    bundle: true,
    write: false,
    metafile: true,
    platform: 'node',
    format: 'esm',
    packages: 'external',
    logLevel: 'silent',
  });
  const inputs = Object.keys(result.metafile.inputs).map((p) => path.relative(ROOT, path.resolve(ROOT, p)));
  assert.ok(inputs.includes('functions/classify/src/model/prepare.ts'), 'the metafile lists the converter');
  const covered = (file: string) => copies.some((src) => file === src || file.startsWith(src.replace(/\/?$/, '/')));
  const missing = inputs.filter((f) => !covered(f));
  assert.equal(missing, [], `the model stage does not copy: ${missing.join(', ')}`);
});
model.run();

// ---------------------------------------------------------------------------------------
// The deps stage keeps the ONNX Runtime and sharp binaries of the architecture being built:
// `minikube image build` builds for the node's own, arm64 on an Apple Silicon Mac.
const ARCH_FILES = [
  'onnxruntime-node/bin/napi-v6/linux/x64/onnxruntime_binding.node',
  'onnxruntime-node/bin/napi-v6/linux/arm64/onnxruntime_binding.node',
  'onnxruntime-node/bin/napi-v6/darwin/arm64/onnxruntime_binding.node',
  'onnxruntime-node/bin/napi-v6/win32/x64/onnxruntime_binding.node',
  'sharp/package.json',
  '@img/sharp-linux-x64/lib/sharp-linux-x64.node',
  '@img/sharp-libvips-linux-x64/lib/libvips-cpp.so',
  '@img/sharp-linux-arm64/lib/sharp-linux-arm64.node',
  '@img/sharp-libvips-linux-arm64/lib/libvips-cpp.so',
  '@img/sharp-darwin-arm64/lib/sharp-darwin-arm64.node',
  '@tensorflow/tfjs-core/dist/tf-core.node.js',
  '@tensorflow/tfjs-core/dist/tf-core.js.map',
];

/** Runs the prune script with sh on a fake node_modules; `uname -m` answers `machine`. */
function prune(machine: string, env: Record<string, string> = {}, args: string[] = [], drop: string[] = []) {
  const dir = mkdtempSync(path.join(tmpdir(), 'klassify-prune-'));
  try {
    const modules = path.join(dir, 'node_modules');
    for (const file of ARCH_FILES.filter((f) => !drop.includes(f))) {
      mkdirSync(path.dirname(path.join(modules, file)), { recursive: true });
      writeFileSync(path.join(modules, file), 'x');
    }
    const bin = path.join(dir, 'bin');
    mkdirSync(bin);
    writeFileSync(path.join(bin, 'uname'), `#!/bin/sh\n[ "$1" = -m ] && { echo ${machine}; exit 0; }\nexec /usr/bin/uname "$@"\n`, { mode: 0o755 });
    const run = spawnSync('sh', [path.join(ROOT, 'container/prune-node-modules.sh'), ...args, modules], {
      encoding: 'utf8', env: { PATH: `${bin}:${process.env.PATH}`, ...env },
    });
    const kept = ARCH_FILES.filter((f) => existsSync(path.join(modules, f)));
    return { status: run.status, stderr: run.stderr, stdout: run.stdout, kept };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const arch = suite('container/prune-node-modules.sh: the architecture being built');

const LINUX = (a: string) => [
  `onnxruntime-node/bin/napi-v6/linux/${a}/onnxruntime_binding.node`, 'sharp/package.json',
  `@img/sharp-linux-${a}/lib/sharp-linux-${a}.node`, `@img/sharp-libvips-linux-${a}/lib/libvips-cpp.so`,
  '@tensorflow/tfjs-core/dist/tf-core.node.js',
];

arch('on x86_64 it keeps linux/x64 only; on aarch64 linux/arm64 only', () => {
  const x64 = prune('x86_64', { TARGETARCH: 'amd64' });
  assert.is(x64.status, 0, x64.stderr);
  assert.equal(x64.kept, LINUX('x64'));
  assert.match(x64.stdout, 'linux-x64 binaries kept');
  const arm = prune('aarch64', { TARGETARCH: 'arm64' });
  assert.is(arm.status, 0, arm.stderr);
  assert.equal(arm.kept, LINUX('arm64'));
  // The legacy builder sets no TARGETARCH: uname -m alone decides.
  assert.equal(prune('aarch64').kept, LINUX('arm64'));
});

arch('a TARGETARCH that disagrees with the stage\'s own architecture is refused, before anything is removed', () => {
  const run = prune('x86_64', { TARGETARCH: 'arm64' });
  assert.is(run.status, 1);
  assert.match(run.stderr, 'TARGETARCH=arm64, but this build stage runs on x86_64');
  assert.equal(run.kept, ARCH_FILES);
  assert.is(prune('riscv64').status, 1);
});

arch('missing binaries of the kept architecture stop the build', () => {
  const ort = prune('aarch64', {}, [], ['onnxruntime-node/bin/napi-v6/linux/arm64/onnxruntime_binding.node']);
  assert.is(ort.status, 1);
  assert.match(ort.stderr, 'linux/arm64 is missing');
  const sharp = prune('aarch64', {}, [], ['@img/sharp-libvips-linux-arm64/lib/libvips-cpp.so', '@img/sharp-linux-arm64/lib/sharp-linux-arm64.node']);
  assert.is(sharp.status, 1);
  assert.match(sharp.stderr, '@img/sharp-linux-arm64 is missing');
});

arch('--arch prepares another architecture\'s node_modules on this machine', () => {
  const run = prune('x86_64', { TARGETARCH: 'amd64' }, ['--arch', 'arm64']);
  assert.is(run.status, 0, run.stderr);
  assert.equal(run.kept, LINUX('arm64'));
});

arch('the Dockerfile\'s deps stage declares TARGETARCH before it prunes', () => {
  const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
  const deps = dockerfile.slice(dockerfile.search(/^FROM\s+\S+\s+AS\s+deps\s*$/m), dockerfile.search(/^FROM\s+\S+\s+AS\s+dev\s*$/m));
  assert.match(deps, /^ARG TARGETARCH=?$/m);
  assert.ok(deps.indexOf('ARG TARGETARCH') < deps.indexOf('prune-node-modules.sh node_modules'), deps);
});

arch.run();
