// The one interface both inference engines implement. Input is a batch of decoded images as
// NHWC RGB bytes; each engine scales them to the model's range (out = in / 127.5 - 1) itself,
// the ONNX graph in its first nodes. Output is the [batch, 1000] softmax.
import type { EngineName, ProviderName } from '../config.ts';

export const INPUT_SIZE = 224;
/** Tensor names of the converted ONNX graph (model/convert.ts). */
export const INPUT_NAME = 'input';
export const OUTPUT_NAME = 'probabilities';
export const IMAGE_VALUES = INPUT_SIZE * INPUT_SIZE * 3;

export interface Engine {
  readonly name: EngineName;
  /** What actually runs the math: cpu/webgpu for onnx, wasm/tensorflow for tfjs. */
  readonly provider: string;
  run(rgb: Uint8Array, batch: number): Promise<Float32Array>;
  dispose(): Promise<void>;
}

export interface EngineOptions {
  engine: EngineName;
  provider: ProviderName;
  providerFallback: boolean;
  intraOpThreads: number;
  onnxPath: string;
  optimizedPath: string;
  /** What onnxPath holds; int8 may need a slower, exact kernel choice (engines/onnx.ts). */
  precision?: 'fp32' | 'int8';
  tfjsDir: string;
  log?: (msg: string) => void;
}

export async function createEngine(opts: EngineOptions): Promise<Engine> {
  // Imported lazily so a process only loads the runtime it uses.
  if (opts.engine === 'tfjs') return (await import('./tfjs.ts')).createTfjsEngine(opts);
  return (await import('./onnx.ts')).createOnnxEngine(opts);
}
