// A small SVG line-chart writer for benchmark and load-test results: one or more series of
// (x, y) points, linear or log2 x axis, "nice" tick values, a legend. It returns a string;
// nothing here touches the file system, so it is easy to test.

export interface Series {
  name: string;
  points: ReadonlyArray<readonly [number, number]>;
  /** CSS colour; defaults to a colour-blind-safe palette entry. */
  colour?: string;
  /** Draws a dashed line (e.g. for a reference or a second metric). */
  dashed?: boolean;
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  width?: number;
  height?: number;
  /** 'log2' suits concurrency steps 1, 2, 4, 8 …; needs x > 0. */
  xScale?: 'linear' | 'log2';
  /** Forces the y range to include this value (default 0, so bars of scale are honest). */
  yFloor?: number;
  /** Horizontal reference lines, e.g. a latency target. */
  refLines?: Array<{ y: number; label: string }>;
  /** Shaded ranges between a lower and an upper line, e.g. a model's prediction. */
  bands?: Band[];
}

export interface Band {
  name: string;
  /** (x, low, high) points. */
  points: ReadonlyArray<readonly [number, number, number]>;
  colour?: string;
}

// Okabe–Ito palette: distinguishable with the common forms of colour blindness.
export const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000'];

const MARGIN = { top: 40, right: 20, bottom: 50, left: 64 };

export function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** Rounds to at most 4 significant digits, dropping trailing zeros: 0.30000000000000004 → "0.3". */
export function formatNumber(value: number): string {
  if (value === 0) return '0';
  const abs = Math.abs(value);
  if (abs >= 1e6 || abs < 1e-3) return value.toExponential(2).replace(/\.?0+e/, 'e');
  return String(Number(value.toPrecision(4)));
}

/**
 * About `count` evenly spaced round tick values (steps of 1, 2 or 5 × 10^n) that cover
 * [min, max]. The first tick is ≤ min and the last ≥ max.
 */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) throw new RangeError('niceTicks needs finite bounds');
  if (max < min) [min, max] = [max, min];
  if (max === min) {
    const pad = min === 0 ? 1 : Math.abs(min) * 0.1;
    min -= pad;
    max += pad;
  }
  const rough = (max - min) / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough)!;
  const start = Math.floor(min / step + 1e-9) * step;
  const ticks: number[] = [];
  for (let v = start; v < max + step - 1e-9 * step; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

/** Powers of two covering [min, max], for a log2 axis. */
export function log2Ticks(min: number, max: number): number[] {
  if (min <= 0) throw new RangeError('a log2 axis needs positive values');
  const ticks: number[] = [];
  for (let e = Math.floor(Math.log2(min)); e <= Math.ceil(Math.log2(max)); e++) ticks.push(2 ** e);
  return ticks;
}

export function lineChart(opts: ChartOptions): string {
  const width = opts.width ?? 640;
  const height = opts.height ?? 360;
  const log = opts.xScale === 'log2';
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = height - MARGIN.top - MARGIN.bottom;
  const finite = (p: readonly [number, number]) => Number.isFinite(p[0]) && Number.isFinite(p[1]) && (!log || p[0] > 0);
  const series = opts.series.map((s) => ({ ...s, points: s.points.filter(finite) }));
  const bands = (opts.bands ?? []).map((b) => ({ ...b, points: b.points.filter((p) => finite([p[0], p[1]]) && finite([p[0], p[2]])) }));
  const all = [...series.flatMap((s) => s.points), ...bands.flatMap((b) => b.points.flatMap((p) => [[p[0], p[1]], [p[0], p[2]]] as Array<[number, number]>))];
  const xs = all.map((p) => p[0]);
  const ys = [...all.map((p) => p[1]), ...(opts.refLines ?? []).map((r) => r.y), opts.yFloor ?? 0];

  const xTicks = all.length === 0 ? [0, 1] : log ? log2Ticks(Math.min(...xs), Math.max(...xs)) : niceTicks(Math.min(...xs), Math.max(...xs), 6);
  const yTicks = niceTicks(Math.min(...ys), Math.max(...ys), 5);
  const [x0, x1] = [xTicks[0], xTicks[xTicks.length - 1]];
  const [y0, y1] = [yTicks[0], yTicks[yTicks.length - 1]];
  const tx = log ? (v: number) => Math.log2(v) : (v: number) => v;
  const sx = (v: number) => MARGIN.left + (x1 === x0 ? plotW / 2 : ((tx(v) - tx(x0)) / (tx(x1) - tx(x0))) * plotW);
  const sy = (v: number) => MARGIN.top + plotH - (y1 === y0 ? plotH / 2 : ((v - y0) / (y1 - y0)) * plotH);
  const px = (n: number) => n.toFixed(1);

  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  out.push(`<title>${escapeXml(opts.title)}</title>`);
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(opts.title)}</text>`);
  for (const t of yTicks) {
    out.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${px(sy(t))}" y2="${px(sy(t))}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${MARGIN.left - 6}" y="${px(sy(t) + 4)}" text-anchor="end">${formatNumber(t)}</text>`);
  }
  for (const t of xTicks) {
    out.push(`<line x1="${px(sx(t))}" x2="${px(sx(t))}" y1="${MARGIN.top + plotH}" y2="${MARGIN.top + plotH + 4}" stroke="#333"/>`);
    out.push(`<text x="${px(sx(t))}" y="${MARGIN.top + plotH + 18}" text-anchor="middle">${formatNumber(t)}</text>`);
  }
  out.push(`<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${MARGIN.left + plotW / 2}" y="${height - 10}" text-anchor="middle">${escapeXml(opts.xLabel)}</text>`);
  out.push(`<text transform="translate(16 ${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle">${escapeXml(opts.yLabel)}</text>`);
  for (const r of opts.refLines ?? []) {
    out.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${px(sy(r.y))}" y2="${px(sy(r.y))}" stroke="#999" stroke-dasharray="2 3"/>`);
    out.push(`<text x="${MARGIN.left + plotW - 4}" y="${px(sy(r.y) - 4)}" text-anchor="end" fill="#666">${escapeXml(r.label)}</text>`);
  }
  bands.forEach((b, i) => {
    const colour = b.colour ?? '#999999';
    const pts = [...b.points].sort((p, q) => p[0] - q[0]);
    if (pts.length > 1) {
      const upper = pts.map((p) => `${px(sx(p[0]))},${px(sy(p[2]))}`);
      const lower = pts.map((p) => `${px(sx(p[0]))},${px(sy(p[1]))}`).reverse();
      out.push(`<polygon points="${[...upper, ...lower].join(' ')}" fill="${colour}" fill-opacity="0.22" stroke="${colour}" stroke-opacity="0.6" stroke-dasharray="3 3"/>`);
    }
    const ly = MARGIN.top + 14 + (series.length + i) * 16;
    out.push(`<rect x="${MARGIN.left + 10}" y="${ly - 9}" width="18" height="10" fill="${colour}" fill-opacity="0.22" stroke="${colour}" stroke-opacity="0.6"/>`);
    out.push(`<text x="${MARGIN.left + 34}" y="${ly}">${escapeXml(b.name)}</text>`);
  });
  series.forEach((s, i) => {
    const colour = s.colour ?? PALETTE[i % PALETTE.length];
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : '';
    const pts = [...s.points].sort((a, b) => a[0] - b[0]);
    if (pts.length > 1) {
      const d = pts.map((p, j) => `${j ? 'L' : 'M'}${px(sx(p[0]))} ${px(sy(p[1]))}`).join(' ');
      out.push(`<path d="${d}" fill="none" stroke="${colour}" stroke-width="2"${dash}/>`);
    }
    for (const p of pts) out.push(`<circle cx="${px(sx(p[0]))}" cy="${px(sy(p[1]))}" r="3" fill="${colour}"/>`);
    const ly = MARGIN.top + 14 + i * 16;
    out.push(`<line x1="${MARGIN.left + 10}" x2="${MARGIN.left + 28}" y1="${ly - 4}" y2="${ly - 4}" stroke="${colour}" stroke-width="2"${dash}/>`);
    out.push(`<text x="${MARGIN.left + 34}" y="${ly}">${escapeXml(s.name)}</text>`);
  });
  if (all.length === 0) out.push(`<text x="${width / 2}" y="${height / 2}" text-anchor="middle" fill="#666">no data</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}
