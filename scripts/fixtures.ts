// `npm run fixtures`: fetch (or copy from the mirror, KLASSIFY_MIRROR) and verify the sample
// photos into .cache/fixtures/, for the README's examples and `npm test`.
import path from 'node:path';
import { AssetError } from '../functions/classify/src/errors.ts';
import { FIXTURES_DIR, fetchFixtures } from '../test/fixtures.ts';

try {
  await fetchFixtures((done, total, file) => console.log(`[${done}/${total}] ${path.relative(process.cwd(), path.join(FIXTURES_DIR, file))}`));
  console.log(`sample photos ready in ${path.relative(process.cwd(), FIXTURES_DIR) || '.'}/`);
} catch (err) {
  console.error(err instanceof AssetError ? `klassify: ${err.message}` : err);
  process.exit(1);
}
