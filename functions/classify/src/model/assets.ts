// Fetches a set of pinned files into a cache folder: from a local mirror when one is
// configured (offline machines, CI), else from the public URL. Every file is verified
// against its SHA-256 before it is moved into place, so the cache never holds a bad file.
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.ts';
import { AssetError } from '../errors.ts';
import { MIRROR_VARIABLE, MODEL_MIRROR, mirrorHint, type MirrorKind } from './mirror.ts';

export interface AssetSet {
  /** What the files are, for messages ("MobileNet weights"). */
  what: string;
  baseUrl: string;
  sha256: Readonly<Record<string, string>>;
  /** Which mirror kind holds these files, and what its folder holds: every error names the variable (mirror.ts). */
  mirror: { kind: MirrorKind; holds: string };
}

export interface FetchOptions {
  dest: string;
  mirror?: string;
  /** Called with bytes done and total, for a progress bar. */
  onProgress?: (done: number, total: number, file: string) => void;
}

export const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** Ensures every file of the set is in `dest` and intact; returns `dest`. */
export async function fetchAssets(set: AssetSet, opts: FetchOptions): Promise<string> {
  await mkdir(opts.dest, { recursive: true });
  const files = Object.keys(set.sha256);
  let done = 0;
  for (const file of files) {
    const target = path.join(opts.dest, file);
    if (existsSync(target) && sha256(await readFile(target)) === set.sha256[file]) {
      opts.onProgress?.(++done, files.length, file);
      continue;
    }
    const bytes = opts.mirror ? await fromMirror(set, opts.mirror, file) : await download(set, file);
    const actual = sha256(bytes);
    if (actual !== set.sha256[file]) {
      const origin = opts.mirror ? `the mirror ${opts.mirror}` : set.baseUrl;
      throw new AssetError(
        `${set.what}: ${file} from ${origin} has SHA-256 ${actual}, expected ${set.sha256[file]}. ` +
          `The source is corrupt or changed; delete ${opts.dest} and retry, or point the mirror at a good copy.`,
      );
    }
    await writeAtomically(target, bytes);
    opts.onProgress?.(++done, files.length, file);
  }
  return opts.dest;
}

const hint = (set: AssetSet) => mirrorHint(set.mirror.kind, set.mirror.holds);

async function fromMirror(set: AssetSet, mirror: string, file: string): Promise<Uint8Array> {
  const source = path.join(mirror, file);
  try {
    return await readFile(source);
  } catch (err) {
    throw new AssetError(`${set.what}: cannot read ${source} from the mirror (${(err as Error).message}). ` +
      `${hint(set)} Or unset ${MIRROR_VARIABLE} and ${set.mirror.kind.variable} to download from ${set.baseUrl}.`);
  }
}

async function download(set: AssetSet, file: string): Promise<Uint8Array> {
  const url = new URL(file, set.baseUrl).href;
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(60_000) });
  } catch (err) {
    throw new AssetError(`${set.what}: download of ${url} failed (${(err as Error).message}). ` +
      `Check your network, or use a local copy. ${hint(set)}`);
  }
  if (!res.ok) throw new AssetError(`${set.what}: ${url} answered HTTP ${res.status}. Retry later, or use a local copy. ${hint(set)}`);
  return new Uint8Array(await res.arrayBuffer());
}

type ModelSourceConfig = Pick<Config, 'modelCacheDir' | 'modelMirror' | 'modelFetch'>;

/** A model's published files, as its module describes them (mobilenet-v1.ts, mobilenet-v2.ts). */
export interface ModelSource {
  name: string;
  title: string;
  baseUrl: string;
  sha256: Readonly<Record<string, string>>;
  /** What the models mirror holds for it, for messages ("mobilenet_v2_1.0_224_quant/…tflite"). */
  mirrorLayout: string;
}

/**
 * Ensures a model's published files are in `dest`, verified: from `<models mirror>/<name>/`
 * when a mirror is set (mirror.ts), else from the pinned public URL, unless
 * KLASSIFY_MODEL_FETCH=never.
 */
export async function fetchModelSource(model: ModelSource, config: ModelSourceConfig, dest: string, log: (msg: string) => void): Promise<void> {
  const haveSource = Object.keys(model.sha256).every((f) => existsSync(path.join(dest, f)));
  if (config.modelFetch === 'never' && !config.modelMirror && !haveSource) {
    throw new AssetError(`${model.title} is not in ${config.modelCacheDir} and KLASSIFY_MODEL_FETCH=never forbids ` +
      'downloading it. Run `npm run model` (or build the container image, which bakes it in) first.');
  }
  if (!haveSource) {
    log(config.modelMirror ? `copying ${model.name} from the mirror ${config.modelMirror}` : `downloading ${model.name} from ${model.baseUrl}`);
  }
  await fetchAssets(
    { what: model.title, baseUrl: model.baseUrl, sha256: model.sha256, mirror: { kind: MODEL_MIRROR, holds: model.mirrorLayout } },
    { dest, mirror: config.modelMirror && path.join(config.modelMirror, model.name), onProgress: progressBar() },
  );
}

/** Write then rename, so an interrupted run never leaves a half-written file behind. */
export async function writeAtomically(file: string, bytes: Uint8Array): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(`${file}.part`, bytes);
  await rename(`${file}.part`, file);
}

/** A one-line progress bar on a terminal; silent when stderr is a pipe or a log file. */
function progressBar(stream = process.stderr) {
  if (!stream.isTTY) return undefined;
  return (done: number, total: number, file: string) => {
    const width = 30;
    const filled = Math.round((done / total) * width);
    stream.write(`\r[${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${done}/${total} ${file.padEnd(20)}`);
    if (done === total) stream.write('\n');
  };
}
