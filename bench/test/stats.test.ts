import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { closedLoop, median, percentile, round } from '../stats.ts';

const stats = suite('stats');

stats('median of odd and even counts, and of nothing', () => {
  assert.is(median([3, 1, 2]), 2);
  assert.is(median([4, 1, 2, 3]), 2.5);
  assert.ok(Number.isNaN(median([])));
});

stats('percentile uses the nearest rank', () => {
  const values = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.is(percentile(values, 50), 50);
  assert.is(percentile(values, 99), 99);
  assert.is(percentile(values, 100), 100);
  assert.is(percentile([7], 99), 7);
});

stats('round keeps NaN for missing values', () => {
  assert.is(round(1.26), 1.3);
  assert.ok(Number.isNaN(round(NaN)));
});

stats('closedLoop runs callers concurrently for the given time', async () => {
  let inFlight = 0;
  let most = 0;
  const { rps, latencies } = await closedLoop(async () => {
    most = Math.max(most, ++inFlight);
    await new Promise((r) => setTimeout(r, 5));
    inFlight--;
  }, 3, 0.1);
  assert.is(most, 3);
  assert.ok(latencies.length >= 6 && rps > 0);
});

stats.run();
