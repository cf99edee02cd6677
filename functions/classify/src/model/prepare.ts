// Makes the model available on disk: the verified TF.js source files, the ONNX file
// converted from them and, for KLASSIFY_MODEL_PRECISION=int8, its quantised version.
// Conversion runs once; its output is named by a key derived from the pinned source
// checksums, the converter version and (int8) the quantiser version and committed
// calibration ranges, so a change produces a new file instead of reusing a stale one.
// These files are portable; what one runtime derives from them for one CPU is its
// engine's business (engines/onnx-cache.ts).
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config.ts';
import { AssetError } from '../errors.ts';
import { fetchAssets, sha256 } from './assets.ts';
import { MODEL_BASE_URL, MODEL_SHA256 } from './checksums.ts';
import { MODEL_MIRROR } from './mirror.ts';
import { MODEL_NAME, MODEL_TITLE } from './mobilenet.ts';
/** Bump when the converter's output changes, to invalidate cached ONNX files. */
const CONVERTER_VERSION = '2';
/** Bump when the quantiser's output changes. */
const QUANTIZER_VERSION = '2';
/**
 * Activations as uint8 (x86's u8×s8 integer kernels); the int8 variant measured no faster
 * and no more accurate here (docs/performance.md).
 */
const INT8_ACTIVATIONS = 'u8';

export interface ModelFiles {
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
  const source = CONVERTER_VERSION + JSON.stringify(Object.entries(MODEL_SHA256).sort());
  const int8 = precision === 'int8' ? QUANTIZER_VERSION + INT8_ACTIVATIONS + JSON.stringify(await calibration()) : '';
  return sha256(Buffer.from(source + int8)).slice(0, 12);
};

export async function modelPaths(config: ModelConfig): Promise<ModelFiles> {
  const precision = config.modelPrecision ?? 'fp32';
  const stem = path.join(config.modelCacheDir, `${MODEL_NAME}.${await cacheKey(precision)}${precision === 'int8' ? '.int8' : ''}`);
  return {
    precision,
    tfjsDir: path.join(config.modelCacheDir, 'tfjs', MODEL_NAME),
    onnxPath: `${stem}.onnx`,
    fp32Path: path.join(config.modelCacheDir, `${MODEL_NAME}.${await cacheKey('fp32')}.onnx`),
  };
}

export async function prepareModel(
  config: ModelConfig,
  opts: { needSource?: boolean; log?: (msg: string) => void } = {},
): Promise<ModelFiles> {
  const files = await modelPaths(config);
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
    log(`quantised the model to int8 in ${Math.round(performance.now() - started)} ms: ${files.onnxPath}`);
  }
  return files;
}

async function convert(config: ModelConfig, files: ModelFiles, log: (msg: string) => void): Promise<void> {
  const haveSource = Object.keys(MODEL_SHA256).every((f) => existsSync(path.join(files.tfjsDir, f)));
  if (config.modelFetch === 'never' && !config.modelMirror && !haveSource) {
    throw new AssetError(`The model is not in ${config.modelCacheDir} and KLASSIFY_MODEL_FETCH=never forbids ` +
      'downloading it. Run `npm run model` (or build the container image, which bakes it in) first.');
  }
  if (!haveSource) {
    log(config.modelMirror ? `copying the model from the mirror ${config.modelMirror}` : `downloading the model from ${MODEL_BASE_URL}`);
  }
  await fetchAssets(
    {
      what: `${MODEL_TITLE} (TF.js)`,
      baseUrl: MODEL_BASE_URL,
      sha256: MODEL_SHA256,
      mirror: { kind: MODEL_MIRROR, holds: `${MODEL_NAME}/model.json and its weight files ${MODEL_NAME}/group1-shard1of1 … group55-shard1of1` },
    },
    {
      dest: files.tfjsDir,
      mirror: config.modelMirror && path.join(config.modelMirror, MODEL_NAME),
      onProgress: progressBar(),
    },
  );
  if (existsSync(files.fp32Path)) return;
  const started = performance.now();
  // Loaded only when converting, to keep the protobuf schema out of a normal start-up.
  const [{ convertToOnnx }, { readLayersModel }] = await Promise.all([import('./convert.ts'), import('./tfjs-layers.ts')]);
  await writeAtomically(files.fp32Path, convertToOnnx(await readLayersModel(files.tfjsDir)));
  log(`converted the model to ONNX in ${Math.round(performance.now() - started)} ms: ${files.fp32Path}`);
}

async function writeAtomically(file: string, bytes: Uint8Array): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(`${file}.part`, bytes);
  await rename(`${file}.part`, file);
}

/** A one-line progress bar on a terminal; silent when stderr is a pipe or a log file. */
function progressBar(stream = process.stderr) {
  if (!stream.isTTY) return undefined;
  return (done: number, total: number, file: string) => {
    const width = 30;
    const filled = Math.round((done / total) * width);
    stream.write(`\r[${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${done}/${total} ${file.padEnd(20)}`);
    if (done === total) stream.write('\n');
  };
}
