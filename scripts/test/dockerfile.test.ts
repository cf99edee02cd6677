// The Dockerfile's model stage copies only what `npm run model` needs, so that a code change
// elsewhere does not rebuild the model layer. That list has to follow the imports: a module
// the converter starts to import, but the stage does not copy, breaks only the container
// build. esbuild's metafile lists every source file the script loads.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** The sources of the COPY instructions in one stage (`FROM … AS name`), build-context only. */
function stageCopies(dockerfile: string, stage: string): string[] {
  const lines = dockerfile.split('\n');
  const start = lines.findIndex((l) => new RegExp(`^FROM\\s+\\S+\\s+AS\\s+${stage}\\s*$`, 'i').test(l));
  assert.ok(start >= 0, `no stage named ${stage}`);
  const end = lines.findIndex((l, i) => i > start && /^FROM\s/i.test(l));
  return lines
    .slice(start + 1, end < 0 ? undefined : end)
    .filter((l) => /^COPY\s/i.test(l) && !/--from=/i.test(l))
    .flatMap((l) => l.trim().split(/\s+/).slice(1, -1));
}

const model = suite('Dockerfile: the model stage');
model('copies every source file that `npm run model` loads', async () => {
  const copies = stageCopies(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'), 'model');
  const result = await build({
    entryPoints: [path.join(ROOT, 'scripts/fetch-model.ts')],
    bundle: true,
    write: false,
    metafile: true,
    platform: 'node',
    format: 'esm',
    packages: 'external',
    logLevel: 'silent',
  });
  const inputs = Object.keys(result.metafile.inputs).map((p) => path.relative(ROOT, path.resolve(ROOT, p)));
  assert.ok(inputs.includes('functions/classify/src/model/prepare.ts'), 'the metafile lists the converter');
  const covered = (file: string) => copies.some((src) => file === src || file.startsWith(src.replace(/\/?$/, '/')));
  const missing = inputs.filter((f) => !covered(f));
  assert.equal(missing, [], `the model stage does not copy: ${missing.join(', ')}`);
});
model.run();
