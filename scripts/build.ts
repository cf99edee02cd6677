// Production build: bundles the classify function (main + worker) and, when present, the
// UI into dist/. Dependencies stay external: sharp and onnxruntime-node ship native code.
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { build } from 'esbuild';

await rm('dist/classify', { recursive: true, force: true });
// Pure-JS dependencies are bundled in: resolving and compiling prom-client, cloudevents
// (with ajv) and busboy file by file cost the main thread ~50–80 ms of a ~250 ms cold start
// (docs/performance.md). Native packages, and those only the tfjs engine or the model
// converter load, stay in node_modules.
const external = ['sharp', 'onnxruntime-node', '@tensorflow/*', 'onnx-proto', 'protobufjs'];
await build({
  entryPoints: ['functions/classify/src/main.ts', 'functions/classify/src/worker.ts'],
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
