import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { DEFAULT_MODEL, MODEL_NAMES, MODEL_TITLES } from '../../../contracts/models.ts';
import { loadConfig as loadFunctionConfig } from '../../../functions/classify/src/config.ts';
import { ConfigError, loadConfig, pageConfig } from '../../server/config.ts';

const config = suite('ui config');
config('defaults: port 3000, classify on 127.0.0.1:8080, frozen', () => {
  const c = loadConfig({}, { publicDir: '/srv' });
  assert.is(c.port, 3000);
  assert.is(c.host, undefined);
  assert.is(c.classifyUpstream.href, 'http://127.0.0.1:8080/');
  assert.is(c.publicClassifyUrl, '/api/classify');
  assert.is(c.page.uploadConcurrency, 4);
  assert.is(c.events.token, '', 'no event source until one is configured');
  assert.ok(Object.isFrozen(c));
  assert.ok(Object.isFrozen(c.page.features));
});
config('reads PORT, CLASSIFY_URL, flags and the event token', () => {
  const c = loadConfig(
    {
      PORT: '8081',
      CLASSIFY_URL: 'http://classify.default.svc.cluster.local',
      UI_FEATURE_CAMERA: 'off',
      UI_EVENTS_TOKEN: 'abcdefghijklmnop_-0123',
    },
    { publicDir: '/srv' },
  );
  assert.is(c.port, 8081);
  assert.is(c.classifyUpstream.host, 'classify.default.svc.cluster.local');
  assert.is(c.page.features.camera, false);
  assert.is(c.events.token, 'abcdefghijklmnop_-0123');
});
config('the page offers the models the function serves, by its KLASSIFY_MODELS and KLASSIFY_MODEL', () => {
  const [v1, v2] = MODEL_NAMES;
  const all = loadConfig({}, { publicDir: '/srv' }).page;
  assert.equal(all.models.map((m) => m.name), [...MODEL_NAMES]);
  assert.is(all.defaultModel, DEFAULT_MODEL);
  const one = loadConfig({ KLASSIFY_MODELS: v2 }, { publicDir: '/srv' }).page;
  assert.equal(one.models, [{ name: v2, title: MODEL_TITLES[v2] }]);
  assert.is(one.defaultModel, v2);
  for (const env of [{ KLASSIFY_MODELS: `${v1},resnet` }, { KLASSIFY_MODELS: `${v1},${v1}` }, { KLASSIFY_MODELS: v1, KLASSIFY_MODEL: v2 }]) {
    assert.throws(() => loadConfig(env, { publicDir: '/srv' }), (err: Error) => err instanceof ConfigError && /KLASSIFY_MODELS?=/.test(err.message), JSON.stringify(env));
  }
  // The same defaults as the function's own reading of those variables.
  const fn = loadFunctionConfig({});
  assert.equal([all.models.map((m) => m.name), all.defaultModel], [[...fn.models], fn.model]);
});
config('the page gets the function\'s limits, by the function\'s own variables and defaults', () => {
  const fn = loadFunctionConfig({});
  const page = pageConfig(loadConfig({}, { publicDir: '/srv' }));
  assert.equal([page.maxUploadBytes, page.maxPixels, page.maxDimension], [fn.bodyLimitBytes, fn.maxPixels, fn.maxDimension]);
  const env = { KLASSIFY_BODY_LIMIT: '4096', KLASSIFY_MAX_PIXELS: '1000000', KLASSIFY_MAX_DIMENSION: '2000' };
  const set = pageConfig(loadConfig(env, { publicDir: '/srv' }));
  assert.equal([set.maxUploadBytes, set.maxPixels, set.maxDimension], [4096, 1_000_000, 2000]);
  assert.is(pageConfig(loadConfig({ UI_MAX_BODY_BYTES: '2048' }, { publicDir: '/srv' })).maxUploadBytes, 2048, 'the smaller body limit');
});
config('lists every invalid variable with the valid values', () => {
  try {
    loadConfig({ PORT: 'eighty', CLASSIFY_URL: 'ftp://x', UI_FEATURE_EVENTS: 'maybe', UI_PUBLIC_CLASSIFY_URL: 'classify' }, { publicDir: '/srv' });
    assert.unreachable('should have thrown');
  } catch (error) {
    assert.instance(error, ConfigError);
    const { problems } = error as ConfigError;
    assert.is(problems.length, 4);
    // The same form as the classify function's (server-kit/config.ts).
    assert.match(problems.join('\n'), /PORT="eighty" is invalid; valid values: an integer from 0 to 65535 \(default 3000\)\./);
    assert.match(problems.join('\n'), /CLASSIFY_URL="ftp:\/\/x" is invalid; valid values: an absolute http/);
    assert.match(problems.join('\n'), /UI_FEATURE_EVENTS="maybe" is invalid; valid values: true or false/);
    assert.match(problems.join('\n'), /UI_PUBLIC_CLASSIFY_URL="classify" is invalid/);
  }
});
config('the stream buffer must hold a full replay', () => {
  assert.throws(() => loadConfig({ UI_EVENT_BUFFER: '100', UI_SSE_MAX_BUFFER_BYTES: '1048576' }, { publicDir: '/srv' }), /UI_SSE_MAX_BUFFER_BYTES="1048576" is invalid; valid values: at least 1671168/);
  assert.is(loadConfig({ UI_EVENT_BUFFER: '100', UI_SSE_MAX_BUFFER_BYTES: '2000000' }, { publicDir: '/srv' }).events.maxBufferedBytes, 2000000);
});
config('a short or odd event token is refused without echoing it', () => {
  for (const token of ['short', 'has spaces in it 0123456789', 'slash/in/the/token/0123']) {
    try {
      loadConfig({ UI_EVENTS_TOKEN: token }, { publicDir: '/srv' });
      assert.unreachable('should have thrown');
    } catch (error) {
      assert.instance(error, ConfigError);
      assert.match((error as ConfigError).message, new RegExp(`UI_EVENTS_TOKEN \\(${token.length} characters\\) is invalid; valid values: 16 to 256 characters`));
      assert.not.ok((error as ConfigError).message.includes(token));
    }
  }
});
config('trusted proxies: loopback by default, networks when set; the old hop count is refused by name', () => {
  const c = loadConfig({}, { publicDir: '/srv' });
  assert.ok(c.trustedProxies.check('127.0.0.1', 'ipv4'));
  assert.not.ok(c.trustedProxies.check('10.244.0.5', 'ipv4'));
  const knative = loadConfig({ UI_TRUSTED_PROXIES: '127.0.0.0/8,::1/128,10.244.0.0/16' }, { publicDir: '/srv' });
  assert.ok(knative.trustedProxies.check('10.244.0.5', 'ipv4'));
  for (const [env, expected] of [
    [{ UI_TRUSTED_PROXIES: '10.244.0.0/' }, /^UI_TRUSTED_PROXIES="10\.244\.0\.0\/" is invalid/],
    [{ UI_TRUSTED_PROXY_HOPS: '1' }, /UI_TRUSTED_PROXY_HOPS is no longer read; set UI_TRUSTED_PROXIES/],
  ] as const) {
    assert.throws(() => loadConfig(env, { publicDir: '/srv' }), (error: ConfigError) => expected.test(error.problems[0]));
  }
});
config.run();
