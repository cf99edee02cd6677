import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { rankPredictions } from '../../src/lib/confidence.ts';

const p = (probability: number) => ({ probability });

const rank = suite('confidence');
rank('a confident top-1; rows under 1 % collapse', () => {
  const ranked = rankPredictions([p(0.82), p(0.1), p(0.01), p(0.009), p(0.0001)]);
  assert.equal(ranked.main.map((x) => x.probability), [0.82, 0.1, 0.01]);
  assert.equal(ranked.minor.map((x) => x.probability), [0.009, 0.0001]);
  assert.is(ranked.unsure, false);
});
rank('a top-1 under 30 % is "not sure"; the top row always shows', () => {
  assert.is(rankPredictions([p(0.29), p(0.2)]).unsure, true);
  assert.is(rankPredictions([p(0.3)]).unsure, false);
  const tiny = rankPredictions([p(0.005), p(0.004)]);
  assert.is(tiny.main.length, 1);
  assert.is(tiny.minor.length, 1);
  assert.is(rankPredictions([]).unsure, true);
});
rank.run();
