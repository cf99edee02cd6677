// Reads a TF.js *layers* model (model.json + binary shards) into plain typed arrays.
// Only what the converter needs: the sequential layer list and named float32 weights.
import { readFile } from 'node:fs/promises';
import path from 'node:path';

export interface LayerSpec {
  className: string;
  name: string;
  config: Record<string, unknown>;
  /** Names of the layers feeding this one (empty for the input layer). */
  inbound: string[];
}

export interface Weight {
  shape: number[];
  values: Float32Array;
}

export interface LayersModel {
  layers: LayerSpec[];
  weights: Map<string, Weight>;
}

interface ManifestGroup {
  paths: string[];
  weights: { name: string; shape: number[]; dtype: string }[];
}

export async function readLayersModel(dir: string): Promise<LayersModel> {
  const json = JSON.parse(await readFile(path.join(dir, 'model.json'), 'utf8'));
  const rawLayers = json?.modelTopology?.model_config?.config?.layers;
  if (!Array.isArray(rawLayers)) throw new Error(`${dir}/model.json is not a TF.js layers model`);
  const layers: LayerSpec[] = rawLayers.map((l: any) => ({
    className: l.class_name,
    name: l.name ?? l.config.name,
    config: l.config,
    inbound: (l.inbound_nodes?.[0] ?? []).map((n: unknown[]) => String(n[0])),
  }));
  const weights = new Map<string, Weight>();
  // Shards of one group are a single byte stream split into files; weights are packed
  // back to back in manifest order, so reading must follow that order exactly.
  for (const group of json.weightsManifest as ManifestGroup[]) {
    const shards = await Promise.all(group.paths.map((p) => readFile(path.join(dir, p))));
    const bytes = Buffer.concat(shards);
    let offset = 0;
    for (const w of group.weights) {
      if (w.dtype !== 'float32') throw new Error(`weight ${w.name}: unsupported dtype ${w.dtype}`);
      const count = w.shape.reduce((a, b) => a * b, 1);
      const end = offset + count * 4;
      if (end > bytes.length) throw new Error(`weight ${w.name} runs past the end of its shards`);
      // Copy into a fresh, aligned buffer: the slice may start at an odd byte offset.
      const values = new Float32Array(count);
      Buffer.from(values.buffer).set(bytes.subarray(offset, end));
      weights.set(w.name, { shape: w.shape, values });
      offset = end;
    }
  }
  return { layers, weights };
}
