import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { classifyEndpoint, DEFAULT_CONFIG, normalizeConfig } from '../../src/lib/config.ts';

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
config.run();
