// Development only: the decoder process's entry from the TypeScript sources (tests,
// benchmarks), bundled the way the production build bundles it. Under tsx, each process
// would start about 0.5 s slower and hold about 20 MB more than in production, which is what
// the benchmarks measure. The production bundle never loads this module (decoder-pool.ts
// imports it only when it runs from .ts sources), and esbuild stays a development dependency.
import { createHash } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { build, stop } from 'esbuild';

/** Bundles decoder-process.ts into .cache/decoder-process/<digest>.mjs and returns its path. */
export async function bundleDecoderProcess(): Promise<string> {
  const here = import.meta.dirname;
  const out = await build({
    entryPoints: [path.join(here, 'decoder-process.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    write: false,
    logLevel: 'warning',
  });
  await stop(); // esbuild's service process would otherwise stay, beside the decoders
  const code = out.outputFiles[0].contents;
  const dir = path.resolve(here, '../../../.cache/decoder-process');
  const file = path.join(dir, `${createHash('sha256').update(code).digest('hex').slice(0, 16)}.mjs`);
  await mkdir(dir, { recursive: true });
  const partial = `${file}.${process.pid}`;
  await writeFile(partial, code);
  await rename(partial, file); // atomic: other test processes may be writing the same file
  return file;
}
