import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { PAGE_DEFAULTS } from '../../../contracts/page.ts';
import { overLimit, shrinkSize, TARGET_SHORT_SIDE } from '../../src/lib/limits.ts';

const limits = { maxUploadBytes: 10 * 1024 * 1024, maxPixels: 50_000_000, maxDimension: 32_768 };

const refused = suite('what the function would refuse');
refused('a photo within every limit goes as it is, however large its sides', () => {
  assert.is(overLimit(49 * 1024, { width: 1200, height: 800 }, limits), '');
  assert.is(overLimit(9 * 1024 * 1024, { width: 8000, height: 6000 }, limits), '', '48 MP is under 50');
  assert.is(overLimit(2048, null, limits), '', 'a size the browser cannot read: the function judges');
});
refused('bytes, then the longest side, then pixels, each in words', () => {
  assert.is(overLimit(11.3 * 1024 * 1024, { width: 4032, height: 3024 }, limits), '11 MB is over the 10 MB upload limit');
  assert.is(overLimit(4096, { width: 40_000, height: 10 }, limits), 'its 40000 px side is over the 32768 px limit');
  assert.is(overLimit(4096, { width: 10_000, height: 6_000 }, limits), 'its 60 MP are over the 50 MP limit');
  assert.is(overLimit(4096, { width: 1000, height: 1000 }, { ...limits, maxPixels: 500_000 }), 'its 1 MP are over the 0.5 MP limit');
});
refused('the defaults are the function\'s', () => {
  assert.equal(limits, { maxUploadBytes: PAGE_DEFAULTS.maxUploadBytes, maxPixels: PAGE_DEFAULTS.maxPixels, maxDimension: PAGE_DEFAULTS.maxDimension });
});
refused.run();

const shrink = suite('shrink size');
shrink('twice the model input on the short side, aspect kept', () => {
  assert.is(TARGET_SHORT_SIDE, 448);
  assert.equal(shrinkSize({ width: 4032, height: 3024 }, limits), { width: 597, height: 448 });
  assert.equal(shrinkSize({ width: 3024, height: 4032 }, limits), { width: 448, height: 597 });
  assert.equal(shrinkSize({ width: 300, height: 200 }, limits), { width: 300, height: 200 }, 'never enlarged');
});
shrink('and within the limits, for a strip whose short side is small already', () => {
  assert.equal(shrinkSize({ width: 65_536, height: 400 }, limits), { width: 32_768, height: 200 });
  const wide = shrinkSize({ width: 30_000, height: 2_000 }, { maxPixels: 1_000_000, maxDimension: 32_768 });
  assert.ok(wide.width * wide.height <= 1_000_000, JSON.stringify(wide));
  assert.ok(wide.height <= 448);
});
shrink.run();
