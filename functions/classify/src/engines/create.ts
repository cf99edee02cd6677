// Picks the engine implementation. Kept apart from engine.ts so that the interface imports
// no implementation and the implementations can import the interface without a cycle.
import type { Engine, EngineOptions } from './engine.ts';

export async function createEngine(opts: EngineOptions): Promise<Engine> {
  // Imported lazily so a process only loads the runtime it uses.
  if (opts.engine === 'tfjs') return (await import('./tfjs.ts')).createTfjsEngine(opts);
  return (await import('./onnx.ts')).createOnnxEngine(opts);
}
