// Makes MobileNet v2 available on disk: the verified TFLite file and the ONNX graph converted
// from it (convert-tflite.ts). As for v1, the converted file is named by a key derived from
// the pinned checksum and the converter version, so a change produces a new file.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config.ts';
import { AssetError } from '../errors.ts';
import { fetchModelSource, sha256, writeAtomically } from './assets.ts';
import { CLASS_COUNT, INPUT_NAME, OUTPUT_NAME } from './mobilenet.ts';
import { MOBILENET_V2, MODEL_NAME } from './mobilenet-v2.ts';
import type { Model } from './tflite.ts';

/** Bump when the converter's output changes, to invalidate cached ONNX files. */
const CONVERTER_VERSION = '1';

type ModelConfig = Pick<Config, 'modelCacheDir' | 'modelMirror' | 'modelFetch'>;

export interface V2Files {
  model: typeof MODEL_NAME;
  precision: 'int8';
  /** The TFLite file as published. */
  tflitePath: string;
  onnxPath: string;
}

export function v2Paths(config: ModelConfig): V2Files {
  const key = sha256(Buffer.from(CONVERTER_VERSION + JSON.stringify([MOBILENET_V2.sha256, MOBILENET_V2.dropClasses]))).slice(0, 12);
  return {
    model: MODEL_NAME,
    precision: 'int8',
    tflitePath: path.join(config.modelCacheDir, 'tflite', MODEL_NAME, MOBILENET_V2.file),
    onnxPath: path.join(config.modelCacheDir, `${MODEL_NAME}.${key}.onnx`),
  };
}

export async function prepareV2(config: ModelConfig, opts: { log?: (msg: string) => void } = {}): Promise<V2Files> {
  const files = v2Paths(config);
  if (existsSync(files.onnxPath)) return files;
  const log = opts.log ?? (() => {});
  await fetchModelSource(MOBILENET_V2, config, path.dirname(files.tflitePath), log);
  const started = performance.now();
  // Loaded only when converting, like v1's converter.
  const [{ convertTflite }, { readTflite }] = await Promise.all([import('./convert-tflite.ts'), import('./tflite.ts')]);
  const tflite = new Uint8Array(await readFile(files.tflitePath));
  checkInput(readTflite(tflite));
  const onnx = convertTflite(tflite, { inputName: INPUT_NAME, outputName: OUTPUT_NAME, dropClasses: MOBILENET_V2.dropClasses, classes: CLASS_COUNT });
  await writeAtomically(files.onnxPath, onnx);
  log(`converted ${MODEL_NAME} to ONNX in ${Math.round(performance.now() - started)} ms: ${files.onnxPath}`);
  return files;
}

/**
 * The pipeline feeds the decoded bytes in as they are, which is right only if the file's
 * input is what mobilenet-v2.ts says: uint8 with scale 1/128 and zero point 128.
 */
function checkInput(model: Model): void {
  const input = model.tensors[model.inputs[0]];
  const q = input?.quant;
  const { scale, zeroPoint } = MOBILENET_V2.input;
  if (input?.type !== 'uint8' || !q || Math.abs(q.scale[0] - scale) > 1e-9 || q.zeroPoint[0] !== zeroPoint) {
    throw new AssetError(`${MODEL_NAME}: the TFLite input is ${input?.type} with scale ${q?.scale[0]} and zero point ${q?.zeroPoint[0]}, ` +
      `not uint8 with scale ${scale} and zero point ${zeroPoint} as model/mobilenet-v2.ts describes it.`);
  }
}
