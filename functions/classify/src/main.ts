// Entry point: `node dist/classify/main.js` (or via tsx in development).
import { exitCannotStart } from '../../../server-kit/exit.ts';
import { loadConfig } from './config.ts';
import { startInference } from './inference.ts';
import { expected, log } from './log.ts';

// performance.now() counts from process start, so these marks are the cold-start timeline
// (docs/performance.md); `npm run bench -- --only=cold` reads the line they print.
const since = () => Math.round(performance.now());

async function main() {
  const marks: Record<string, number> = { main: since() };
  const config = loadConfig();
  // Workers start loading the model first; the HTTP stack loads meanwhile.
  const inference = startInference(config, log);
  inference.then(() => (marks.warm = since()), () => {}); // failures surface through service.ready
  const { startService } = await import('./server.ts');
  marks.imported = since();
  const service = await startService(config, log, inference);
  marks.listening = since();
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
  marks.ready = since();
  log.info(`start-up (ms since process start): main module ${marks.main}, HTTP stack loaded ${marks.imported}, ` +
    `listening ${marks.listening}, first worker warm ${marks.warm}, ready ${marks.ready}`);
}

// Start-up errors we anticipate are explained in one line; anything else gets a stack.
main().catch((err) => exitCannotStart(log, err, expected));
