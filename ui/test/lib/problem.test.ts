import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { fallbackTitle, networkErrorMessage, notAnImageMessage, parseProblem, problemToMessage, tooLargeMessage } from '../../src/lib/problem.ts';

const UNSUPPORTED = JSON.stringify({
  type: 'https://klassify.dev/problems/unsupported-media-type',
  title: 'Unsupported image format',
  status: 415,
  detail: 'SVG is not supported: send a raster image.',
  supported: ['jpeg', 'png', 'webp'],
  instance: '/classify',
});

const parse = suite('parseProblem');
parse('reads the RFC 9457 members and the supported-formats extension', () => {
  assert.equal(parseProblem('application/problem+json', UNSUPPORTED), {
    type: 'https://klassify.dev/problems/unsupported-media-type',
    title: 'Unsupported image format',
    status: 415,
    detail: 'SVG is not supported: send a raster image.',
    supported: ['jpeg', 'png', 'webp'],
    instance: '/classify',
  });
});
parse('anything that is not a JSON object yields an empty problem', () => {
  assert.equal(parseProblem('text/html', '<h1>502 Bad Gateway</h1>'), {});
  assert.equal(parseProblem('application/json', '{not json'), {});
  assert.equal(parseProblem('application/json', '[1,2]'), {});
  assert.equal(parseProblem(null, UNSUPPORTED), {});
});
parse('ignores members of the wrong type and clips very long text', () => {
  const problem = parseProblem('application/json', JSON.stringify({ title: 42, detail: 'x'.repeat(1000) }));
  assert.is(problem.title, undefined);
  assert.is(problem.detail?.length, 300);
  assert.ok(problem.detail?.endsWith('…'));
});
parse.run();

const message = suite('problemToMessage');
message('uses the server title and detail, with a hint listing supported formats', () => {
  const msg = problemToMessage(415, parseProblem('application/problem+json', UNSUPPORTED));
  assert.is(msg.title, 'Unsupported image format');
  assert.is(msg.detail, 'SVG is not supported: send a raster image.');
  assert.is(msg.hint, 'Use a JPEG, PNG or WebP image.', 'format names capitalised the one way the page uses');
  assert.is(msg.retryable, false);
});
message('no hint that repeats formats the detail already lists', () => {
  const msg = problemToMessage(415, { title: 'Unsupported image format', detail: 'Supported formats: jpeg, png.', supported: ['jpeg', 'png'] });
  assert.is(msg.hint, '');
  assert.is(problemToMessage(415, { detail: 'SVG is not supported' }).hint, 'Use a JPEG, PNG, WebP, GIF, AVIF or TIFF image.');
});
message('no retry hint when the detail already says to retry', () => {
  assert.is(problemToMessage(503, { title: 'Busy', detail: 'The queue is full; retry in 2 s.' }).hint, '');
  assert.is(problemToMessage(503, { title: 'Busy', detail: 'The queue is full.' }).hint, 'The function may be scaling up. Retry in a few seconds.');
});
message('falls back to a title per status when the body is not problem+json', () => {
  assert.is(problemToMessage(413).title, 'Image too large');
  assert.is(problemToMessage(422).title, "Couldn't read this image");
  assert.is(problemToMessage(502).title, 'Classify function unreachable');
  assert.is(problemToMessage(418).title, 'Request failed (418)');
  assert.is(problemToMessage(599).title, 'Server error (599)');
  assert.is(fallbackTitle(302), 'Unexpected status 302');
});
message('busy, cold and unreachable answers are retryable; client errors are not', () => {
  for (const status of [429, 502, 503, 504]) assert.ok(problemToMessage(status).retryable, String(status));
  for (const status of [400, 413, 415, 422]) assert.not.ok(problemToMessage(status).retryable, String(status));
});
message('a detail that repeats the title is dropped', () => {
  assert.is(problemToMessage(503, { title: 'Model not ready', detail: 'Model not ready' }).detail, '');
});
message.run();

const local = suite('client-side messages');
local('network failure and offline', () => {
  assert.is(networkErrorMessage().title, 'Network error');
  assert.is(networkErrorMessage(false).title, 'You are offline');
  assert.is(networkErrorMessage().status, 0);
  assert.ok(networkErrorMessage().retryable);
});
local('too large before upload', () => {
  const msg = tooLargeMessage('12 MB', '10 MB');
  assert.is(msg.detail, 'This file is 12 MB; the limit is 10 MB.');
  assert.is(msg.status, 413);
});
local('not an image, caught in the browser', () => {
  const msg = notAnImageMessage('notes.txt');
  assert.is(msg.detail, "notes.txt isn't an image: use JPEG, PNG, WebP, GIF, AVIF or TIFF.");
  assert.not.ok(msg.retryable);
});
local.run();
