import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { DEFAULT_MODEL, MODEL_NAMES, MODEL_TITLES } from '../../../contracts/models.ts';
import { ConfigError, loadConfig } from '../../server/config.ts';

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
config('UI_MODELS and UI_DEFAULT_MODEL: the models the page offers (default all, the contract default first choice)', () => {
  const [v1, v2] = MODEL_NAMES;
  const all = loadConfig({}, { publicDir: '/srv' }).page;
  assert.equal(all.models.map((m) => m.name), [...MODEL_NAMES]);
  assert.is(all.defaultModel, DEFAULT_MODEL);
  const one = loadConfig({ UI_MODELS: v2 }, { publicDir: '/srv' }).page;
  assert.equal(one.models, [{ name: v2, title: MODEL_TITLES[v2] }]);
  assert.is(one.defaultModel, v2);
  for (const env of [{ UI_MODELS: `${v1},resnet` }, { UI_MODELS: `${v1},${v1}` }, { UI_MODELS: v1, UI_DEFAULT_MODEL: v2 }]) {
    assert.throws(() => loadConfig(env, { publicDir: '/srv' }), (err: Error) => err instanceof ConfigError && /UI_(DEFAULT_)?MODELS?=/.test(err.message), JSON.stringify(env));
  }
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
config.run();
