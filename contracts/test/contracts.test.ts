import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { CLASSIFICATION_SCHEMA, type Classification } from '../classification.ts';
import { CLASSIFIED, decodeSubject, DELIVERY_FAILED, encodeSubject, EVENT_TYPE_PREFIX, REJECTED, REJECTION_SCHEMA, SUBMITTED, type Rejection } from '../events.ts';
import { PAGE_DEFAULTS, PAGE_LIMITS } from '../page.ts';
import { PROBLEM_BASE, PROBLEM_SCHEMA, problemType, type Problem } from '../problems.ts';

const events = suite('contracts: events');
events('every type is distinct and carries the prefix', () => {
  const types = [SUBMITTED, CLASSIFIED, REJECTED, DELIVERY_FAILED];
  assert.is(new Set(types).size, types.length);
  for (const type of types) assert.ok(type.startsWith(EVENT_TYPE_PREFIX), type);
});
events('a subject is percent-encoded outside printable ASCII and decodes back', () => {
  assert.is(encodeSubject('café.jpg'), 'caf%C3%A9.jpg');
  assert.is(encodeSubject('a b"c%d.png'), 'a%20b%22c%25d.png');
  for (const name of ['café.jpg', '猫 の 写真.png', '100% "real".gif', 'plain-name_1.webp', '👍.jpg']) {
    const sent = encodeSubject(name);
    assert.match(sent, /^[\x21-\x7e]*$/, sent);
    assert.is(decodeSubject(sent), name);
  }
});
events('a subject that is not percent-encoding is shown as sent', () => {
  for (const sent of ['100%', '%zz', '%C3', 'caf%C3%28.jpg']) assert.is(decodeSubject(sent), sent);
});
events.run();

const ajv = new Ajv2020({ strict: true, allErrors: true });
const validClassification = ajv.compile(CLASSIFICATION_SCHEMA);
const validProblem = ajv.compile(PROBLEM_SCHEMA);
const validRejection = ajv.compile(REJECTION_SCHEMA);

const sample: Classification = {
  model: 'mobilenet_v1_0.75_224',
  predictions: [{ label: 'tabby', classIndex: 281, probability: 0.61 }],
  image: { format: 'png', width: 451, height: 300 },
  timingMs: { decode: 3.1, queue: 0, inference: 11.5, total: 15.2 },
  servedBy: { pod: 'classify-00001-x', revision: null, engine: 'onnx', provider: 'cpu', batchSize: 1 },
};

const schemas = suite('contracts: schemas');
schemas('a classification validates; a missing, extra or mistyped member does not', () => {
  assert.ok(validClassification(sample), ajv.errorsText(validClassification.errors));
  const { servedBy: _, ...missing } = sample;
  const broken: unknown[] = [
    missing,
    { ...sample, extra: 1 },
    { ...sample, predictions: [{ ...sample.predictions[0], probability: '0.6' }] },
    { ...sample, image: { ...sample.image, width: 1.5 } },
    { ...sample, servedBy: { ...sample.servedBy, revision: 7 } },
  ];
  for (const value of broken) assert.not.ok(validClassification(value), JSON.stringify(value));
});
schemas('a problem validates with extensions; one without a status does not', () => {
  const problem: Problem = { type: problemType('unsupported-media-type'), title: 'Unsupported image format', status: 415, detail: 'SVG is not supported.', supported: ['jpeg', 'png'] };
  assert.ok(validProblem(problem), ajv.errorsText(validProblem.errors));
  assert.ok(problem.type.startsWith(PROBLEM_BASE));
  assert.not.ok(validProblem({ type: problem.type, title: problem.title }));
  assert.not.ok(validProblem({ ...problem, supported: 'jpeg' }));
});
schemas('a rejection is a problem without a status: it validates with extensions and needs a detail', () => {
  const rejection: Rejection = { type: problemType('image-too-large'), title: 'Image too large', detail: 'The image is 9000×9000 pixels.', width: 9000 };
  assert.ok(validRejection(rejection), ajv.errorsText(validRejection.errors));
  assert.not.ok(validRejection({ type: rejection.type, title: rejection.title }), 'no detail');
  assert.not.ok(validRejection({ ...rejection, supported: 'jpeg' }));
});
schemas.run();

// The TypeScript types follow the schemas. These are compile-time checks, failed by
// `npm run typecheck` (not by a test at run time): each line stops compiling if the
// derived type drifts.
// @ts-expect-error a required member is missing
const noModel: Classification = { ...sample, model: undefined };
// @ts-expect-error revision is a string or null
const badRevision: Classification['servedBy'] = { ...sample.servedBy, revision: 1 };
// @ts-expect-error status is required
const noStatus: Problem = { type: 'about:blank', title: 'x' };
const optional: Problem = { type: 'about:blank', title: 'x', status: 500 };
// @ts-expect-error a rejection needs its detail
const noDetail: Rejection = { type: 'about:blank', title: 'x' };

const page = suite('contracts: page');
page('every default is inside its range', () => {
  for (const [key, { min, max }] of Object.entries(PAGE_LIMITS)) {
    const value = PAGE_DEFAULTS[key as keyof typeof PAGE_LIMITS];
    assert.ok(Number.isInteger(value) && value >= min && value <= max, `${key}=${value}`);
  }
});
page.run();
