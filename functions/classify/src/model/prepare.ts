// Makes a model available on disk, verified and converted to ONNX: each model has its own
// way there (prepare-v1.ts from TF.js, prepare-v2.ts from TFLite), and this picks it.
import type { Config } from '../config.ts';
import type { ModelName, Precision } from './catalog.ts';
import { MODEL_NAME as V1 } from './mobilenet-v1.ts';
import { prepareV1 } from './prepare-v1.ts';
import { prepareV2 } from './prepare-v2.ts';

export interface ModelFiles {
  model: ModelName;
  precision: Precision;
  /** The graph the onnx engine loads. */
  onnxPath: string;
  /** v1 only: the TF.js files (the tfjs engine's input). */
  tfjsDir?: string;
}

type PrepareConfig = Pick<Config, 'modelCacheDir' | 'modelMirror' | 'modelFetch' | 'modelPrecision'>;

export interface PrepareOptions {
  /** Keep v1's TF.js source files even where the ONNX file exists (the tfjs engine reads them). */
  needSource?: boolean;
  log?: (msg: string) => void;
}

export function prepareModel(model: ModelName, config: PrepareConfig, opts: PrepareOptions = {}): Promise<ModelFiles> {
  return model === V1 ? prepareV1(config, opts) : prepareV2(config, opts);
}
