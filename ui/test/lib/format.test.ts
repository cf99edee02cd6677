import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { barWidth, formatBytes, formatClock, formatMs, formatPercent, plural, splitLabel } from '../../src/lib/format.ts';

const percent = suite('formatPercent');
percent('one decimal, trailing .0 dropped', () => {
  assert.is(formatPercent(0.5432), '54.3%');
  assert.is(formatPercent(0.5), '50%');
  assert.is(formatPercent(1), '100%');
  assert.is(formatPercent(0), '0%');
});
percent('tiny non-zero values do not read as 0%', () => {
  assert.is(formatPercent(0.0000504), '<0.1%');
  assert.is(formatPercent(0.0005), '0.1%');
});
percent('clamps and rejects junk', () => {
  assert.is(formatPercent(1.2), '100%');
  assert.is(formatPercent(-0.1), '0%');
  assert.is(formatPercent(Number.NaN), '—');
});
percent.run();

const bars = suite('barWidth');
bars('a sliver for small but non-zero probabilities', () => {
  assert.is(barWidth(0.54), '54%');
  assert.is(barWidth(0.0001), '0.5%');
  assert.is(barWidth(0), '0%');
  assert.is(barWidth(2), '100%');
  assert.is(barWidth(Number.NaN), '0%');
});
bars.run();

const ms = suite('formatMs');
ms('precision follows magnitude', () => {
  assert.is(formatMs(0.42), '0.42 ms');
  assert.is(formatMs(7.14), '7.1 ms');
  assert.is(formatMs(142.6), '143 ms');
  assert.is(formatMs(999.4), '999 ms');
  assert.is(formatMs(999.6), '1.00 s');
  assert.is(formatMs(1534), '1.53 s');
  assert.is(formatMs(12_345), '12.3 s');
});
ms('missing or invalid values show a dash', () => {
  assert.is(formatMs(undefined), '—');
  assert.is(formatMs(null), '—');
  assert.is(formatMs(-1), '—');
  assert.is(formatMs(Number.POSITIVE_INFINITY), '—');
});
ms.run();

const bytes = suite('formatBytes');
bytes('binary units', () => {
  assert.is(formatBytes(512), '512 B');
  assert.is(formatBytes(2048), '2 KB');
  assert.is(formatBytes(240_640), '235 KB');
  assert.is(formatBytes(5.5 * 1024 * 1024), '5.5 MB');
  assert.is(formatBytes(10 * 1024 * 1024), '10 MB');
  assert.is(formatBytes(-1), '—');
});
bytes.run();

const labels = suite('splitLabel');
labels('first synonym is the headline, capitalised', () => {
  assert.equal(splitLabel('tabby, tabby cat'), { primary: 'Tabby', synonyms: 'tabby cat' });
  assert.equal(splitLabel('Egyptian cat'), { primary: 'Egyptian cat', synonyms: '' });
  assert.equal(splitLabel(' , '), { primary: 'Unknown', synonyms: '' });
});
labels.run();

const misc = suite('formatClock and plural');
misc('clock is HH:MM:SS in local time', () => {
  assert.is(formatClock(new Date(2026, 0, 2, 3, 4, 5)), '03:04:05');
  assert.is(formatClock(new Date('nope')), '—');
});
misc('plural', () => {
  assert.is(plural(1, 'image'), '1 image');
  assert.is(plural(3, 'image'), '3 images');
});
misc.run();
