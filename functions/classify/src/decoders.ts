// Where the sharp calls run: decoder processes (decoder-pool.ts), or, with
// KLASSIFY_DECODERS=0, the server's own process. main.ts starts them beside the inference
// workers, before it loads the HTTP stack, so that a decoder's start (Node, then sharp and
// libvips, then a warm-up decode) overlaps theirs rather than following it.
import type { Logger } from '../../../server-kit/log.ts';
import type { Config } from './config.ts';
import type { DecodeSteps } from './decode-image.ts';
import { DecoderPool } from './decoder-pool.ts';
import type { LoadedModel } from './inference.ts';

export type Decoders = DecodeSteps & { close?(): Promise<void>; processes?: { ready: number; total: number } };

/** Resolves once the first decoder process is ready (the others join as they are); rejects if it cannot start. */
export function startDecoders(config: Readonly<Pick<Config, 'decoders'>>, log: Pick<Logger, 'warn'>): Promise<Decoders> {
  if (!config.decoders) return import('./preprocess.ts').then((m) => m.IN_PROCESS);
  return DecoderPool.start({ processes: config.decoders, log });
}

/**
 * Stops the workers and decoder processes started beside the server when no classifier took
 * them over (the pod was stopped while starting, or the start failed): each once it has
 * started, a failed start being nothing to stop.
 */
export async function stopUnclaimed(inference: Promise<LoadedModel>, decoders: Promise<Decoders>): Promise<void> {
  await Promise.all([inference.then((m) => m.pool.close(), () => {}), decoders.then((d) => d.close?.(), () => {})]);
}
