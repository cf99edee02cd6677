import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { problemType } from '../../../contracts/problems.ts';
import { BodyError } from '../../../server-kit/body.ts';
import { bodyError, MethodNotAllowed, NotFound, RangeNotSatisfiable, tooLarge, tooSlow, UiError } from '../../server/errors.ts';
import { toProblem } from '../../server/problem.ts';

const table = suite('ui server: one table from error to status');
table('each error becomes its status, problem type and the headers a client acts on', () => {
  const cases: [UiError, number, Record<string, string>][] = [
    [new NotFound('/x'), 404, {}],
    [new MethodNotAllowed('PUT', ['GET', 'HEAD']), 405, { Allow: 'GET, HEAD' }],
    [tooSlow('Event too slow', 30_000), 408, { Connection: 'close' }],
    [tooLarge('payload-too-large', 4096), 413, { Connection: 'close' }],
    [new RangeNotSatisfiable(10), 416, { 'Content-Range': 'bytes */10', 'Accept-Ranges': 'bytes' }],
    [new UiError('too-many-streams-per-client', 'Too many'), 429, { 'Retry-After': '30' }],
    [new UiError('upstream-unreachable', 'Unreachable'), 502, { 'Retry-After': '2' }],
    [new UiError('upstream-timeout', 'Timed out'), 504, { 'Retry-After': '5' }],
  ];
  for (const [error, status, headers] of cases) {
    const answer = toProblem(error);
    assert.is(answer.problem.status, status, error.code);
    assert.is(answer.problem.type, problemType(error.code));
    assert.equal(answer.headers, headers, error.code);
  }
  assert.is(toProblem(tooSlow('Event too slow', 30_000)).problem.detail, 'The body did not arrive within 30 s.');
});
table('anything else is a bare 500 that leaks nothing', () => {
  const { problem, headers } = toProblem(new Error('ENOENT /secret/path'));
  assert.is(problem.status, 500);
  assert.not.match(JSON.stringify(problem), /secret/);
  assert.equal(headers, {});
});
table('a body read that failed becomes the endpoint’s own error', () => {
  const answers = { tooLarge: tooLarge('event-too-large', 10), tooSlow: tooSlow('Event too slow', 500) };
  assert.is(bodyError(new BodyError('too-large', 'x'), answers), answers.tooLarge);
  assert.is(bodyError(new BodyError('too-slow', 'x'), answers), answers.tooSlow);
  assert.is((bodyError(new BodyError('closed', 'x'), answers) as UiError).code, 'request-aborted');
  const other = new Error('parser');
  assert.is(bodyError(other, answers), other);
});
table.run();
