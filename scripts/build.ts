// Production build: bundles the classify function (main + worker) and, when present, the
// UI into dist/. Dependencies stay external: sharp and onnxruntime-node ship native code.
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { build } from 'esbuild';

await rm('dist/classify', { recursive: true, force: true });
await build({
  entryPoints: ['functions/classify/src/main.ts', 'functions/classify/src/worker.ts'],
  outdir: 'dist/classify',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
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
