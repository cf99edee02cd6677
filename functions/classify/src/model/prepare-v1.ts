// Makes MobileNet v1 available on disk: the verified TF.js source files, the ONNX file
// converted from them and, for KLASSIFY_MODEL_PRECISION=int8, its quantised version.
// Conversion runs once; its output is named by a key derived from the pinned source
// checksums, the converter version and (int8) the quantiser version and committed
// calibration ranges, so a change produces a new file instead of reusing a stale one.
// These files are portable; what one runtime derives from them for one CPU is its
// engine's business (engines/onnx-cache.ts).
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config.ts';
import { AssetError } from '../errors.ts';
import { fetchModelSource, sha256, writeAtomically } from './assets.ts';
import { MOBILENET_V1, MODEL_NAME } from './mobilenet-v1.ts';
/** Bump when the converter's output changes, to invalidate cached ONNX files. */
const CONVERTER_VERSION = '2';
/** Bump when the quantiser's output changes. */
const QUANTIZER_VERSION = '2';
/**
 * Activations as uint8 (x86's u8×s8 integer kernels); the int8 variant measured no faster
 * and no more accurate here (docs/models.md).
 */
const INT8_ACTIVATIONS = 'u8';

export interface V1Files {
  model: typeof MODEL_NAME;
  precision: Precision;
  /** Folder with model.json and its shards (the tfjs engine's input). */
  tfjsDir: string;
  /** The graph the onnx engine loads, in the configured precision. */
  onnxPath: string;
  /** The fp32 graph: onnxPath itself, or the source of the int8 one. */
  fp32Path: string;
}

type Precision = Config['modelPrecision'];
type ModelConfig = Pick<Config, 'modelCacheDir' | 'modelMirror' | 'modelFetch'> & { modelPrecision?: Precision };

/** The committed calibration, loaded only for int8: fp32 start-ups never parse it. */
const calibration = async () => (await import('./calibration.ts')).CALIBRATION;

const cacheKey = async (precision: Precision) => {
  const source = CONVERTER_VERSION + JSON.stringify(Object.entries(MOBILENET_V1.sha256).sort());
  const int8 = precision === 'int8' ? QUANTIZER_VERSION + INT8_ACTIVATIONS + JSON.stringify(await calibration()) : '';
  return sha256(Buffer.from(source + int8)).slice(0, 12);
};

export async function v1Paths(config: ModelConfig): Promise<V1Files> {
  const precision = config.modelPrecision ?? 'fp32';
  const stem = path.join(config.modelCacheDir, `${MODEL_NAME}.${await cacheKey(precision)}${precision === 'int8' ? '.int8' : ''}`);
  return {
    model: MODEL_NAME,
    precision,
    tfjsDir: path.join(config.modelCacheDir, 'tfjs', MODEL_NAME),
    onnxPath: `${stem}.onnx`,
    fp32Path: path.join(config.modelCacheDir, `${MODEL_NAME}.${await cacheKey('fp32')}.onnx`),
  };
}

export async function prepareV1(
  config: ModelConfig,
  opts: { needSource?: boolean; log?: (msg: string) => void } = {},
): Promise<V1Files> {
  const files = await v1Paths(config);
  const log = opts.log ?? (() => {});
  if (existsSync(files.onnxPath) && !opts.needSource) return files;
  if (opts.needSource || !existsSync(files.fp32Path)) await convert(config, files, log);
  if (!existsSync(files.onnxPath)) {
    // Only int8 gets here: the fp32 file is onnxPath otherwise, and convert() wrote it.
    const started = performance.now();
    const { quantizeQdq } = await import('./quantize.ts');
    const { ranges, means } = await calibration();
    const int8 = quantizeQdq(new Uint8Array(await readFile(files.fp32Path)), ranges, { activations: INT8_ACTIVATIONS, means });
    try {
      await writeAtomically(files.onnxPath, int8);
    } catch (err) {
      throw new AssetError(`Cannot write the int8 model to ${config.modelCacheDir} (${(err as Error).message}). ` +
        'Prepare it where the cache is writable: KLASSIFY_MODEL_PRECISION=int8 npm run model (the container image bakes it in).');
    }
    log(`quantised ${MODEL_NAME} to int8 in ${Math.round(performance.now() - started)} ms: ${files.onnxPath}`);
  }
  return files;
}

async function convert(config: ModelConfig, files: V1Files, log: (msg: string) => void): Promise<void> {
  await fetchModelSource(MOBILENET_V1, config, files.tfjsDir, log);
  if (existsSync(files.fp32Path)) return;
  const started = performance.now();
  // Loaded only when converting, to keep the protobuf schema out of a normal start-up.
  const [{ convertToOnnx }, { readLayersModel }] = await Promise.all([import('./convert.ts'), import('./tfjs-layers.ts')]);
  await writeAtomically(files.fp32Path, convertToOnnx(await readLayersModel(files.tfjsDir)));
  log(`converted ${MODEL_NAME} to ONNX in ${Math.round(performance.now() - started)} ms: ${files.fp32Path}`);
}
