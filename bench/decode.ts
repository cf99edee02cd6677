// Decode + resize benchmarks: the production preprocess() against variants of its sharp
// pipeline, each checked for unchanged predictions; and decode throughput under different
// libvips / libuv thread settings, measured in child processes (UV_THREADPOOL_SIZE only
// takes effect before the pool's first use).
//
// Child mode: node --import tsx bench/decode.ts --throughput <image> <concurrency> <seconds>
//   with SHARP_CONCURRENCY and UV_THREADPOOL_SIZE in the environment; prints JSON.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import sharp, { type KernelEnum, type Sharp } from 'sharp';
import { preprocess } from '../functions/classify/src/preprocess.ts';
import { ROOT, fixture } from '../test/support.ts';
import { closedLoop } from './stats.ts';

const SIZE = 224;
const LIMITS = { resize: 'stretch' as const, maxPixels: 50_000_000 };

export type Decoder = (bytes: Uint8Array) => Promise<Uint8Array>;

/** The production path, unchanged. */
export const current: Decoder = async (bytes) => (await preprocess(bytes, LIMITS)).rgb;

interface Variant {
  kernel?: keyof KernelEnum;
  fastShrinkOnLoad?: boolean;
  ignoreIcc?: boolean;
  /** Decode at full size first, then resize: what the pipeline costs without shrink-on-load. */
  fullDecode?: boolean;
}

/** preprocess()'s pipeline without its metadata() call, with one option changed. */
export function variant(v: Variant): Decoder {
  return async (bytes) => {
    let input: Sharp;
    if (v.fullDecode) {
      const { data, info } = await sharp(bytes, { pages: 1, failOn: 'error' }).rotate().raw().toBuffer({ resolveWithObject: true });
      input = sharp(data, { raw: { width: info.width, height: info.height, channels: info.channels } });
    } else {
      input = sharp(bytes, { pages: 1, failOn: 'error', limitInputPixels: LIMITS.maxPixels, sequentialRead: true, ignoreIcc: v.ignoreIcc }).rotate();
    }
    const data = await input
      .flatten({ background: '#ffffff' })
      .resize(SIZE, SIZE, { fit: 'fill', kernel: v.kernel, fastShrinkOnLoad: v.fastShrinkOnLoad })
      .toColourspace('srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer();
    return new Uint8Array(data.buffer, data.byteOffset, data.length);
  };
}

export const VARIANTS: Record<string, Decoder> = {
  'current (preprocess.ts)': current,
  // The variants below start from this one: preprocess.ts's pipeline as it was before the
  // sRGB shortcut (the profile is always converted), without the metadata() call.
  'always convert ICC, no metadata()': variant({}),
  'kernel linear': variant({ kernel: 'linear' }),
  'kernel cubic': variant({ kernel: 'cubic' }),
  'kernel nearest': variant({ kernel: 'nearest' }),
  'ignoreIcc (any profile)': variant({ ignoreIcc: true }),
  'fastShrinkOnLoad: false': variant({ fastShrinkOnLoad: false }),
  'no shrink-on-load (full decode)': variant({ fullDecode: true }),
};

/** A 12-megapixel phone-camera-sized JPEG (4032×3024, q90), made once from a fixture. */
export async function phonePhotoPath(): Promise<string> {
  const file = path.join(ROOT, '.cache/load-test/astronaut-4032x3024-q90.jpg');
  if (existsSync(file)) return file;
  const jpeg = await sharp(await fixture('astronaut.png')).resize(4032, 3024, { fit: 'fill' }).jpeg({ quality: 90 }).toBuffer();
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, jpeg);
  return file;
}

/** Spawns a child that decodes `image` with `concurrency` parallel calls; images/s. */
export function decodeThroughput(image: string, env: Record<string, string>, concurrency: number, seconds: number): number {
  const run = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench/decode.ts'), '--throughput', image, String(concurrency), String(seconds)], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
  if (run.status !== 0) throw new Error(`decode child failed: ${run.stderr}`);
  return JSON.parse(run.stdout.trim().split('\n').pop()!).rps;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href && process.argv[2] === '--throughput') {
  const [image, concurrency, seconds] = process.argv.slice(3);
  const { readFile } = await import('node:fs/promises');
  const bytes = new Uint8Array(await readFile(image));
  // preprocess.ts sets sharp.concurrency(1) on import; override it after.
  if (process.env.SHARP_CONCURRENCY) sharp.concurrency(Number(process.env.SHARP_CONCURRENCY));
  await current(bytes);
  const { rps } = await closedLoop(() => current(bytes), Number(concurrency), Number(seconds));
  console.log(JSON.stringify({ rps }));
}
