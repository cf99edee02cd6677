// Makes the model available on disk: the verified TF.js source files and the ONNX file
// converted from them. Conversion runs once; its output is named by a key derived from the
// pinned source checksums and the converter version, so a changed source or converter
// produces a new file instead of silently reusing a stale one.
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import type { Config } from '../config.ts';
import { AssetError } from '../errors.ts';
import { fetchAssets, sha256 } from './assets.ts';
import { MODEL_BASE_URL, MODEL_SHA256 } from './checksums.ts';

export const MODEL_NAME = 'mobilenet_v1_0.75_224';
/** Bump when the converter's output changes, to invalidate cached ONNX files. */
const CONVERTER_VERSION = '2';

export interface ModelFiles {
  /** Folder with model.json and its shards (the tfjs engine's input). */
  tfjsDir: string;
  onnxPath: string;
  /**
   * The graph as ONNX Runtime optimised it for this CPU and runtime version: it loads in
   * ~10 ms instead of ~200 ms. Such a file may hold CPU-specific layouts, so its name
   * carries a fingerprint of both, and a mismatch falls back to onnxPath.
   */
  optimizedPath: string;
}

type ModelConfig = Pick<Config, 'modelCacheDir' | 'modelMirror' | 'modelFetch'>;

const cacheKey = () =>
  sha256(Buffer.from(CONVERTER_VERSION + JSON.stringify(Object.entries(MODEL_SHA256).sort()))).slice(0, 12);

export function modelPaths(config: ModelConfig): ModelFiles {
  return {
    tfjsDir: path.join(config.modelCacheDir, 'tfjs', MODEL_NAME),
    onnxPath: path.join(config.modelCacheDir, `${MODEL_NAME}.${cacheKey()}.onnx`),
    optimizedPath: path.join(config.modelCacheDir, `${MODEL_NAME}.${cacheKey()}.ort-${runtimeFingerprint()}.onnx`),
  };
}

function runtimeFingerprint(): string {
  const ortVersion = createRequire(import.meta.url)('onnxruntime-node/package.json').version;
  let flags = '';
  try {
    flags = /^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '';
  } catch {
    // not Linux: the CPU model name has to do
  }
  return sha256(Buffer.from([os.arch(), ortVersion, os.cpus()[0]?.model, flags].join('|'))).slice(0, 10);
}

/** Saves the session-optimised graph once; failure only costs start-up time later. */
async function optimizeForThisCpu(files: ModelFiles, log: (msg: string) => void): Promise<void> {
  if (existsSync(files.optimizedPath)) return;
  try {
    accessSync(path.dirname(files.optimizedPath), constants.W_OK);
  } catch {
    return; // a read-only cache (the container image): use the portable file
  }
  try {
    const ort = await import('onnxruntime-node');
    const tmp = `${files.optimizedPath}.part`;
    // Severity 3 (errors only) hides ORT's warning that the file is CPU-specific: we know.
    const session = await ort.InferenceSession.create(files.onnxPath, { graphOptimizationLevel: 'all', optimizedModelFilePath: tmp, logSeverityLevel: 3 });
    await session.release();
    await rename(tmp, files.optimizedPath);
    log(`saved the CPU-optimised model: ${files.optimizedPath}`);
  } catch (err) {
    log(`could not save a CPU-optimised model (${(err as Error).message}); sessions will optimise at load`);
  }
}

export async function prepareModel(
  config: ModelConfig,
  opts: { needSource?: boolean; log?: (msg: string) => void } = {},
): Promise<ModelFiles> {
  const files = modelPaths(config);
  const log = opts.log ?? (() => {});
  if (existsSync(files.onnxPath) && !opts.needSource) {
    await optimizeForThisCpu(files, log);
    return files;
  }
  const haveSource = Object.keys(MODEL_SHA256).every((f) => existsSync(path.join(files.tfjsDir, f)));
  if (config.modelFetch === 'never' && !config.modelMirror && !haveSource) {
    throw new AssetError(`The model is not in ${config.modelCacheDir} and KLASSIFY_MODEL_FETCH=never forbids ` +
      'downloading it. Run `npm run model` (or build the container image, which bakes it in) first.');
  }
  if (!haveSource) {
    log(config.modelMirror ? `copying the model from the mirror ${config.modelMirror}` : `downloading the model from ${MODEL_BASE_URL}`);
  }
  await fetchAssets(
    { what: 'MobileNet v1 0.75/224 (TF.js)', baseUrl: MODEL_BASE_URL, sha256: MODEL_SHA256 },
    {
      dest: files.tfjsDir,
      mirror: config.modelMirror && path.join(config.modelMirror, MODEL_NAME),
      onProgress: progressBar(),
    },
  );
  if (!existsSync(files.onnxPath)) {
    const started = performance.now();
    // Loaded only when converting, to keep the protobuf schema out of a normal start-up.
    const [{ convertToOnnx }, { readLayersModel }] = await Promise.all([import('./convert.ts'), import('./tfjs-layers.ts')]);
    const onnx = convertToOnnx(await readLayersModel(files.tfjsDir));
    await mkdir(path.dirname(files.onnxPath), { recursive: true });
    await writeFile(`${files.onnxPath}.part`, onnx);
    await rename(`${files.onnxPath}.part`, files.onnxPath);
    log(`converted the model to ONNX in ${Math.round(performance.now() - started)} ms: ${files.onnxPath}`);
  }
  await optimizeForThisCpu(files, log);
  return files;
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
