// `npm start` without tsx's start-up cost (about a second on a busy 2-core machine): bundles
// scripts/start.ts into dist/start/ when a file it imports changed (scripts/fresh.mjs), then
// runs the bundle with plain Node. package.json runs this with `exec`, so that npm's PID
// signals this process directly rather than a shell that would not pass them on.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { isFresh, metafileInputs, recordInputs } from './fresh.mjs';

const root = path.resolve(import.meta.dirname, '..');
const bundle = 'dist/start/start.js';

if (!isFresh(root, 'start', [bundle])) {
  const { build } = await import('esbuild');
  const result = await build({
    absWorkingDir: root,
    entryPoints: ['scripts/start.ts'],
    outdir: 'dist/start',
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    // Splitting keeps what only a build needs (esbuild, the UI build) in a chunk of its own,
    // loaded when a bundle is out of date.
    splitting: true,
    metafile: true,
    logLevel: 'warning',
  });
  recordInputs(root, 'start', [...metafileInputs(result.metafile), 'scripts/start.mjs', 'package-lock.json']);
}
const { start } = await import(pathToFileURL(path.join(root, bundle)).href);
await start(root, process.argv.slice(2));
