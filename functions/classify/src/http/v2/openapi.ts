// The Open Inference Protocol routes in /openapi.json: paths as the specification's
// open_inference_rest.yaml names them, schemas narrowed to what this server takes and gives.
import type { Config } from '../../config.ts';
import { HEADER_LENGTH } from './codec.ts';
import { IMAGE_INPUT, MODEL_VERSION, PIXELS_INPUT, PROBABILITIES_OUTPUT } from './model.ts';

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: object) => ({ 'application/json': { schema } });
const error = (description: string) => ({ description, content: json(ref('V2Error')) });
const parameters = { type: 'object', additionalProperties: { anyOf: [{ type: 'string' }, { type: 'number' }, { type: 'boolean' }] } };
const tensorData = { type: 'array', description: 'Row-major, flat or nested.', items: {} };

const tensor = { type: 'object', required: ['name', 'datatype', 'shape'], properties: { name: { type: 'string' }, datatype: { type: 'string' }, shape: { type: 'array', items: { type: 'integer' } } } };

const modelPath = (suffix: string) => `/v2/models/{model}${suffix}`;
const versionPath = (suffix: string) => `/v2/models/{model}/versions/{version}${suffix}`;
const pathParams = (versioned: boolean) => [
  { name: 'model', in: 'path', required: true, schema: { type: 'string' }, description: 'A model name, as /classify answers with.' },
  ...(versioned ? [{ name: 'version', in: 'path', required: true, schema: { type: 'string', enum: [MODEL_VERSION] } }] : []),
];

export const V2_SCHEMAS = {
  V2Error: { type: 'object', required: ['error'], properties: { error: { type: 'string' } } },
  V2ServerMetadata: {
    type: 'object',
    required: ['name', 'version', 'extensions'],
    properties: { name: { type: 'string' }, version: { type: 'string' }, extensions: { type: 'array', items: { type: 'string' } } },
  },
  V2ModelMetadata: {
    type: 'object',
    required: ['name', 'platform', 'inputs', 'outputs'],
    properties: {
      name: { type: 'string' },
      versions: { type: 'array', items: { type: 'string' } },
      platform: { type: 'string' },
      inputs: { type: 'array', items: tensor },
      outputs: { type: 'array', items: tensor },
    },
  },
  V2InferenceRequest: {
    type: 'object',
    required: ['inputs'],
    properties: {
      id: { type: 'string', description: 'Echoed in the response.' },
      parameters: {
        ...parameters,
        description: 'binary_data_output: every output as binary data; classification: k, the top-k for the output.',
      },
      inputs: {
        type: 'array',
        minItems: 1,
        maxItems: 1,
        description: `Exactly one: "${IMAGE_INPUT}", BYTES [N], encoded images (base64 strings in JSON, raw in binary data); or "${PIXELS_INPUT}", UINT8 [N,224,224,3], RGB pixels used as given.`,
        items: {
          type: 'object',
          required: ['name', 'datatype', 'shape'],
          properties: {
            name: { type: 'string', enum: [IMAGE_INPUT, PIXELS_INPUT] },
            datatype: { type: 'string', enum: ['BYTES', 'UINT8'] },
            shape: { type: 'array', items: { type: 'integer', minimum: 0 } },
            parameters: { ...parameters, description: 'binary_data_size: the bytes of this tensor after the JSON.' },
            data: tensorData,
          },
        },
      },
      outputs: {
        type: 'array',
        maxItems: 1,
        items: {
          type: 'object',
          required: ['name'],
          properties: {
            name: { type: 'string', enum: [PROBABILITIES_OUTPUT] },
            parameters: { ...parameters, description: 'binary_data: true for binary data; classification: k (1 to 1000) for BYTES [N,k] "<p>:<index>:<label>", best first.' },
          },
        },
      },
    },
  },
  V2InferenceResponse: {
    type: 'object',
    required: ['model_name', 'outputs'],
    properties: {
      model_name: { type: 'string' },
      model_version: { type: 'string' },
      id: { type: 'string' },
      outputs: {
        type: 'array',
        items: {
          type: 'object',
          required: ['name', 'datatype', 'shape'],
          properties: {
            name: { type: 'string' },
            datatype: { type: 'string', enum: ['FP32', 'BYTES'] },
            shape: { type: 'array', items: { type: 'integer' } },
            parameters: { ...parameters, description: 'binary_data_size, when the data follows the JSON.' },
            data: tensorData,
          },
        },
      },
    },
  },
} as const;

export function v2Paths(config: Pick<Config, 'bodyLimitBytes' | 'v2MaxBatchSize'>) {
  const health = (summary: string, key: 'live' | 'ready') => ({
    get: {
      summary,
      responses: {
        200: { description: `{"${key}": true}`, content: json({ type: 'object', properties: { [key]: { type: 'boolean' } } }) },
        ...(key === 'ready' ? { 503: { description: 'Not ready: {"ready": false, "error": reason}, with Retry-After' } } : {}),
      },
    },
  });
  const infer = (versioned: boolean) => ({
    post: {
      summary: 'Inference (Open Inference Protocol, with the binary tensor data and classification extensions)',
      parameters: [
        ...pathParams(versioned),
        { name: HEADER_LENGTH, in: 'header', schema: { type: 'integer', minimum: 1 }, description: 'Bytes of JSON before the binary tensor data.' },
      ],
      requestBody: {
        required: true,
        description: `At most ${config.bodyLimitBytes} bytes (gzip or deflate Content-Encoding allowed) and ${config.v2MaxBatchSize} images.`,
        content: { ...json(ref('V2InferenceRequest')), 'application/octet-stream': { schema: { type: 'string', format: 'binary', description: 'The JSON request, then binary tensor data.' } } },
      },
      responses: {
        200: {
          description: `${PROBABILITIES_OUTPUT}: FP32 [N,1000], or BYTES [N,k] with classification. With binary data: application/octet-stream, the JSON's length in ${HEADER_LENGTH}.`,
          content: { ...json(ref('V2InferenceResponse')), 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } },
        },
        400: error('Malformed or inconsistent request: JSON, names, datatypes, shapes, data against the shape, binary lengths, a batch over max_batch_size, an element that is no image or too costly to decode, classification out of range'),
        404: error('Unknown model or version'),
        408: error('The body arrived too slowly or stalled'),
        413: error('Body over the size limit'),
        429: error('This client already has its share of slow uploads in progress (see Retry-After)'),
        503: error('Not ready, overloaded or a worker lost (see Retry-After)'),
      },
    },
  });
  const get = (summary: string, schema: object, versioned: boolean) => ({
    get: { summary, parameters: pathParams(versioned), responses: { 200: { description: summary, content: json(schema) }, 404: error('Unknown model or version') } },
  });
  const paths: Record<string, object> = {
    '/v2': { get: { summary: 'Server metadata', responses: { 200: { description: 'Name, version, extensions', content: json(ref('V2ServerMetadata')) } } } },
    '/v2/health/live': health('Server live', 'live'),
    '/v2/health/ready': health('Server ready', 'ready'),
  };
  for (const versioned of [false, true]) {
    const at = versioned ? versionPath : modelPath;
    paths[at('')] = get('Model metadata', ref('V2ModelMetadata'), versioned);
    paths[at('/ready')] = get('Model ready: {"name", "ready"} (503 while not ready)', { type: 'object', properties: { name: { type: 'string' }, ready: { type: 'boolean' } } }, versioned);
    paths[at('/config')] = get(`Model configuration (Triton's ModelConfig: max_batch_size ${config.v2MaxBatchSize}, inputs, outputs)`, { type: 'object' }, versioned);
    paths[at('/infer')] = infer(versioned);
  }
  return paths;
}
