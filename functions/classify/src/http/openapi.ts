// The OpenAPI 3.1 description of the HTTP API, served at GET /openapi.json. The payload and
// problem schemas and the event types come from contracts/, which the UI imports too.
import { CLASSIFICATION_SCHEMA } from '../../../../contracts/classification.ts';
import { CLASSIFIED, REJECTED, REJECTION_SCHEMA, SUBMITTED } from '../../../../contracts/events.ts';
import { MODEL_EXTENSION, MODEL_TITLES } from '../../../../contracts/models.ts';
import { PROBLEM_MEDIA_TYPE, PROBLEM_SCHEMA } from '../../../../contracts/problems.ts';
import type { Config } from '../config.ts';
import { MAX_TOPK, RESIZE_POLICIES } from '../config.ts';
import { V2_SCHEMAS, v2Paths } from './v2/openapi.ts';
import { SUPPORTED_FORMATS } from '../image-format.ts';

const problem = { $ref: '#/components/schemas/Problem' };
const problemResponse = (description: string) => ({ description, content: { [PROBLEM_MEDIA_TYPE]: { schema: problem } } });

export function openApiDocument(
  config: Pick<
    Config,
    | 'topkDefault'
    | 'bodyLimitBytes'
    | 'maxPixels'
    | 'resize'
    | 'maxDimension'
    | 'maxDecodedBytes'
    | 'maxJpegScans'
    | 'decodeTimeoutSeconds'
    | 'v2MaxBatchSize'
    | 'maxUploadsPerClient'
    | 'model'
    | 'models'
  >,
) {
  const model = { type: 'string', enum: [...config.models], default: config.model, description: 'The model that classifies; every one returns the same 1000 ImageNet classes.' } as const;
  return {
    openapi: '3.1.0',
    info: {
      title: 'klassify classify function',
      version: '1.0.0',
      description: `ImageNet classification with ${config.models.map((m) => `${MODEL_TITLES[m]} (${m})`).join(' or ')}; ${config.model} unless a request names another.`,
    },
    paths: {
      '/classify': {
        post: {
          summary: 'Classify one image',
          parameters: [
            { name: 'topk', in: 'query', schema: { type: 'integer', minimum: 1, maximum: MAX_TOPK, default: config.topkDefault } },
            { name: 'resize', in: 'query', schema: { type: 'string', enum: RESIZE_POLICIES, default: config.resize } },
            { name: 'model', in: 'query', schema: model },
          ],
          requestBody: {
            required: true,
            description: `Raw image bytes (${SUPPORTED_FORMATS.join(', ')}), at most ${config.bodyLimitBytes} bytes and ${config.maxPixels} pixels.`,
            content: {
              'image/*': { schema: { type: 'string', format: 'binary' } },
              'application/octet-stream': { schema: { type: 'string', format: 'binary' } },
              'multipart/form-data': {
                schema: {
                  type: 'object',
                  description: 'The image as the file field "image" (or "file"); topk, resize and model may be form fields too (the query string wins).',
                  properties: {
                    image: { type: 'string', format: 'binary' },
                    file: { type: 'string', format: 'binary' },
                    topk: { type: 'integer', minimum: 1, maximum: MAX_TOPK },
                    resize: { type: 'string', enum: [...RESIZE_POLICIES] },
                    model,
                  },
                },
              },
            },
          },
          responses: {
            200: { description: 'Predictions', content: { 'application/json': { schema: { $ref: '#/components/schemas/Classification' } } } },
            400: problemResponse('Empty body, malformed multipart, missing image field or invalid parameter (a model not served: the problem lists the served ones in `models`)'),
            408: problemResponse('The body arrived too slowly, stalled, or took longer than the body deadline'),
            413: problemResponse('Body over the size limit'),
            415: problemResponse('Not an image, or a format that is not supported (SVG, BMP, HEIC, …)'),
            422: problemResponse(
              `Corrupt or truncated image (unprocessable-image); too costly to decode, judged from the header before decoding (image-too-large: over ${config.maxPixels} pixels, a side over ${config.maxDimension} px, over ${config.maxDecodedBytes} bytes of estimated decode memory or over ${config.maxJpegScans} JPEG scans; the problem names the image's size and the limit); or still decoding after ${config.decodeTimeoutSeconds} s (decode-timeout)`,
            ),
            429: problemResponse(`This client already has ${config.maxUploadsPerClient} slow uploads in progress (too-many-uploads, see Retry-After)`),
            503: problemResponse('Model not ready, shutting down, or overloaded (see Retry-After)'),
          },
        },
      },
      '/': {
        get: { summary: 'Directions: where the API description, health routes and UI are', responses: { 200: { description: 'JSON index' } } },
        post: {
          summary: `CloudEvent ${SUBMITTED} (binary or structured mode), classified by the model its extension attribute ${MODEL_EXTENSION} names (default ${config.model}); replies with ${CLASSIFIED} or ${REJECTED}`,
          responses: {
            200: {
              description: `Reply event (binary mode): ${CLASSIFIED} with the classification, or ${REJECTED} with the problem (without an HTTP status) for a bad or missing image`,
              headers: { 'ce-type': { schema: { type: 'string', enum: [CLASSIFIED, REJECTED] } } },
              content: {
                'application/json': {
                  schema: { oneOf: [{ $ref: '#/components/schemas/Classification' }, { $ref: '#/components/schemas/Rejection' }] },
                },
              },
            },
            400: problemResponse(`Malformed CloudEvent (a required attribute missing, an optional one empty, an attribute not printable ASCII, over 1 KiB or with a space at either end, over 32 extensions), another event type, or a ${MODEL_EXTENSION} that names no served model`),
            413: problemResponse('Body over the size limit (structured mode: its base64 plus 64 KiB)'),
            429: problemResponse('The sender already has its share of slow uploads in progress (see Retry-After; the broker retries)'),
            503: problemResponse('Overloaded, not ready or a worker lost (see Retry-After)'),
          },
        },
      },
      '/health/liveness': { get: { summary: 'Process is alive', responses: { 200: { description: 'alive' } } } },
      '/health/readiness': {
        get: { summary: 'Model loaded and warmed up', responses: { 200: { description: 'ready' }, 503: problemResponse('not ready') } },
      },
      '/metrics': { get: { summary: 'Prometheus metrics', responses: { 200: { description: 'text exposition format' } } } },
      ...v2Paths(config),
    },
    components: {
      schemas: {
        Problem: PROBLEM_SCHEMA,
        Rejection: REJECTION_SCHEMA,
        Classification: CLASSIFICATION_SCHEMA,
        ...V2_SCHEMAS,
      },
    },
  };
}
