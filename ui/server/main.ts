/**
 * Entry point of the UI server: `node dist/ui/server.js` in the image,
 * `node --import tsx ui/server/main.ts` in development.
 */

import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { exitCannotStart } from '../../server-kit/exit.ts';
import { createUiServer, jsonLogger } from './app.ts';
import { loadConfig } from './config.ts';

/** dist/ui/server.js serves dist/ui/public; ui/server/main.ts (tsx) serves the same build. */
function defaultPublicDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.join(here, 'public'), path.resolve(here, '../../dist/ui/public')];
  return candidates.find((dir) => existsSync(path.join(dir, 'index.html'))) ?? candidates[0];
}

async function main() {
  const config = loadConfig(process.env, { publicDir: defaultPublicDir() });
  const ui = createUiServer(config, jsonLogger);
  const address = await ui.listen();
  jsonLogger.info('ui listening', {
    port: address.port,
    classify: config.classifyUpstream.href,
    publicDir: config.publicDir,
    // Never the token itself.
    eventSource: config.events.token ? 'POST /events/<token>, /dead-letters/<token>' : 'none (UI_EVENTS_TOKEN unset)',
  });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    jsonLogger.info('ui shutting down', { signal });
    await ui.close();
    jsonLogger.info('ui stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGHUP', () => void stop('SIGHUP'));
}

// Whatever stops start-up is explained in one line, and the exit code says so (server-kit/exit.ts).
await main().catch((error) => exitCannotStart(jsonLogger, error));
