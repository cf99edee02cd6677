// Entry point: `node dist/classify/main.js` (or via tsx in development).
import { loadConfig } from './config.ts';
import { AssetError, ConfigError } from './errors.ts';
import { startInference } from './inference.ts';

// performance.now() counts from process start, so these marks are the cold-start timeline
// (docs/performance.md); `npm run bench -- --only=cold` reads the line they print.
const since = () => Math.round(performance.now());

async function main() {
  const marks: Record<string, number> = { main: since() };
  const config = loadConfig();
  // Workers start loading the model first; the HTTP stack loads meanwhile.
  const inference = startInference(config, console.log);
  inference.then(() => (marks.warm = since()), () => {}); // failures surface through service.ready
  const { startService } = await import('./server.ts');
  marks.imported = since();
  const service = await startService(config, console.log, inference);
  marks.listening = since();
  let signalled = false;
  const stop = async (signal: string) => {
    if (signalled) return;
    signalled = true;
    console.log(`${signal}: draining in-flight requests, then exiting`);
    const timer = setTimeout(() => {
      console.error(`shutdown took longer than ${config.shutdownTimeoutMs} ms; exiting`);
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
  console.log(`start-up (ms since process start): main module ${marks.main}, HTTP stack loaded ${marks.imported}, ` +
    `listening ${marks.listening}, first worker warm ${marks.warm}, ready ${marks.ready}`);
}

main().catch((err) => {
  // Start-up errors we anticipate are explained in one line; anything else gets a stack.
  // (A worker's error crosses the thread boundary as a plain Error that keeps its name.)
  const expected = err instanceof ConfigError || err instanceof AssetError || ['ConfigError', 'AssetError'].includes(err?.name);
  if (expected) console.error(`klassify: ${err.message}`);
  else if (err?.code === 'EADDRINUSE') console.error(`klassify: port ${err.port} is already in use; stop the other process or set PORT.`);
  else console.error('klassify: start-up failed:', err);
  process.exit(1);
});
