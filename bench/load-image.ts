// The load tests' request body: a realistic phone-style JPEG of about 100 KB, 800×533,
// made once from the motorcycle fixture (741×500 PNG) and cached under .cache/.
// Usage: node --import tsx bench/load-image.ts  → prints the file's path.
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { ROOT, fixture } from '../test/support.ts';

export const LOAD_IMAGE = { source: 'motorcycle_left.png', width: 800, height: 533, quality: 85 } as const;
/** The throughput comparison's input: a 512×512 JPEG (astronaut fixture, ~60 KB). */
export const SQUARE_IMAGE = { source: 'astronaut.png', width: 512, height: 512, quality: 85 } as const;

type ImageSpec = { source: string; width: number; height: number; quality: number };

export async function loadImagePath(spec: ImageSpec = LOAD_IMAGE): Promise<string> {
  const { source, width, height, quality } = spec;
  const file = path.join(ROOT, '.cache/load-test', `${path.parse(source).name}-${width}x${height}-q${quality}.jpg`);
  if (existsSync(file)) return file;
  const jpeg = await sharp(await fixture(source)).resize(width, height, { fit: 'fill' }).jpeg({ quality }).toBuffer();
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, jpeg);
  return file;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log(await loadImagePath());
}
