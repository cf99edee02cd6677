// Entry point: `node dist/classify/main.js` (or via tsx in development).
import { exitCannotStart } from '../../../server-kit/exit.ts';
import { loadConfig } from './config.ts';
import { startDecoders, stopUnclaimed } from './decoders.ts';
import { startInference } from './inference.ts';
import { expected, log } from './log.ts';
import type { RunningService } from './server.ts';

// performance.now() counts from process start, so these marks are the cold-start timeline
// (docs/performance.md); `npm run bench -- --only=cold` reads the line they print.
const since = () => Math.round(performance.now());

async function main() {
  const marks: Record<string, number> = { main: since() };
  const config = loadConfig();
  // Workers start loading the model first, and the decoder processes start; the HTTP stack
  // loads meanwhile.
  const inference = startInference(config, log);
  const decoders = startDecoders(config, log);
  inference.then(() => (marks.warm = since()), () => {}); // failures surface through service.ready
  decoders.then(() => (marks.decoder = since()), () => {});
  // Handled from the start: a pod can be stopped while it is still starting, and its
  // workers and decoder processes must still be stopped in order, not torn down mid-load.
  let service: RunningService | undefined;
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
    // Before it listens, nothing has been admitted: only the workers and decoders need stopping.
    if (service) await service.shutdown();
    else await stopUnclaimed(inference, decoders);
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  const { startService } = await import('./server.ts');
  marks.imported = since();
  if (signalled) return;
  service = await startService(config, log, inference, decoders);
  marks.listening = since();
  if (signalled) return void service.shutdown().then(() => process.exit(0));
  await service.ready;
  marks.ready = since();
  log.info(`start-up (ms since process start): main module ${marks.main}, HTTP stack loaded ${marks.imported}, ` +
    `listening ${marks.listening}, first worker warm ${marks.warm}, decoders ready ${marks.decoder}, ready ${marks.ready}`);
}

// Start-up errors we anticipate are explained in one line; anything else gets a stack.
main().catch((err) => exitCannotStart(log, err, expected));
