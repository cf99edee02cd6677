// Fetches a set of pinned files into a cache folder: from a local mirror when one is
// configured (offline machines, CI), else from the public URL. Every file is verified
// against its SHA-256 before it is moved into place, so the cache never holds a bad file.
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { AssetError } from '../errors.ts';
import { FIXTURES_BASE_URL, FIXTURE_SHA256, MODEL_BASE_URL } from './checksums.ts';
import { MODEL_NAME } from './mobilenet.ts';

export interface AssetSet {
  /** What the files are, for messages ("MobileNet weights"). */
  what: string;
  baseUrl: string;
  sha256: Readonly<Record<string, string>>;
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
    // Write then rename, so an interrupted run never leaves a half-written file behind.
    const tmp = `${target}.part`;
    await writeFile(tmp, bytes);
    await rename(tmp, target);
    opts.onProgress?.(++done, files.length, file);
  }
  return opts.dest;
}

/** How to point each known set at a local copy: every error names it, so the fix is in the message. */
const MIRROR_HELP: Readonly<Record<string, { env: string; layout: string; example: string }>> = {
  [MODEL_BASE_URL]: {
    env: 'KLASSIFY_MODEL_MIRROR',
    layout: `${MODEL_NAME}/model.json and its weight files ${MODEL_NAME}/group1-shard1of1 … group55-shard1of1`,
    example: 'KLASSIFY_MODEL_MIRROR=/data/models npm start',
  },
  [FIXTURES_BASE_URL]: {
    env: 'KLASSIFY_FIXTURES_MIRROR',
    layout: `the photos ${Object.keys(FIXTURE_SHA256).join(', ')}`,
    example: 'KLASSIFY_FIXTURES_MIRROR=/data/photos npm test',
  },
};

function mirrorHint(set: AssetSet): string {
  const help = MIRROR_HELP[set.baseUrl];
  if (!help) return `Use a mirror folder that holds ${Object.keys(set.sha256).join(', ')}.`;
  return `Set ${help.env} to a folder that holds ${help.layout}, e.g. \`${help.example}\`.`;
}

async function fromMirror(set: AssetSet, mirror: string, file: string): Promise<Uint8Array> {
  const source = path.join(mirror, file);
  try {
    return await readFile(source);
  } catch (err) {
    throw new AssetError(`${set.what}: cannot read ${source} from the mirror (${(err as Error).message}). ` +
      `${mirrorHint(set)} Or unset ${MIRROR_HELP[set.baseUrl]?.env ?? 'the mirror'} to download from ${set.baseUrl}.`);
  }
}

async function download(set: AssetSet, file: string): Promise<Uint8Array> {
  const url = new URL(file, set.baseUrl).href;
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(60_000) });
  } catch (err) {
    throw new AssetError(`${set.what}: download of ${url} failed (${(err as Error).message}). ` +
      `Check your network, or use a local copy. ${mirrorHint(set)}`);
  }
  if (!res.ok) throw new AssetError(`${set.what}: ${url} answered HTTP ${res.status}. Retry later, or use a local copy. ${mirrorHint(set)}`);
  return new Uint8Array(await res.arrayBuffer());
}
