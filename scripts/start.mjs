// `npm start` without tsx's start-up cost (about a second on a busy 2-core machine):
// bundles scripts/start.ts and the relay into dist/start.mjs when they changed, then runs
// the bundle with plain Node.
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const root = path.resolve(import.meta.dirname, '..');
const sources = ['scripts/start.ts', 'scripts/relay.ts'].map((file) => path.join(root, file));
const bundle = path.join(root, 'dist', 'start.mjs');
const stamp = path.join(root, 'dist', '.start.stamp');
const digest = sources.map((file) => `${file}:${statSync(file).size}:${statSync(file).mtimeMs}`).join('\n');

if (!existsSync(bundle) || !existsSync(stamp) || readFileSync(stamp, 'utf8') !== digest) {
  const { build } = await import('esbuild');
  await build({
    entryPoints: [path.join(root, 'scripts', 'start.ts')],
    outfile: bundle,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    logLevel: 'warning',
  });
  writeFileSync(stamp, digest);
}
await import(pathToFileURL(bundle).href);
