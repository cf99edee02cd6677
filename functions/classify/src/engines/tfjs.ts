// TF.js engine: the reference the ONNX conversion is checked against. It uses
// @tensorflow/tfjs-node when installed (native TensorFlow), else the portable wasm backend.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import type * as tfTypes from '@tensorflow/tfjs';
import { CHANNELS, INPUT_SIZE } from '../model/mobilenet.ts';
import { NORMALIZE } from '../model/mobilenet-v1.ts';
import type { Engine, EngineOptions } from './engine.ts';

type Tf = typeof tfTypes;

async function loadTf(log: (msg: string) => void): Promise<{ tf: Tf; provider: string }> {
  try {
    // Optional: not a dependency, because its installer downloads libtensorflow.
    const tf = (await import(/* @vite-ignore */ '@tensorflow/tfjs-node' as string)) as Tf;
    return { tf, provider: 'tensorflow' };
  } catch {
    const tf = await import('@tensorflow/tfjs');
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    const dist = path.dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm'));
    wasm.setWasmPaths(dist + path.sep);
    await tf.setBackend('wasm');
    await tf.ready();
    log('tfjs: @tensorflow/tfjs-node is not installed; using the wasm backend');
    return { tf, provider: 'wasm' };
  }
}

export async function createTfjsEngine(opts: EngineOptions): Promise<Engine> {
  const { tfjsDir } = opts;
  if (!tfjsDir) throw new Error('the tfjs engine needs the TF.js model folder (tfjsDir)');
  const { tf, provider } = await loadTf(opts.log ?? (() => {}));
  const json = JSON.parse(await readFile(path.join(tfjsDir, 'model.json'), 'utf8'));
  const specs = json.weightsManifest.flatMap((g: { weights: unknown[] }) => g.weights);
  const shards = await Promise.all(
    json.weightsManifest.flatMap((g: { paths: string[] }) => g.paths).map((p: string) => readFile(path.join(tfjsDir, p))),
  );
  const weightData = new Uint8Array(Buffer.concat(shards)).buffer;
  const model = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: specs, weightData }));
  return {
    name: 'tfjs',
    provider,
    async run(rgb, batch) {
      const output = tf.tidy(() => {
        // As the reference tfjs-models/mobilenet scales: out = in / 127.5 - 1 (NORMALIZE).
        const bytes = tf.tensor4d(Float32Array.from(rgb), [batch, INPUT_SIZE, INPUT_SIZE, CHANNELS]);
        const x = bytes.mul(NORMALIZE.scale).add(NORMALIZE.offset);
        return model.predict(x) as tfTypes.Tensor;
      });
      try {
        return (await output.data()) as Float32Array;
      } finally {
        output.dispose();
      }
    },
    async dispose() {
      model.dispose();
    },
  };
}
