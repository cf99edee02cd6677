// `npm run photos`: the photo set for calibrating and evaluating the int8 model. The photos
// come from one pinned Debian package, fetched by its public URL and checked against its
// SHA-256; the chosen files, their checksums and their split are in bench/photos.json.
// Nothing is committed but that manifest: photos are cached under .cache/photos.
//
// Offline: KLASSIFY_PHOTOS_DEB=/path/to/the.deb, or a copy in apt's cache
// (`apt-get download tuxpaint-stamps-default`), serves the package instead of the URL.
//
// `npm run photos -- --select` re-derives the manifest from the package: every PNG stamp
// that is a photograph (at least MIN_COLOURS distinct opaque colours; the drawn and
// cartoon stamps have far fewer) outside the symbol, sign and flag folders. One in five,
// by a hash of its path, goes to calibration; the rest is the evaluation set.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { ROOT } from '../test/support.ts';
import { cli } from './cli.ts';

export interface PhotoManifest {
  source: { package: string; version: string; url: string; sha256: string; bytes: number; license: string };
  selection: string;
  photos: Array<{ path: string; sha256: string; split: 'calibration' | 'evaluation' }>;
}

const MANIFEST = path.join(ROOT, 'bench/photos.json');
const CACHE = path.join(ROOT, '.cache/photos');
const STAMPS = 'usr/share/tuxpaint/stamps/';
const MIN_COLOURS = 1500;
const EXCLUDED = /(^|\/)(symbols|roadsigns|flags|cartoon)\//;

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

export async function readManifest(): Promise<PhotoManifest> {
  return JSON.parse(await readFile(MANIFEST, 'utf8'));
}

/** Paths of the cached photos of one split, fetching and verifying them first if needed. */
export async function photoSet(split: 'calibration' | 'evaluation'): Promise<string[]> {
  const manifest = await readManifest();
  const dir = path.join(CACHE, `${manifest.source.package}_${manifest.source.version}`);
  const missing = [];
  for (const p of manifest.photos) {
    const file = path.join(dir, p.path);
    if (!existsSync(file) || sha256(await readFile(file)) !== p.sha256) missing.push(p);
  }
  if (missing.length) {
    const deb = await packageFile(manifest);
    const tmp = await extract(deb, missing.map((p) => p.path));
    try {
      for (const p of missing) {
        const bytes = await readFile(path.join(tmp, p.path));
        if (sha256(bytes) !== p.sha256) throw new Error(`${p.path} in ${deb} has SHA-256 ${sha256(bytes)}, expected ${p.sha256}`);
        await mkdir(path.dirname(path.join(dir, p.path)), { recursive: true });
        await rename(path.join(tmp, p.path), path.join(dir, p.path));
      }
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }
  return manifest.photos.filter((p) => p.split === split).map((p) => path.join(dir, p.path));
}

/** The verified .deb: from KLASSIFY_PHOTOS_DEB, apt's cache, our cache, or the public URL. */
async function packageFile(manifest: PhotoManifest): Promise<string> {
  const { url, sha256: expected } = manifest.source;
  const name = path.basename(new URL(url).pathname);
  const candidates = [process.env.KLASSIFY_PHOTOS_DEB, path.join('/var/cache/apt/archives', name), path.join(CACHE, name)];
  for (const file of candidates) {
    if (file && existsSync(file) && (await fileSha256(file)) === expected) return file;
  }
  const target = path.join(CACHE, name);
  await mkdir(CACHE, { recursive: true });
  process.stderr.write(`downloading ${url} (${Math.round(manifest.source.bytes / 1e6)} MB)\n`);
  const res = await fetch(url, { signal: AbortSignal.timeout(15 * 60_000) });
  if (!res.ok || !res.body) throw new Error(`${url} answered HTTP ${res.status}; set KLASSIFY_PHOTOS_DEB to a local copy`);
  const hash = createHash('sha256');
  const tee = new Transform({ transform(chunk, _enc, done) { hash.update(chunk); done(null, chunk); } });
  await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), tee, createWriteStream(`${target}.part`));
  const actual = hash.digest('hex');
  if (actual !== expected) {
    await rm(`${target}.part`, { force: true });
    throw new Error(`${url} has SHA-256 ${actual}, expected ${expected}`);
  }
  await rename(`${target}.part`, target);
  return target;
}

async function fileSha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline((await import('node:fs')).createReadStream(file), hash);
  return hash.digest('hex');
}

/** Unpacks the named files (or all, with no names) of a .deb into a temporary folder. */
async function extract(deb: string, files?: string[]): Promise<string> {
  await mkdir(CACHE, { recursive: true });
  const tmp = await mkdtemp(path.join(CACHE, 'extract-'));
  const tar = spawnSync('bash', ['-c', 'dpkg-deb --fsys-tarfile "$0" | tar -x -C "$1" "${@:2}"', deb, tmp, ...(files ?? []).map((f) => `./${f}`)], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (tar.status !== 0) throw new Error(`unpacking ${deb} failed (needs dpkg-deb and tar): ${tar.stderr}`);
  return tmp;
}

/** Re-derives the manifest's photo list from the package (see the header). */
async function select(): Promise<void> {
  const manifest = await readManifest();
  const tmp = await extract(await packageFile(manifest));
  try {
    const found: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      for (const e of await readdir(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) await walk(p);
        else if (e.name.endsWith('.png') && !e.name.includes('_thumb')) found.push(path.relative(tmp, p));
      }
    };
    await walk(path.join(tmp, STAMPS));
    found.sort();
    const photos: PhotoManifest['photos'] = [];
    for (const rel of found) {
      if (EXCLUDED.test(rel.slice(STAMPS.length))) continue;
      const bytes = await readFile(path.join(tmp, rel));
      const { data } = await sharp(bytes).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
      const colours = new Set<number>();
      for (let i = 0; i < data.length; i += 4) if (data[i + 3] > 250) colours.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
      if (colours.size < MIN_COLOURS) continue;
      const split = parseInt(sha256(Buffer.from(rel)).slice(0, 8), 16) % 5 === 0 ? 'calibration' : 'evaluation';
      photos.push({ path: rel, sha256: sha256(bytes), split });
    }
    await writeFile(MANIFEST, `${JSON.stringify({ ...manifest, photos }, null, 1)}\n`);
    const cal = photos.filter((p) => p.split === 'calibration').length;
    console.log(`${photos.length} photos: ${cal} calibration, ${photos.length - cal} evaluation`);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = cli({ options: { select: { type: 'boolean', default: false } } }, 'npm run photos -- [--select]');
  if (values.select) await select();
  else {
    const [cal, ev] = [await photoSet('calibration'), await photoSet('evaluation')];
    console.log(`${cal.length} calibration and ${ev.length} evaluation photos, verified, in ${CACHE}`);
  }
}
