// The sample photos the tests and the README's examples use: six scikit-image photos, from
// the mirror (KLASSIFY_MIRROR's fixtures/images/, or KLASSIFY_FIXTURES_MIRROR) or their
// public URL, each checked against its SHA-256.
import path from 'node:path';
import { fetchAssets, type AssetSet } from '../functions/classify/src/model/assets.ts';
import { FIXTURES_BASE_URL, FIXTURE_SHA256 } from '../functions/classify/src/model/checksums.ts';
import { FIXTURES_MIRROR, mirrorDir } from '../functions/classify/src/model/mirror.ts';

export const FIXTURES_DIR = path.resolve(import.meta.dirname, '..', '.cache', 'fixtures');
export const FIXTURE_NAMES = Object.keys(FIXTURE_SHA256);

export const FIXTURE_ASSETS: AssetSet = {
  what: 'fixture photos',
  baseUrl: FIXTURES_BASE_URL,
  sha256: FIXTURE_SHA256,
  mirror: { kind: FIXTURES_MIRROR, holds: `the photos ${FIXTURE_NAMES.join(', ')}` },
};

/** Ensures every photo is in FIXTURES_DIR and intact; returns FIXTURES_DIR. */
export function fetchFixtures(onProgress?: (done: number, total: number, file: string) => void): Promise<string> {
  return fetchAssets(FIXTURE_ASSETS, { dest: FIXTURES_DIR, mirror: mirrorDir(FIXTURES_MIRROR, process.env), onProgress });
}
