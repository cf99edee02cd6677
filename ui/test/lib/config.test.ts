import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { DEFAULT_MODEL, MODEL_NAMES } from '../../../contracts/models.ts';
import { chooseModel, classifyEndpoint, DEFAULT_CONFIG, modelTitle, normalizeConfig } from '../../src/lib/config.ts';

const config = suite('page config');
config('keeps valid values and replaces invalid ones with defaults', () => {
  const parsed = normalizeConfig({
    classifyUrl: '/api/classify',
    topK: 3,
    uploadConcurrency: 99,
    maxAttempts: 'x',
    features: { events: false, camera: 'yes' },
  });
  assert.is(parsed.topK, 3);
  assert.is(parsed.uploadConcurrency, DEFAULT_CONFIG.uploadConcurrency);
  assert.is(parsed.maxAttempts, DEFAULT_CONFIG.maxAttempts);
  assert.is(parsed.features.events, false);
  assert.is(parsed.features.camera, true);
});
config('a missing or broken config is the default config', () => {
  assert.equal(normalizeConfig(null), { ...DEFAULT_CONFIG, features: { ...DEFAULT_CONFIG.features } });
});
config('classifyEndpoint adds topk, relative for same origin', () => {
  assert.is(classifyEndpoint(normalizeConfig({ topK: 5 }), 'http://ui.example'), '/api/classify?topk=5');
  assert.is(
    classifyEndpoint(normalizeConfig({ classifyUrl: 'https://fn.example/classify?x=1', topK: 2 }), 'http://ui.example'),
    'https://fn.example/classify?x=1&topk=2',
  );
});
config('classifyEndpoint adds the chosen model', () => {
  assert.is(classifyEndpoint(normalizeConfig({ topK: 5 }), 'http://ui.example', MODEL_NAMES[1]), `/api/classify?topk=5&model=${MODEL_NAMES[1]}`);
});
config('models: known names with short titles are kept, the default must be among them', () => {
  const [v1, v2] = MODEL_NAMES;
  const parsed = normalizeConfig({ models: [{ name: v2, title: 'Two' }, { name: 'evil', title: 'x' }, { name: v1, title: '' }, 'junk'], defaultModel: v1 });
  assert.equal(parsed.models, [{ name: v2, title: 'Two' }]);
  assert.is(parsed.defaultModel, v2, 'a default that is not offered falls back to the first offered');
  assert.equal(normalizeConfig({ models: 'nope' }).models, DEFAULT_CONFIG.models);
  assert.is(normalizeConfig({}).defaultModel, DEFAULT_MODEL);
});
config('chooseModel keeps a remembered choice only while it is served; modelTitle falls back to the name', () => {
  const [v1, v2] = MODEL_NAMES;
  const both = normalizeConfig({ models: [{ name: v1, title: 'One' }, { name: v2, title: 'Two' }], defaultModel: v1 });
  assert.is(chooseModel(both, v2), v2);
  assert.is(chooseModel(both, null), v1);
  assert.is(chooseModel(normalizeConfig({ models: [{ name: v1, title: 'One' }] }), v2), v1, 'no longer served: the default');
  assert.is(modelTitle(both, v2), 'Two');
  assert.is(modelTitle(both, 'other'), 'other');
});
config.run();
