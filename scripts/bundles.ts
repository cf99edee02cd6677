// The one build configuration of dist/: `npm run build` (and so the container image) and
// `npm start` both build through here, and both record what each bundle read
// (scripts/fresh.mjs), so `npm start` rebuilds exactly when a file in a bundle's real
// import graph changed. esbuild and the UI build load only when something is built, so
// that a warm `npm start` does not pay for them.
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { BuildOptions, LogLevel } from 'esbuild';
import { isFresh, metafileInputs, recordInputs } from './fresh.mjs';

/** Files every bundle depends on besides its import graph: this configuration, the lockfile. */
const CONFIG_INPUTS = ['scripts/bundles.ts', 'scripts/fresh.mjs', 'package-lock.json'];

// JavaScript dependencies are bundled in, sharp's JavaScript included: resolving, reading
// and compiling prom-client, cloudevents (with ajv), busboy and sharp's own dependencies
// file by file was a third of the main thread's cold start (docs/performance.md). What
// stays in node_modules: native code (sharp's prebuilt addon and libvips, which its
// bundled loader finds by package name, and onnxruntime-node), and the packages that only
// the tfjs engine or the model converter load.
// esbuild: only decoder-source.ts imports it, and only when running from the sources.
const CLASSIFY_EXTERNAL = ['@img/sharp-*', 'onnxruntime-node', '@tensorflow/*', 'onnx-proto', 'protobufjs', 'flatbuffers', 'esbuild'];

function classifyOptions(root: string, logLevel: LogLevel = 'warning'): BuildOptions {
  return {
    absWorkingDir: root,
    // The server, its inference worker and its decoder process (forked, loads only sharp).
    entryPoints: ['functions/classify/src/main.ts', 'functions/classify/src/worker.ts', 'functions/classify/src/decoder-process.ts'],
    outdir: 'dist/classify',
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: CLASSIFY_EXTERNAL,
    // Bundled CommonJS calls require() for Node built-ins; an ES module has none of its own.
    banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
    // Splitting keeps main.ts's dynamic import('./server.ts') a separate chunk, so the
    // workers start before the HTTP stack's modules load (cold start).
    splitting: true,
    sourcemap: true,
    metafile: true,
    logLevel,
  };
}

export interface Bundle {
  name: string;
  /** What must exist for the bundle to count as built. */
  outputs: string[];
  build(root: string, logLevel?: LogLevel): Promise<void>;
}

const CLASSIFY: Bundle = {
  name: 'classify',
  outputs: ['dist/classify/main.js', 'dist/classify/worker.js', 'dist/classify/decoder-process.js'],
  async build(root, logLevel) {
    const { build } = await import('esbuild');
    await rm(path.join(root, 'dist/classify'), { recursive: true, force: true });
    const result = await build(classifyOptions(root, logLevel));
    recordInputs(root, 'classify', [...metafileInputs(result.metafile!), ...CONFIG_INPUTS]);
  },
};

const UI: Bundle = {
  name: 'ui',
  outputs: ['dist/ui/server.js', 'dist/ui/public/index.html'],
  async build(root, logLevel) {
    const { buildUi } = await import('../ui/build.ts');
    const result = await buildUi({ root, logLevel });
    recordInputs(root, 'ui', [...result.inputs, ...CONFIG_INPUTS]);
  },
};

export const BUNDLES = [CLASSIFY, UI];

/** The bundles whose recorded inputs changed since they were built (or never were). */
export function staleBundles(root: string): Bundle[] {
  return BUNDLES.filter((bundle) => !isFresh(root, bundle.name, bundle.outputs));
}
