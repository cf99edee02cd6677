import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError, envReader } from '../config.ts';

const read = suite('server-kit: env reader');

read('unset, empty and blank values read as the default; others are trimmed', () => {
  const r = envReader({ A: '', B: '   ', C: ' 42 ', D: ' onnx\n' });
  assert.is(r.int('A', 7, 0, 100), 7);
  assert.is(r.int('B', 7, 0, 100), 7);
  assert.is(r.int('C', 7, 0, 100), 42);
  assert.is(r.oneOf('D', ['onnx', 'tfjs'], 'tfjs'), 'onnx');
  assert.is(r.int('MISSING', 9, 0, 100), 9);
  assert.is(r.raw('B'), undefined);
  r.done();
});

read('numbers: decimal notation within the range; integers must be whole', () => {
  const r = envReader({ E: '1e3', F: '2.5', G: '0x10', H: 'Infinity', I: '2.5', J: '-1' });
  assert.is(r.int('E', 0, 0, 10_000), 1000);
  assert.is(r.number('F', 0, 0, 10), 2.5);
  assert.is(r.int('G', 5, 0, 100), 5, 'hex is refused and reads as the default');
  assert.is(r.number('H', 5, 0, Infinity), 5);
  assert.is(r.int('I', 5, 0, 10), 5);
  assert.is(r.int('J', 5, 0, 10), 5);
  assert.throws(() => r.done(), (err: ConfigError) => err.problems.length === 4);
});

read('booleans: true/false, 1/0, yes/no, on/off in any case', () => {
  const truthy = ['true', 'TRUE', '1', 'yes', 'Yes', 'on', 'ON'];
  const falsy = ['false', 'False', '0', 'no', 'NO', 'off', 'Off'];
  for (const word of truthy) assert.is(envReader({ X: word }).bool('X', false), true, word);
  for (const word of falsy) assert.is(envReader({ X: word }).bool('X', true), false, word);
  const r = envReader({ X: 'maybe' });
  assert.is(r.bool('X', true), true, 'an invalid value reads as the default');
  assert.throws(() => r.done(), /^X="maybe" is invalid; valid values: true or false \(also 1\/0, yes\/no, on\/off\) \(default true\)\.$/);
});

read('hosts: an IP address or a host name; anything else is refused', () => {
  for (const ok of ['127.0.0.1', '0.0.0.0', '::', '::1', 'fe80::1', 'localhost', 'my-host.example.com']) {
    assert.is(envReader({ HOST: ok }).host('HOST', '0.0.0.0'), ok);
  }
  assert.is(envReader({}).host('HOST', undefined), undefined);
  for (const bad of ['http://localhost', '127.0.0.1:80', 'a b', '-leading.example', '[::1]']) {
    const r = envReader({ HOST: bad });
    assert.is(r.host('HOST', '0.0.0.0'), '0.0.0.0', bad);
    assert.throws(() => r.done(), /^HOST=".*" is invalid; valid values: an IP address to listen on .* or a host name \(default 0\.0\.0\.0\)\.$/, bad);
  }
});

read('every problem is listed, each in the one form', () => {
  const r = envReader({ PORT: 'eighty', ENGINE: 'torch', LEVEL: 'loud' });
  r.int('PORT', 8080, 0, 65535);
  r.oneOf('ENGINE', ['onnx', 'tfjs'], 'onnx');
  r.string('LEVEL', 'info', { pattern: /^(info|debug)$/, valid: 'info or debug' });
  r.problem('A=1 needs B=2.');
  try {
    r.done();
    assert.unreachable('should have thrown');
  } catch (err) {
    assert.instance(err, ConfigError);
    assert.is((err as ConfigError).name, 'ConfigError');
    assert.equal((err as ConfigError).problems, [
      'PORT="eighty" is invalid; valid values: an integer from 0 to 65535 (default 8080).',
      'ENGINE="torch" is invalid; valid values: onnx, tfjs (default onnx).',
      'LEVEL="loud" is invalid; valid values: info or debug (default info).',
      'A=1 needs B=2.',
    ]);
    assert.match((err as Error).message, /^4 settings are invalid:\n {2}- PORT=/);
  }
});

read('a secret is never echoed: its length is', () => {
  const secret = 'not a valid token!';
  const r = envReader({ TOKEN: secret });
  assert.is(r.string('TOKEN', '', { pattern: /^[a-z]{16,}$/, valid: '16 or more of a-z', secret: true }), '');
  try {
    r.done();
    assert.unreachable('should have thrown');
  } catch (err) {
    assert.is((err as Error).message, `TOKEN (${secret.length} characters) is invalid; valid values: 16 or more of a-z.`);
  }
});

read('a ConfigError from one message reads as that message', () => {
  const err = new ConfigError('KLASSIFY_PROVIDER=webgpu found no GPU.');
  assert.is(err.message, 'KLASSIFY_PROVIDER=webgpu found no GPU.');
  assert.equal(err.problems, ['KLASSIFY_PROVIDER=webgpu found no GPU.']);
});

read.run();
