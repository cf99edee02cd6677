// Arm NN (Debian's python3-pyarmnn with the CpuRef backend) as an independent runtime for
// .tflite files: runs armnn-reference.py and reads back what it wrote.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ByteBuffer } from 'flatbuffers';
import { readTflite } from '../src/model/tflite.ts';
import type { Program } from '../../../test/programs.ts';

const SCRIPT = path.join(import.meta.dirname, 'armnn-reference.py');

/**
 * The Python that has pyarmnn: KLASSIFY_ARMNN_PYTHON, else Debian's /usr/bin/python3 (a
 * python3 earlier in PATH, e.g. from pyenv, does not see Debian's packages).
 */
export const ARMNN: Program = {
  name: 'Arm NN (a python3 with pyarmnn)',
  env: 'KLASSIFY_ARMNN_PYTHON',
  candidates: ['/usr/bin/python3'],
  install: 'apt-get install -y python3-pyarmnn libarmnn-cpuref-backend22 (or set KLASSIFY_ARMNN_PYTHON to a python3 that imports pyarmnn).',
  suite: 'TFLite conversion against Arm NN',
  works: (python) => spawnSync(python, ['-c', 'import pyarmnn'], { stdio: 'ignore', timeout: 60_000 }).status === 0,
};

export interface ArmnnOutput {
  name: string;
  shape: number[];
  scale: number;
  zeroPoint: number;
  /** The raw integers, in Arm NN's (TFLite's) NHWC layout. */
  data: Uint8Array | Int8Array;
}

export interface ArmnnRun {
  version: string;
  /** Per image, every output of the model's subgraph. */
  images: ArmnnOutput[][];
}

/** Runs `model` on each image (uint8 NHWC, the model's input size) with Arm NN's CpuRef backend. */
export async function runArmnn(python: string, model: Uint8Array, images: Uint8Array[]): Promise<ArmnnRun> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'klassify-armnn-'));
  try {
    const [modelPath, pixelsPath, outPath] = ['model.tflite', 'pixels.bin', 'out.bin'].map((f) => path.join(dir, f));
    await writeFile(modelPath, model);
    await writeFile(pixelsPath, Buffer.concat(images));
    const stdout = await run(python, [SCRIPT, modelPath, pixelsPath, outPath]);
    const meta = JSON.parse(stdout) as { armnn: string; images: number; outputs: Array<Omit<ArmnnOutput, 'data'> & { dtype: string; bytes: number }> };
    const bytes = await readFile(outPath);
    let offset = 0;
    const perImage = Array.from({ length: meta.images }, () =>
      meta.outputs.map(({ dtype, bytes: size, ...o }) => {
        if (dtype !== 'uint8' && dtype !== 'int8') throw new Error(`Arm NN output ${o.name} is ${dtype}; expected 8-bit integers`);
        const raw = bytes.subarray(offset, (offset += size));
        return { ...o, data: dtype === 'uint8' ? new Uint8Array(raw) : new Int8Array(new Uint8Array(raw).buffer) };
      }),
    );
    return { version: meta.armnn, images: perImage };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function run(python: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`Arm NN reference exited with ${code}: ${stderr}`))));
  });
}

/**
 * The same model with every operator's output listed as a subgraph output, so one Arm NN
 * run returns them all. The new outputs vector is appended to the file and the subgraph's
 * `outputs` field (slot 2 of SubGraph in schema.fbs) pointed at it: flatbuffer offsets are
 * unsigned and forward, which a vector past the end of the file satisfies.
 */
export function withEveryOutput(file: Uint8Array): { model: Uint8Array; tensors: number[] } {
  const tensors = readTflite(file).operators.map((op) => op.outputs[0]);
  const bb = new ByteBuffer(file);
  const root = bb.readInt32(0);
  const subgraph = bb.__indirect(bb.__vector(root + bb.__offset(root, 4 + 2 * 2)));
  const field = subgraph + bb.__offset(subgraph, 4 + 2 * 2);
  const start = Math.ceil(file.length / 4) * 4;
  const model = new Uint8Array(start + 4 + 4 * tensors.length);
  model.set(file);
  const view = new DataView(model.buffer);
  view.setUint32(start, tensors.length, true);
  tensors.forEach((t, i) => view.setInt32(start + 4 + 4 * i, t, true));
  view.setUint32(field, start - field, true);
  return { model, tensors };
}

/** An NHWC tensor's values in NCHW order ([N, C] tensors are the same in both). */
export function toNchw(data: Uint8Array | Int8Array, shape: number[]): Uint8Array | Int8Array {
  if (shape.length !== 4) return data;
  const [n, h, w, c] = shape;
  const out = new (data.constructor as Uint8ArrayConstructor | Int8ArrayConstructor)(data.length);
  for (let b = 0; b < n; b++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        for (let k = 0; k < c; k++) out[((b * c + k) * h + y) * w + x] = data[((b * h + y) * w + x) * c + k];
  return out;
}
