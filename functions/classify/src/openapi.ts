// The OpenAPI 3.1 description of the HTTP API, served at GET /openapi.json.
import type { Config } from './config.ts';
import { MAX_TOPK, RESIZE_POLICIES } from './config.ts';
import { SUPPORTED_FORMATS } from './preprocess.ts';

const problem = { $ref: '#/components/schemas/Problem' };
const problemResponse = (description: string) => ({ description, content: { 'application/problem+json': { schema: problem } } });

export function openApiDocument(config: Pick<Config, 'topkDefault' | 'bodyLimitBytes' | 'maxPixels' | 'resize'>) {
  return {
    openapi: '3.1.0',
    info: { title: 'klassify classify function', version: '1.0.0', description: 'MobileNet v1 0.75/224 ImageNet classification.' },
    paths: {
      '/classify': {
        post: {
          summary: 'Classify one image',
          parameters: [
            { name: 'topk', in: 'query', schema: { type: 'integer', minimum: 1, maximum: MAX_TOPK, default: config.topkDefault } },
            { name: 'resize', in: 'query', schema: { type: 'string', enum: RESIZE_POLICIES, default: config.resize } },
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
                  description: 'The image as the file field "image" (or "file"); topk and resize may be form fields too (the query string wins).',
                  properties: {
                    image: { type: 'string', format: 'binary' },
                    file: { type: 'string', format: 'binary' },
                    topk: { type: 'integer', minimum: 1, maximum: MAX_TOPK },
                    resize: { type: 'string', enum: [...RESIZE_POLICIES] },
                  },
                },
              },
            },
          },
          responses: {
            200: { description: 'Predictions', content: { 'application/json': { schema: { $ref: '#/components/schemas/Classification' } } } },
            400: problemResponse('Empty body, malformed multipart, missing image field or invalid parameter'),
            408: problemResponse('The body arrived too slowly, stalled, or took longer than the body deadline'),
            413: problemResponse('Body over the size limit'),
            415: problemResponse('Not an image, or a format that is not supported (SVG, BMP, HEIC, …)'),
            422: problemResponse('Corrupt or truncated image, or more pixels than allowed'),
            503: problemResponse('Model not ready, shutting down, or overloaded (see Retry-After)'),
          },
        },
      },
      '/': {
        get: { summary: 'Directions: where the API description, health routes and UI are', responses: { 200: { description: 'JSON index' } } },
        post: {
          summary: 'CloudEvent dev.klassify.image.submitted (binary or structured mode); replies with dev.klassify.image.classified or .rejected',
          responses: { 200: { description: 'Reply event (binary mode)' }, 400: problemResponse('Malformed CloudEvent'), 503: problemResponse('Overloaded or not ready') },
        },
      },
      '/health/liveness': { get: { summary: 'Process is alive', responses: { 200: { description: 'alive' } } } },
      '/health/readiness': {
        get: { summary: 'Model loaded and warmed up', responses: { 200: { description: 'ready' }, 503: problemResponse('not ready') } },
      },
      '/metrics': { get: { summary: 'Prometheus metrics', responses: { 200: { description: 'text exposition format' } } } },
    },
    components: {
      schemas: {
        Problem: {
          type: 'object',
          required: ['type', 'title', 'status'],
          properties: { type: { type: 'string' }, title: { type: 'string' }, status: { type: 'integer' }, detail: { type: 'string' }, instance: { type: 'string' } },
        },
        Classification: {
          type: 'object',
          properties: {
            model: { type: 'string' },
            predictions: {
              type: 'array',
              items: {
                type: 'object',
                properties: { label: { type: 'string' }, classIndex: { type: 'integer' }, probability: { type: 'number' } },
              },
            },
            image: { type: 'object', properties: { format: { type: 'string' }, width: { type: 'integer' }, height: { type: 'integer' } } },
            timingMs: {
              type: 'object',
              properties: { decode: { type: 'number' }, queue: { type: 'number' }, inference: { type: 'number' }, total: { type: 'number' } },
            },
            servedBy: {
              type: 'object',
              properties: {
                pod: { type: 'string' },
                revision: { type: ['string', 'null'] },
                engine: { type: 'string' },
                provider: { type: 'string' },
                batchSize: { type: 'integer' },
              },
            },
          },
        },
      },
    },
  };
}
