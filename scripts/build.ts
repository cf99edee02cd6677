// Production build: bundles the classify function (main, the inference worker and the
// decoder process) and, when present, the UI into dist/. Dependencies stay external: sharp and onnxruntime-node ship native code.
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { build } from 'esbuild';

await rm('dist/classify', { recursive: true, force: true });
// JavaScript dependencies are bundled in, sharp's JavaScript included: resolving, reading
// and compiling prom-client, cloudevents (with ajv), busboy and sharp's own dependencies
// file by file was a third of the main thread's cold start (docs/performance.md). What
// stays in node_modules: native code (sharp's prebuilt addon and libvips, which its
// bundled loader finds by package name, and onnxruntime-node), and the packages that only
// the tfjs engine or the model converter load.
const external = ['@img/sharp-*', 'onnxruntime-node', '@tensorflow/*', 'onnx-proto', 'protobufjs'];
await build({
  entryPoints: ['functions/classify/src/main.ts', 'functions/classify/src/worker.ts', 'functions/classify/src/decoder-process.ts'],
  outdir: 'dist/classify',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external,
  // Bundled CommonJS calls require() for Node built-ins; an ES module has none of its own.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  // Splitting keeps main.ts's dynamic import('./server.ts') a separate chunk, so the
  // workers start before the HTTP stack's modules load (cold start).
  splitting: true,
  sourcemap: true,
  logLevel: 'info',
});
if (existsSync('ui/build.ts')) {
  const { buildUi } = await import('../ui/build.ts');
  await buildUi();
}
