// Calibration for static quantisation: runs the fp32 graph on photos and records the range of
// every activation the quantised graph will round. Min/max keeps every calibration value
// representable; a percentile clips the rare outliers that would otherwise stretch the
// scale and cost resolution for all the common values.
import * as ort from 'onnxruntime-node';
import { CHANNELS, INPUT_NAME, INPUT_SIZE } from './mobilenet.ts';
import { activationTensors, withOutputs, type Range } from './quantize.ts';

export const CALIBRATION_METHODS = ['minmax', 'percentile'] as const;
export type CalibrationMethod = (typeof CALIBRATION_METHODS)[number];

const BINS = 2048;

export interface Calibration {
  ranges: Record<string, Range>;
  /** Mean of every channel of each activation (NCHW), for the quantiser's bias correction. */
  means: Record<string, number[]>;
}

/** Ranges and channel means per activation tensor, from decoded 224×224 RGB photos, batch 1. */
export async function calibrate(
  fp32Model: Uint8Array,
  photos: Uint8Array[],
  opts: { method: CalibrationMethod; percentile?: number } = { method: 'minmax' },
): Promise<Calibration> {
  const names = activationTensors(fp32Model);
  const session = await ort.InferenceSession.create(withOutputs(fp32Model, names), { intraOpNumThreads: 1, logSeverityLevel: 3 });
  try {
    const run = async (rgb: Uint8Array) => {
      const out = await session.run({ [INPUT_NAME]: new ort.Tensor('uint8', rgb, [1, INPUT_SIZE, INPUT_SIZE, CHANNELS]) }, names);
      return names.map((n) => ({ data: out[n].data as Float32Array, channels: Number(out[n].dims[1]) }));
    };
    const ranges: Record<string, Range> = Object.fromEntries(names.map((n) => [n, { min: Infinity, max: -Infinity }]));
    const sums: Record<string, Float64Array> = {};
    for (const rgb of photos) {
      (await run(rgb)).forEach(({ data, channels }, i) => {
        const r = ranges[names[i]];
        const sum = (sums[names[i]] ??= new Float64Array(channels));
        const plane = data.length / channels;
        for (let j = 0; j < data.length; j++) {
          const v = data[j];
          if (v < r.min) r.min = v;
          if (v > r.max) r.max = v;
          sum[Math.floor(j / plane)] += v / plane;
        }
      });
    }
    const means = Object.fromEntries(Object.entries(sums).map(([n, s]) => [n, Array.from(s, (v) => v / photos.length)]));
    if (opts.method === 'minmax') return { ranges, means };
    // Second pass: a histogram of |x| per tensor over [0, max|x|], then the bin where the
    // requested share of values lies below; the range is clipped to ±that.
    const pct = opts.percentile ?? 99.99;
    const hist = names.map(() => new Float64Array(BINS));
    const top = names.map((n) => Math.max(Math.abs(ranges[n].min), Math.abs(ranges[n].max)) || 1);
    for (const rgb of photos) {
      (await run(rgb)).forEach((data, i) => {
        const h = hist[i];
        const k = BINS / top[i];
        for (const v of data.data) h[Math.min(BINS - 1, Math.floor(Math.abs(v) * k))]++;
      });
    }
    const clipped = Object.fromEntries(names.map((n, i) => {
      const total = hist[i].reduce((a, b) => a + b, 0);
      let seen = 0;
      let bin = 0;
      while (bin < BINS - 1 && (seen += hist[i][bin]) < (total * pct) / 100) bin++;
      const limit = ((bin + 1) / BINS) * top[i];
      return [n, { min: Math.max(ranges[n].min, -limit), max: Math.min(ranges[n].max, limit) }];
    }));
    return { ranges: clipped, means };
  } finally {
    await session.release();
  }
}
