import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError } from '../config.ts';
import { EXIT_CANNOT_START, startFailure } from '../exit.ts';

const exit = suite('server-kit: start-up failure');

exit('the exit status is EX_CONFIG', () => {
  assert.is(EXIT_CANNOT_START, 78);
});

exit('one invalid setting: the message is the problem', () => {
  assert.equal(startFailure(new ConfigError(['PORT="x" is invalid; valid values: an integer.'])), {
    msg: 'cannot start: PORT="x" is invalid; valid values: an integer.',
    fields: {},
  });
});

exit('several: each is listed', () => {
  const { msg, fields } = startFailure(new ConfigError(['A is invalid.', 'B is invalid.']));
  assert.is(msg, 'cannot start: invalid configuration');
  assert.equal(fields, { problems: ['A is invalid.', 'B is invalid.'] });
});

exit('a ConfigError from a worker thread arrives as a plain Error with its name', () => {
  const err = Object.assign(new Error('no GPU adapter'), { name: 'ConfigError' });
  assert.is(startFailure(err).msg, 'cannot start: no GPU adapter');
});

exit('a port in use names the fix', () => {
  const err = Object.assign(new Error('listen EADDRINUSE'), { code: 'EADDRINUSE', port: 8080 });
  assert.is(startFailure(err).msg, 'cannot start: port 8080 is already in use; stop the other process or set PORT');
});

exit('an expected error by its message; anything else keeps the error, for its stack', () => {
  const missing = Object.assign(new Error('model.onnx is missing; run npm run model'), { name: 'AssetError' });
  const isAsset = (err: unknown) => (err as Error).name === 'AssetError';
  assert.equal(startFailure(missing, isAsset), { msg: 'cannot start: model.onnx is missing; run npm run model', fields: {} });
  const bug = new TypeError('boom');
  assert.equal(startFailure(bug, isAsset), { msg: 'cannot start', fields: { error: bug } });
});

exit.run();
