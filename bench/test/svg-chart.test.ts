import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { escapeXml, formatNumber, lineChart, log2Ticks, niceTicks } from '../svg-chart.ts';

const ticks = suite('niceTicks');

ticks('covers the range with round steps', () => {
  assert.equal(niceTicks(0, 97, 5), [0, 20, 40, 60, 80, 100]);
  assert.equal(niceTicks(0, 1, 5), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.equal(niceTicks(3, 7, 4), [3, 4, 5, 6, 7]);
});

ticks('handles reversed and degenerate ranges', () => {
  assert.equal(niceTicks(10, 0, 5), niceTicks(0, 10, 5));
  const flat = niceTicks(5, 5);
  assert.ok(flat[0] <= 5 && flat[flat.length - 1] >= 5 && flat.length > 1);
  assert.ok(niceTicks(0, 0).length > 1);
});

ticks('refuses infinite bounds', () => {
  assert.throws(() => niceTicks(0, Infinity), /finite/);
});

ticks('log2 ticks are powers of two', () => {
  assert.equal(log2Ticks(1, 32), [1, 2, 4, 8, 16, 32]);
  assert.equal(log2Ticks(3, 5), [2, 4, 8]);
  assert.throws(() => log2Ticks(0, 4), /positive/);
});

ticks.run();

const text = suite('text');

text('escapes XML metacharacters', () => {
  assert.is(escapeXml(`<a & "b" 'c'>`), '&lt;a &amp; &quot;b&quot; &apos;c&apos;&gt;');
});

text('formats numbers without float noise', () => {
  assert.is(formatNumber(0.1 + 0.2), '0.3');
  assert.is(formatNumber(1234.5678), '1235');
  assert.is(formatNumber(0), '0');
  assert.is(formatNumber(2_500_000), '2.5e+6');
});

text.run();

const chart = suite('lineChart');

const circles = (svg: string) => [...svg.matchAll(/<circle cx="([\d.]+)" cy="([\d.]+)"/g)].map((m) => [Number(m[1]), Number(m[2])]);

chart('draws one marker per finite point and a legend entry per series', () => {
  const svg = lineChart({
    title: 'Latency <p50> & p99',
    xLabel: 'concurrency',
    yLabel: 'ms',
    xScale: 'log2',
    series: [
      { name: 'p50', points: [[1, 10], [2, 12], [4, 20]] },
      { name: 'p99', points: [[1, 15], [2, NaN], [4, 40]] },
    ],
  });
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  assert.ok(svg.trimEnd().endsWith('</svg>'));
  assert.is(circles(svg).length, 5);
  assert.ok(svg.includes('Latency &lt;p50&gt; &amp; p99'));
  assert.not.ok(svg.includes('NaN'));
  assert.is((svg.match(/<path /g) ?? []).length, 2);
});

chart('maps larger values higher and further right, inside the plot', () => {
  const svg = lineChart({ title: 't', xLabel: 'x', yLabel: 'y', width: 400, height: 300, series: [{ name: 's', points: [[0, 0], [10, 100]] }] });
  const [a, b] = circles(svg);
  assert.ok(b[0] > a[0], 'x grows to the right');
  assert.ok(b[1] < a[1], 'y grows upwards');
  for (const [x, y] of [a, b]) assert.ok(x >= 0 && x <= 400 && y >= 0 && y <= 300);
});

chart('spaces a log2 axis evenly per doubling', () => {
  const svg = lineChart({ title: 't', xLabel: 'x', yLabel: 'y', xScale: 'log2', series: [{ name: 's', points: [[1, 1], [2, 1], [4, 1], [8, 1]] }] });
  const xs = circles(svg).map((c) => c[0]);
  const gaps = xs.slice(1).map((x, i) => x - xs[i]);
  for (const g of gaps) assert.ok(Math.abs(g - gaps[0]) < 0.2, `even gaps: ${gaps}`);
});

chart('includes the y floor and reference lines in the range', () => {
  const svg = lineChart({
    title: 't', xLabel: 'x', yLabel: 'y',
    series: [{ name: 's', points: [[1, 50], [2, 60]] }],
    refLines: [{ y: 100, label: 'target' }],
  });
  assert.ok(svg.includes('>0</text>'), 'axis starts at 0');
  assert.ok(svg.includes('>100</text>'));
  assert.ok(svg.includes('>target</text>'));
});

chart('renders an empty chart without throwing', () => {
  const svg = lineChart({ title: 'empty', xLabel: 'x', yLabel: 'y', series: [{ name: 's', points: [] }] });
  assert.ok(svg.includes('no data'));
  assert.not.ok(svg.includes('NaN'));
});

chart.run();
