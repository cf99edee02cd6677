/**
 * The classification payload: the body of a 200 from POST /classify and the data of a
 * dev.klassify.image.classified event. Written once, as the JSON Schema that the OpenAPI
 * document serves; the TypeScript type follows from it.
 */
import type { FromSchema } from './schema.ts';

const milliseconds = { type: 'number', minimum: 0 } as const;

export const CLASSIFICATION_SCHEMA = {
  type: 'object',
  required: ['model', 'predictions', 'image', 'timingMs', 'servedBy'],
  additionalProperties: false,
  properties: {
    model: { type: 'string', description: 'The model that answered (contracts/models.ts), e.g. mobilenet_v2_1.0_224_quant.' },
    predictions: {
      type: 'array',
      description: 'The most probable classes, most probable first.',
      minItems: 1,
      items: {
        type: 'object',
        required: ['label', 'classIndex', 'probability'],
        additionalProperties: false,
        properties: {
          label: { type: 'string', description: 'The first synonym of the ImageNet class name, e.g. "tabby".' },
          classIndex: { type: 'integer', minimum: 0 },
          probability: { type: 'number', minimum: 0, maximum: 1 },
        },
      },
    },
    image: {
      type: 'object',
      description: 'The decoded image: its format and its size as displayed.',
      required: ['format', 'width', 'height'],
      additionalProperties: false,
      properties: {
        format: { type: 'string' },
        width: { type: 'integer', minimum: 1 },
        height: { type: 'integer', minimum: 1 },
      },
    },
    timingMs: {
      type: 'object',
      description: 'Where the time went, in milliseconds.',
      required: ['decode', 'queue', 'inference', 'total'],
      additionalProperties: false,
      properties: { decode: milliseconds, queue: milliseconds, inference: milliseconds, total: milliseconds },
    },
    servedBy: {
      type: 'object',
      description: 'The pod, revision and engine that answered.',
      required: ['pod', 'revision', 'engine', 'provider', 'batchSize'],
      additionalProperties: false,
      properties: {
        pod: { type: 'string' },
        revision: { type: ['string', 'null'], description: 'The Knative revision (K_REVISION); null outside Knative.' },
        engine: { type: 'string' },
        provider: { type: 'string' },
        batchSize: { type: 'integer', minimum: 1, description: 'Images inferred together with this one.' },
      },
    },
  },
} as const;

export type Classification = FromSchema<typeof CLASSIFICATION_SCHEMA>;
export type Prediction = Classification['predictions'][number];
