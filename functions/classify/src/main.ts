// Entry point: `node dist/classify/main.js` (or via tsx in development).
import { exitCannotStart } from '../../../server-kit/exit.ts';
import { loadConfig } from './config.ts';
import { startInference } from './inference.ts';
import { expected, log } from './log.ts';

async function main() {
  const config = loadConfig();
  // Workers start loading the model first; the HTTP stack loads meanwhile.
  const inference = startInference(config, log.info);
  inference.catch(() => {}); // awaited through service.ready below
  const { startService } = await import('./server.ts');
  const service = await startService(config, log, inference);
  let signalled = false;
  const stop = async (signal: string) => {
    if (signalled) return;
    signalled = true;
    log.info('draining in-flight requests, then exiting', { signal });
    const timer = setTimeout(() => {
      log.error(`shutdown took longer than ${config.shutdownTimeoutMs} ms; exiting`);
      process.exit(1);
    }, config.shutdownTimeoutMs);
    timer.unref();
    await service.shutdown();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  await service.ready;
}

// Start-up errors we anticipate are explained in one line; anything else gets a stack.
main().catch((err) => exitCannotStart(log, err, expected));
