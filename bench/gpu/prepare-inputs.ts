// Preprocesses the fixture photos into the raw 224×224 RGB bytes the model sees, so the GPU
// machine (no sharp there) measures on real images. Uses the service's own preprocess(), so
// the bytes are exactly what a request would produce.
// Usage: node --import tsx bench/gpu/prepare-inputs.ts <dir>  → <dir>/inputs.bin, inputs.json
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { INPUT_SIZE } from '../../functions/classify/src/model/mobilenet.ts';
import { preprocess } from '../../functions/classify/src/preprocess.ts';
import { FIXTURE_NAMES, fixture } from '../../test/support.ts';

const dest = process.argv[2];
if (!dest) throw new Error('usage: prepare-inputs.ts <dir>');

const names = [...FIXTURE_NAMES].sort();
const images: Uint8Array[] = [];
for (const name of names) {
  const { rgb } = await preprocess(await fixture(name), { resize: 'stretch', maxPixels: 50_000_000 });
  images.push(rgb);
}
await mkdir(dest, { recursive: true });
await writeFile(path.join(dest, 'inputs.bin'), Buffer.concat(images));
// The layout measure.mjs reads: `count` images of height×width×3 bytes, NHWC, in `names` order.
const meta = { names, count: names.length, height: INPUT_SIZE, width: INPUT_SIZE, channels: 3, dtype: 'uint8', resize: 'stretch' };
await writeFile(path.join(dest, 'inputs.json'), JSON.stringify(meta, null, 2) + '\n');
console.log(`${names.length} images → ${path.join(dest, 'inputs.bin')}`);
