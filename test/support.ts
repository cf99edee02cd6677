// Shared test support: the model and fixture photos (mirror or download, verified), a
// config for loopback servers, and a running service per suite.
import path from 'node:path';
import { readFile } from 'node:fs/promises';
import { loadConfig, type Config } from '../functions/classify/src/config.ts';
import { startService, type RunningService } from '../functions/classify/src/server.ts';
import { silentLogger } from '../server-kit/log.ts';
import { fetchFixtures } from './fixtures.ts';

export const ROOT = path.resolve(import.meta.dirname, '..');
export { FIXTURE_NAMES } from './fixtures.ts';

let fixturesDir: Promise<string> | undefined;

/** The fixture photos, from the mirror (KLASSIFY_MIRROR) or their public URL, verified once per process. */
export function fixtures(): Promise<string> {
  fixturesDir ??= fetchFixtures();
  return fixturesDir;
}

/** A fixture's bytes, as a plain Uint8Array that fetch and Blob accept. */
export async function fixture(name: string): Promise<Uint8Array<ArrayBuffer>> {
  return new Uint8Array(await readFile(path.join(await fixtures(), name)));
}

export function testConfig(overrides: Record<string, string> = {}): Readonly<Config> {
  return loadConfig({
    ...process.env,
    PORT: '0',
    HOST: '127.0.0.1',
    KLASSIFY_MODEL_CACHE: path.join(ROOT, '.cache/model'),
    KLASSIFY_WORKERS: '1',
    ...overrides,
  });
}

/** A ready service on a loopback port. If it never gets ready, what it started is closed first. */
export async function startTestService(overrides: Record<string, string> = {}): Promise<RunningService> {
  const service = await startService(testConfig(overrides), silentLogger);
  try {
    await service.ready;
  } catch (err) {
    await service.shutdown();
    throw err;
  }
  return service;
}

export const CAT_LABELS = ['Egyptian cat', 'tabby', 'tiger cat'];

/** Top-1 labels the reference TF.js model gives (../shared/README.md). */
export const EXPECTED_TOP1: Record<string, string[]> = {
  'chelsea.png': CAT_LABELS,
  'coffee.png': ['espresso'],
  'camera.png': ['tripod'],
  'motorcycle_left.png': ['moped'],
  'rocket.jpg': ['missile'],
};

export { requireProgram, findProgram, inCI, type Program } from './programs.ts';
export { pollUntil, waitForPort, within } from './wait.ts';
export { parseMetrics, scrapeMetrics, type MetricSamples } from './metrics.ts';
