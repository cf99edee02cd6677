// ONNX Runtime engine. The session owns native memory; dispose() releases it.
import { existsSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { ConfigError } from '../errors.ts';
import { CHANNELS, INPUT_NAME, INPUT_SIZE, OUTPUT_NAME } from '../model/mobilenet.ts';
import type { Engine, EngineOptions } from './engine.ts';
import { cpuFlags, optimizedPathFor } from './onnx-cache.ts';

export async function createOnnxEngine(opts: EngineOptions): Promise<Engine> {
  const log = opts.log ?? (() => {});
  let provider: string = opts.provider;
  let session: ort.InferenceSession;
  try {
    session = await createSession(opts, provider);
  } catch (err) {
    if (provider === 'cpu') throw err;
    // ORT prefixes its source location and the failed check; keep only the explanation.
    const why = (err as Error).message.split('\n')[0].replace(/^.*? was false\. /, '');
    const reason = `the ${provider} execution provider could not start (${why})`;
    if (!opts.providerFallback) {
      throw new ConfigError(`${reason}. Is a GPU with a Vulkan driver present? ` +
        'Set KLASSIFY_PROVIDER=cpu, or KLASSIFY_PROVIDER_FALLBACK=true to fall back to the CPU.');
    }
    log(`${reason}; falling back to the cpu provider (KLASSIFY_PROVIDER_FALLBACK=true)`);
    provider = 'cpu';
    session = await createSession(opts, provider);
  }
  return {
    name: 'onnx',
    provider,
    async run(rgb, batch) {
      const feed = new ort.Tensor('uint8', rgb, [batch, INPUT_SIZE, INPUT_SIZE, CHANNELS]);
      const out = await session.run({ [INPUT_NAME]: feed });
      const probs = out[OUTPUT_NAME];
      // Copy out: the result must outlive the output tensor, which we release right away.
      const data = Float32Array.from(probs.data as Float32Array);
      probs.dispose();
      return data;
    },
    async dispose() {
      await session.release();
    },
  };
}

function createSession(opts: EngineOptions, provider: string) {
  // The pre-optimised graph (engines/onnx-cache.ts) needs no optimisation pass at load.
  const exactInt8 = opts.precision === 'int8' && int8NeedsExactKernels();
  const optimizedPath = opts.optimizedPath ?? optimizedPathFor(opts.onnxPath);
  // The saved graph was optimised without the exact-kernel rewrite, so it cannot serve then.
  const optimized = provider === 'cpu' && existsSync(optimizedPath) && !exactInt8;
  return ort.InferenceSession.create(optimized ? optimizedPath : opts.onnxPath, {
    executionProviders: [provider],
    intraOpNumThreads: opts.intraOpThreads,
    interOpNumThreads: 1,
    graphOptimizationLevel: optimized ? 'disabled' : 'all',
    extra: {
      session: {
        // Spinning helps only when a thread owns a core; with one worker per core it steals
        // cycles from the decoder threads instead.
        intra_op: { allow_spinning: '0' },
        // x64 CPUs without VNNI multiply u8×s8 pairs into saturating 16-bit sums, which can
        // wreck an int8 model's output; there ORT must use its exact, ~2× slower u8×u8
        // kernels. With VNNI both give identical results and the default is the fast one.
        ...(exactInt8 ? { x64quantprecision: '1' } : {}),
      },
    },
  });
}

function int8NeedsExactKernels(): boolean {
  if (process.arch !== 'x64') return false;
  const flags = cpuFlags();
  if (flags === undefined) return true; // unknown: choose correct over fast
  return !/\b(avx512_vnni|avx_vnni)\b/.test(flags);
}
