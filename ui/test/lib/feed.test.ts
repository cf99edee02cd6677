import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CLASSIFIED, DELIVERY_FAILED, encodeSubject, REJECTED, SUBMITTED, type Rejection } from '../../../contracts/events.ts';
import { problemType } from '../../../contracts/problems.ts';
import { parseRelayedEvent, toFeedItem } from '../../src/lib/feed.ts';

const at = new Date(2026, 0, 1, 12, 0, 0);

const feed = suite('event feed');
feed('a classified event shows the top label, probability and pod', () => {
  const item = toFeedItem({
    seq: 7,
    id: 'abc',
    type: CLASSIFIED,
    source: '/klassify/classify',
    subject: 'chelsea.png',
    data: {
      predictions: [{ label: 'tabby, tabby cat', probability: 0.61 }],
      timingMs: { total: 12 },
      servedBy: { pod: 'classify-00001-x' },
    },
  }, at);
  assert.equal(item, {
    key: '/klassify/classify abc',
    kind: 'classified',
    clock: '12:00:00',
    headline: 'Tabby · 61%',
    detail: 'chelsea.png · 12 ms',
    pod: 'classify-00001-x',
    source: '/klassify/classify',
  });
});
feed('a rejected event shows the problem title and detail', () => {
  const item = toFeedItem({
    seq: 1,
    id: 'r1',
    type: REJECTED,
    source: 's',
    time: 'not a date',
    data: { type: problemType('unsupported-media-type'), title: 'Unsupported image format', detail: 'SVG is not supported' } satisfies Rejection,
  }, at);
  assert.is(item.kind, 'rejected');
  assert.is(item.headline, 'Unsupported image format');
  assert.is(item.detail, 'SVG is not supported');
  assert.is(item.clock, '12:00:00');
});
feed('unknown types and junk data never throw', () => {
  assert.is(toFeedItem({ seq: 2, id: 'x', type: 'dev.other', source: '', data: 'str' }, at).kind, 'other');
  assert.is(toFeedItem({ seq: 3, id: 'y', type: CLASSIFIED, source: '', data: null }, at).headline, 'Unknown');
});
feed('parseRelayedEvent validates the SSE payload', () => {
  assert.is(parseRelayedEvent('nope'), null);
  assert.is(parseRelayedEvent('{"type":"t"}'), null);
  assert.equal(parseRelayedEvent('{"seq":1,"id":"a","type":"t","source":"s"}'), {
    seq: 1, id: 'a', type: 't', source: 's', time: undefined, subject: undefined, data: undefined,
  });
});
feed('a percent-encoded subject is shown decoded, as text', () => {
  const classified = (subject: string) =>
    toFeedItem({ seq: 4, id: 's', type: CLASSIFIED, source: '', subject, data: { predictions: [] } }, at).detail;
  assert.is(encodeSubject('café <b>.jpg'), 'caf%C3%A9%20<b>.jpg');
  assert.is(classified(encodeSubject('café <b>.jpg')), 'café <b>.jpg');
  // Not valid percent-encoding (a bare %, a broken UTF-8 sequence): shown as sent.
  assert.is(classified('100%.jpg'), '100%.jpg');
  assert.is(classified('caf%C3.jpg'), 'caf%C3.jpg');
  const rejected = toFeedItem({ seq: 5, id: 'r', type: REJECTED, source: '', subject: '%E7%8C%AB.png', data: { title: 'Bad' } }, at);
  assert.is(rejected.detail, '猫.png');
});
feed.run();

const failed = suite('feed: dead letters');
failed('a delivery failure is a small "failed" row with the reason', () => {
  const item = toFeedItem({
    seq: 9,
    id: 'upload-1',
    type: DELIVERY_FAILED,
    source: '/klassify/emit',
    subject: 'big.jpg',
    time: '2026-01-01T10:00:00Z',
    data: { eventType: SUBMITTED, reason: 'Queue full', code: 503 },
  });
  assert.is(item.kind, 'failed');
  assert.is(item.headline, 'Queue full');
  assert.is(item.detail, 'big.jpg · image.submitted');
});
failed.run();
