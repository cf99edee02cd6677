// The one interface both inference engines implement. Input is a batch of decoded images as
// the model takes them (model/mobilenet.ts: NHWC uint8); each engine scales them to the
// model's range itself, the ONNX graph in its first nodes. Output is the [batch, 1000]
// softmax. Types only: engines/create.ts picks and loads an implementation.
import type { EngineName, ProviderName } from '../config.ts';

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
  /**
   * ONNX Runtime's saved optimisation of onnxPath for this CPU (engines/onnx-cache.ts),
   * loaded instead when it exists. Default: the cache's name for it.
   */
  optimizedPath?: string;
  /** What onnxPath holds; int8 may need a slower, exact kernel choice (engines/onnx.ts). */
  precision?: 'fp32' | 'int8';
  /** The TF.js model folder: the tfjs engine's input (MobileNet v1 only). */
  tfjsDir?: string;
  log?: (msg: string) => void;
}
