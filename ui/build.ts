/**
 * Builds the web UI:
 *   ui/src      → dist/ui/public  (minified, content-hashed JS and CSS, with .br and .gz twins)
 *   ui/server   → dist/ui/server.js (one ESM file for Node; npm packages stay external)
 *
 *   node --import tsx ui/build.ts [--outdir dist/ui] [--no-minify]
 *
 * Hashed file names let the server cache assets for a year (immutable) while
 * index.html, which names them, is revalidated on every load.
 */

import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat, writeFile, copyFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import * as esbuild from 'esbuild';
import { metafileInputs } from '../scripts/fresh.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface BuildOptions {
  /** The repository (default: the one this file is in; a bundle of this file must say). */
  root?: string;
  /** Output folder; public/ and server.js are written inside it. */
  outdir?: string;
  minify?: boolean;
  /** Also bundle the server (tests that only need the page skip it). */
  server?: boolean;
  logLevel?: esbuild.LogLevel;
}

export interface BuildResult {
  outdir: string;
  publicDir: string;
  serverFile: string | null;
  /** Public paths of the hashed assets, e.g. "/assets/app-5ZKQ3V2D.js". */
  assets: { js: string; css: string };
  /** Every file the build read (esbuild's metafiles, the page template), absolute. */
  inputs: string[];
}

const COMPRESSIBLE = /\.(html|js|css|svg|json|txt)$/;
const MIN_COMPRESS_BYTES = 512;

export async function buildUi(options: BuildOptions = {}): Promise<BuildResult> {
  const repo = path.resolve(options.root ?? root);
  const uiDir = path.join(repo, 'ui');
  const outdir = path.resolve(options.outdir ?? path.join(repo, 'dist', 'ui'));
  const publicDir = path.join(outdir, 'public');
  const minify = options.minify ?? true;
  const logLevel = options.logLevel ?? 'warning';
  await rm(publicDir, { recursive: true, force: true });
  await mkdir(path.join(publicDir, 'assets'), { recursive: true });

  const page = await esbuild.build({
    entryPoints: [path.join(uiDir, 'src', 'app.ts')],
    outdir: path.join(publicDir, 'assets'),
    entryNames: '[name]-[hash]',
    assetNames: '[name]-[hash]',
    bundle: true,
    minify,
    format: 'esm',
    platform: 'browser',
    target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
    sourcemap: 'linked',
    legalComments: 'linked',
    metafile: true,
    absWorkingDir: repo,
    logLevel,
  });
  const inputs = [...metafileInputs(page.metafile), 'ui/src/index.html', 'ui/src/favicon.svg', 'ui/build.ts'];

  const outputs = Object.entries(page.metafile.outputs);
  const js = outputs.find(([file, meta]) => file.endsWith('.js') && meta.entryPoint);
  if (!js) throw new Error('esbuild produced no JavaScript entry');
  const cssFile = js[1].cssBundle;
  if (!cssFile) throw new Error('esbuild produced no CSS bundle (is styles.css imported by app.ts?)');
  const jsFile = js[0];
  const assets = { js: toPublicPath(publicDir, jsFile), css: toPublicPath(publicDir, cssFile) };

  const template = await readFile(path.join(uiDir, 'src', 'index.html'), 'utf8');
  const html = template
    .replace('%JS%', assets.js)
    .replace('%JS_SRI%', await sri(jsFile))
    .replace('%CSS%', assets.css)
    .replace('%CSS_SRI%', await sri(cssFile));
  if (/%[A-Z_]+%/.test(html)) throw new Error('index.html has an unreplaced placeholder');
  await writeFile(path.join(publicDir, 'index.html'), html);
  await copyFile(path.join(uiDir, 'src', 'favicon.svg'), path.join(publicDir, 'favicon.svg'));

  await precompress(publicDir);

  let serverFile: string | null = null;
  if (options.server ?? true) {
    serverFile = path.join(outdir, 'server.js');
    const server = await esbuild.build({
      entryPoints: [path.join(uiDir, 'server', 'main.ts')],
      outfile: serverFile,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      packages: 'external',
      sourcemap: 'linked',
      metafile: true,
      absWorkingDir: repo,
      logLevel,
    });
    inputs.push(...metafileInputs(server.metafile));
  }

  return { outdir, publicDir, serverFile, assets, inputs: inputs.map((input) => path.resolve(repo, input)) };
}

/** Writes file.br (brotli, max quality) and file.gz (gzip -9) next to each text asset. */
async function precompress(dir: string): Promise<void> {
  const brotli = promisify(zlib.brotliCompress);
  const gzip = promisify(zlib.gzip);
  for (const file of await walk(dir)) {
    if (!COMPRESSIBLE.test(file)) continue;
    const source = await readFile(file);
    if (source.length < MIN_COMPRESS_BYTES) continue;
    const br = await brotli(source, {
      params: {
        [zlib.constants.BROTLI_PARAM_QUALITY]: zlib.constants.BROTLI_MAX_QUALITY,
        [zlib.constants.BROTLI_PARAM_SIZE_HINT]: source.length,
      },
    });
    const gz = await gzip(source, { level: zlib.constants.Z_BEST_COMPRESSION });
    if (br.length < source.length) await writeFile(`${file}.br`, br);
    if (gz.length < source.length) await writeFile(`${file}.gz`, gz);
  }
}

async function walk(dir: string): Promise<string[]> {
  const files: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) files.push(...(await walk(full)));
    else if ((await stat(full)).isFile()) files.push(full);
  }
  return files;
}

async function sri(file: string): Promise<string> {
  const digest = createHash('sha384').update(await readFile(file)).digest('base64');
  return `sha384-${digest}`;
}

function toPublicPath(publicDir: string, file: string): string {
  return `/${path.relative(publicDir, path.resolve(file)).split(path.sep).join('/')}`;
}

function parseArgs(argv: string[]): BuildOptions {
  const options: BuildOptions = { logLevel: 'info' };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (arg === '--no-minify') options.minify = false;
    else if (arg === '--outdir') options.outdir = argv[++i];
    else if (arg.startsWith('--outdir=')) options.outdir = arg.slice('--outdir='.length);
    else throw new Error(`unknown argument ${arg}; valid: --outdir DIR, --no-minify`);
  }
  return options;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const started = performance.now();
  const result = await buildUi(parseArgs(process.argv.slice(2)));
  const ms = Math.round(performance.now() - started);
  console.log(`ui: built ${path.relative(process.cwd(), result.publicDir)} (${result.assets.js}, ${result.assets.css})` +
    `${result.serverFile ? ` and ${path.relative(process.cwd(), result.serverFile)}` : ''} in ${ms} ms`);
}
