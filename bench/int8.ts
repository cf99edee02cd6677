// `npm run bench:int8 [-- --quick]`: the int8 model against fp32 and the TF.js reference, on
// the evaluation split of the photo set (bench/photos.ts; never the calibration photos).
//
// Agreement: top-1 agreement, mean top-5 overlap (shared labels / 5) and the largest
// |Δp| over every photo and class, each against fp32 ONNX and against TF.js (wasm).
// Speed: ms per image at batch 1 on one thread, every engine measured in the same rounds,
// interleaved photo by photo so that load from other processes hits them alike; medians.
// Decision rule for the default: int8 only if ≥ 1.5× faster than fp32 and top-1 agreement
// with fp32 ≥ 98 %.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../functions/classify/src/config.ts';
import { createEngine } from '../functions/classify/src/engines/create.ts';
import type { Engine } from '../functions/classify/src/engines/engine.ts';
import { optimizedPathFor } from '../functions/classify/src/engines/onnx-cache.ts';
import { topK } from '../functions/classify/src/labels.ts';
import { calibrate, type Calibration, type CalibrationMethod } from '../functions/classify/src/model/calibrate.ts';
import { prepareV1, type V1Files } from '../functions/classify/src/model/prepare-v1.ts';
import { quantizeQdq, type ActivationType } from '../functions/classify/src/model/quantize.ts';
import { ROOT } from '../test/support.ts';
import { decodePhotos } from './calibrate.ts';
import { photoSet, readManifest } from './photos.ts';
import { loadAverage, median, round } from './stats.ts';
import { cli, progress } from './cli.ts';

interface Candidate {
  name: string;
  engine: Engine;
  probs: Float32Array[];
  ms: number[];
}

export interface Agreement {
  top1: number;
  top5: number;
  maxAbsDiff: number;
}

export function agreement(a: Float32Array[], b: Float32Array[]): Agreement {
  let top1 = 0;
  let top5 = 0;
  let maxAbsDiff = 0;
  for (let i = 0; i < a.length; i++) {
    const [ka, kb] = [topK(a[i], 5).map((p) => p.classIndex), topK(b[i], 5).map((p) => p.classIndex)];
    if (ka[0] === kb[0]) top1++;
    top5 += ka.filter((k) => kb.includes(k)).length / 5;
    for (let j = 0; j < a[i].length; j++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs(a[i][j] - b[i][j]));
  }
  return { top1: (100 * top1) / a.length, top5: (100 * top5) / a.length, maxAbsDiff };
}

async function onnxEngine(onnxPath: string, optimizedPath = `${onnxPath}.none`): Promise<Engine> {
  return createEngine({ engine: 'onnx', provider: 'cpu', providerFallback: false, intraOpThreads: 1, onnxPath, optimizedPath, tfjsDir: '' });
}

/** In-memory variants beside the shipped int8 model: the other activation type and calibration. */
async function variants(fp32: V1Files, calibration: Uint8Array[]): Promise<Array<[string, string]>> {
  const dir = path.join(ROOT, '.cache/bench-int8');
  await mkdir(dir, { recursive: true });
  const fp32Bytes = new Uint8Array(await readFile(fp32.fp32Path));
  const out: Array<[string, string]> = [];
  const cal: Partial<Record<CalibrationMethod, Calibration>> = {};
  const combos: Array<[ActivationType, CalibrationMethod, boolean]> = [['s8', 'minmax', true], ['u8', 'percentile', true], ['u8', 'minmax', false]];
  for (const [act, method, corrected] of combos) {
    const c = (cal[method] ??= await calibrate(fp32Bytes, calibration, { method, percentile: 99.9 }));
    const name = `${act}-${method}${corrected ? '' : '-no-bias-correction'}`;
    const file = path.join(dir, `${name}.onnx`);
    await writeFile(file, quantizeQdq(fp32Bytes, c.ranges, { activations: act, means: corrected ? c.means : undefined }));
    out.push([`int8 ${name.replaceAll('-', ' ')}`, file]);
  }
  return out;
}

/** Runs the comparison, prints its markdown table and returns the raw numbers. */
/** `variants`: also try the quantisation variants besides the shipped one (slow). */
export async function runInt8(QUICK: boolean, variantsToo = true): Promise<Record<string, unknown>> {
  const manifest = await readManifest();
  const base = { ...process.env, KLASSIFY_MODEL_CACHE: process.env.KLASSIFY_MODEL_CACHE ?? path.join(ROOT, '.cache/model') };
  const fp32 = await prepareV1(loadConfig({ ...base, KLASSIFY_MODEL_PRECISION: 'fp32' }), { needSource: true });
  const int8 = await prepareV1(loadConfig({ ...base, KLASSIFY_MODEL_PRECISION: 'int8' }));
  progress('decoding photos');
  let evaluation = await decodePhotos(await photoSet('evaluation'));
  if (QUICK) evaluation = evaluation.slice(0, 40);
  const extra = variantsToo ? await variants(fp32, await decodePhotos(await photoSet('calibration'))) : [];

  const candidates: Candidate[] = [];
  const add = async (name: string, engine: Promise<Engine>) => candidates.push({ name, engine: await engine, probs: [], ms: [] });
  await add('fp32 (ONNX Runtime)', onnxEngine(fp32.onnxPath, optimizedPathFor(fp32.onnxPath)));
  await add('int8 u8 minmax (shipped)', onnxEngine(int8.onnxPath, optimizedPathFor(int8.onnxPath)));
  for (const [name, file] of extra) await add(name, onnxEngine(file));
  await add('TF.js wasm (reference)', createEngine({ ...fp32, engine: 'tfjs', provider: 'cpu', providerFallback: false, intraOpThreads: 1 }));

  // Warm every engine, then run photo by photo through all of them, rotating the order.
  for (const c of candidates) for (let i = 0; i < 3; i++) await c.engine.run(evaluation[0], 1);
  progress(`${evaluation.length} photos × ${candidates.length} engines`);
  for (let i = 0; i < evaluation.length; i++) {
    for (let k = 0; k < candidates.length; k++) {
      const c = candidates[(i + k) % candidates.length];
      const t0 = performance.now();
      c.probs.push(await c.engine.run(evaluation[i], 1));
      c.ms.push(performance.now() - t0);
    }
  }
  // A second, speed-only pass over the ONNX engines, which are fast enough to afford it.
  const rounds = QUICK ? 1 : 3;
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < evaluation.length; i++) {
      for (const c of candidates.slice(0, -1)) {
        const t0 = performance.now();
        await c.engine.run(evaluation[i], 1);
        c.ms.push(performance.now() - t0);
      }
    }
  }
  const load = await loadAverage();
  for (const c of candidates) await c.engine.dispose();

  const [ref32, tfjs] = [candidates[0], candidates.at(-1)!];
  const rows = candidates.map((c) => ({
    name: c.name,
    msPerImage: round(median(c.ms), 2),
    speedupVsFp32: round(median(ref32.ms) / median(c.ms), 2),
    vsFp32: agreement(c.probs, ref32.probs),
    vsTfjs: agreement(c.probs, tfjs.probs),
  }));
  // Where the changed labels are: agreement on the photos fp32 is at least 50 % sure of.
  const confident = ref32.probs.map((p, i) => (topK(p, 1)[0].probability >= 0.5 ? i : -1)).filter((i) => i >= 0);
  const pick = (c: Candidate) => confident.map((i) => c.probs[i]);
  const top1Probs = ref32.probs.map((p) => topK(p, 1)[0].probability);
  const confidentRows = candidates.slice(1, -1).map((c) => ({ name: c.name, top1: agreement(pick(c), pick(ref32)).top1 }));
  const shipped = rows[1];
  const adopt = shipped.speedupVsFp32 >= 1.5 && shipped.vsFp32.top1 >= 98;
  const pct = (v: number) => `${round(v, 1)} %`;
  const diff = (v: number) => v.toFixed(4);
  console.log(`\n### int8 vs fp32 vs the TF.js reference (${evaluation.length} photos, batch 1, 1 thread)\n`);
  console.log('| model | ms/image (median) | speed-up vs fp32 | top-1 = fp32 | top-5 overlap fp32 | max \\|Δp\\| fp32 | top-1 = TF.js | top-5 overlap TF.js | max \\|Δp\\| TF.js |');
  console.log('|---|--:|--:|--:|--:|--:|--:|--:|--:|');
  for (const r of rows) {
    console.log(`| ${r.name} | ${r.msPerImage} | ${r.speedupVsFp32}× | ${pct(r.vsFp32.top1)} | ${pct(r.vsFp32.top5)} | ${diff(r.vsFp32.maxAbsDiff)} | ${pct(r.vsTfjs.top1)} | ${pct(r.vsTfjs.top5)} | ${diff(r.vsTfjs.maxAbsDiff)} |`);
  }
  console.log(`\nfp32's top-1 probability: median ${round(median(top1Probs), 2)}; ≥ 0.5 on ${confident.length} photos, where top-1 agreement with fp32 is ` +
    confidentRows.map((r) => `${pct(r.top1)} (${r.name})`).join(', '));
  console.log(`\nload avg ${load}; photos: ${evaluation.length} of ${manifest.source.package}_${manifest.source.version} (evaluation split)`);
  console.log(`decision: ${adopt ? 'int8 meets' : 'int8 does not meet'} the rule (≥ 1.5× and top-1 ≥ 98 %): ` +
    `${shipped.speedupVsFp32}× and ${pct(shipped.vsFp32.top1)} → ${adopt ? 'default int8' : 'keep fp32 the default, int8 opt-in'}`);
  return { load, photos: evaluation.length, cpu: os.cpus()[0]?.model, rows, adopt, fp32Top1Median: median(top1Probs), confident: { photos: confident.length, rows: confidentRows } };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = cli({ options: { quick: { type: 'boolean', default: false }, 'no-variants': { type: 'boolean', default: false } } }, 'npm run bench:int8 -- [--quick] [--no-variants]');
  const { quick } = values;
  const results = await runInt8(quick, !values['no-variants']);
  const out = path.join(ROOT, 'bench/results', `${new Date().toISOString().slice(0, 10)}-${os.hostname()}-int8${quick ? '-quick' : ''}.json`);
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(out, `${JSON.stringify(results, null, 1)}\n`);
  progress(`wrote ${path.relative(ROOT, out)}`);
}
