// Starts model preparation and the inference workers. main.ts calls this before it imports
// the HTTP stack, so worker start-up (runtime load, sessions, warm-up) overlaps with the
// main thread's own module loading: that overlap is most of our cold-start budget.
import type { Logger } from '../../../server-kit/log.ts';
import type { Config } from './config.ts';
import type { EngineOptions } from './engines/engine.ts';
import { saveOptimized } from './engines/onnx-cache.ts';
import { prepareModel } from './model/prepare.ts';
import { InferencePool } from './pool.ts';

export interface LoadedModel {
  pool: InferencePool;
  loadMs: number;
}

/** Progress is info; a lost worker is a warning (pool.ts). */
export async function startInference(config: Readonly<Config>, log: Pick<Logger, 'info' | 'warn'>): Promise<LoadedModel> {
  const started = performance.now();
  const engines: Record<string, Omit<EngineOptions, 'log'>> = {};
  for (const model of config.models) {
    const files = await prepareModel(model, config, { needSource: config.engine === 'tfjs', log: log.info });
    const optimizedPath = config.engine === 'onnx' ? await saveOptimized(files.onnxPath, log.info) : undefined;
    engines[model] = { ...files, optimizedPath, engine: config.engine, provider: config.provider, providerFallback: config.providerFallback, intraOpThreads: config.intraOpThreads };
  }
  const pool = await InferencePool.start({
    workers: config.workers,
    engines,
    batchMaxSize: config.batchMaxSize,
    batchMaxDelayMs: config.batchMaxDelayMs,
    jobTimeoutMs: config.inferTimeoutMs,
    log,
  });
  const loadMs = performance.now() - started;
  log.info(`models ${config.models.join(', ')} (default ${config.model}) ready on ${config.engine}/${pool.provider} with ${config.workers} worker(s) in ${Math.round(loadMs)} ms`);
  return { pool, loadMs };
}
