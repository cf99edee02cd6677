// An $inference_request checked against a model: which input it carries and its images,
// and how the output is wanted. Every way a request can disagree with the specification or
// with the model is an InvalidInput (400) that says what was expected; nothing here decodes
// an image or runs the model.
import { BatchTooLarge, InvalidInput } from '../../errors.ts';
import { parseJson, readBytesElements, type SplitBody } from './codec.ts';
import { IMAGE_INPUT, PIXELS_INPUT, PROBABILITIES_OUTPUT, pixelsPerImage, type V2Model } from './model.ts';

export type ModelInput = { name: typeof IMAGE_INPUT; images: Buffer[] } | { name: typeof PIXELS_INPUT; pixels: Uint8Array; count: number };

export interface InferPlan {
  id?: string;
  input: ModelInput;
  /** Images in the batch. */
  count: number;
  output: {
    name: string;
    binary: boolean;
    /** Top-k as "<p>:<index>:<label>" strings (classification extension); 0 = probabilities. */
    classification: number;
  };
}

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);
const show = (value: unknown) => (JSON.stringify(value) ?? String(value)).slice(0, 60);

function optionalObject(value: unknown, what: string): Json {
  if (value === undefined) return {};
  if (!isObject(value)) throw new InvalidInput(`${what} must be an object; got ${show(value)}.`);
  return value;
}

function optionalBool(params: Json, key: string, what: string): boolean | undefined {
  const value = params[key];
  if (value === undefined || typeof value === 'boolean') return value;
  throw new InvalidInput(`${what} parameter "${key}" must be true or false; got ${show(value)}.`);
}

function classificationOf(params: Json, what: string, classes: number): number | undefined {
  const value = params.classification;
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > classes) {
    throw new InvalidInput(`${what} parameter "classification" must be an integer from 1 to ${classes} (the class count); got ${show(value)}.`);
  }
  return value;
}

/** The JSON a valid request can hold: nested UINT8 data is the most, as arrays of 3 values. */
function jsonBounds(model: V2Model) {
  const n = model.maxBatchSize;
  const size = model.inputSize;
  const nestedArrays = 1 + n * (1 + size + size * size);
  return { maxDepth: 12, maxContainers: nestedArrays + 64, maxSeparators: n * pixelsPerImage(model) + nestedArrays + 256 };
}

/** Checks the request in `body` against `model`; the images stay views of the body. */
export function planInference(body: SplitBody, model: V2Model): InferPlan {
  const request = parseJson(body.json, jsonBounds(model));
  if (!isObject(request)) throw new InvalidInput(`The inference request must be a JSON object; got ${show(request)}.`);
  const { id } = request;
  if (id !== undefined && typeof id !== 'string') throw new InvalidInput(`"id" must be a string; got ${show(id)}.`);
  const params = optionalObject(request.parameters, '"parameters"');
  const input = readInput(request.inputs, body.binary, model);
  return { id, input, count: input.name === IMAGE_INPUT ? input.images.length : input.count, output: readOutput(request.outputs, params, model) };
}

function readInput(inputs: unknown, binary: Buffer, model: V2Model): ModelInput {
  const names = `"${IMAGE_INPUT}" (BYTES [N], encoded images) or "${PIXELS_INPUT}" (UINT8 [N,${model.inputSize},${model.inputSize},${model.channels}], RGB pixels)`;
  if (!Array.isArray(inputs)) throw new InvalidInput(`"inputs" must be an array holding one input: ${names}.`);
  if (inputs.length !== 1) throw new InvalidInput(`"inputs" holds ${inputs.length} inputs; send exactly one: ${names}.`);
  const input = inputs[0];
  if (!isObject(input)) throw new InvalidInput(`inputs[0] must be an object; got ${show(input)}.`);
  const { name, datatype, shape } = input;
  if (name !== IMAGE_INPUT && name !== PIXELS_INPUT) throw new InvalidInput(`Unknown input ${show(name)} for model "${model.name}"; send ${names}.`);
  const what = `input "${name}"`;
  const want = name === IMAGE_INPUT ? 'BYTES' : 'UINT8';
  if (datatype !== want) throw new InvalidInput(`${what} has datatype ${show(datatype)}; it must be ${want}.`);
  const count = batchOf(shape, name, model);
  const params = optionalObject(input.parameters, `${what} "parameters"`);
  const size = params.binary_data_size;
  if (size !== undefined && input.data !== undefined) throw new InvalidInput(`${what} has both "data" and "binary_data_size"; send one of them.`);
  if (size === undefined && input.data === undefined) throw new InvalidInput(`${what} has neither "data" nor a "binary_data_size" parameter.`);
  if (size !== undefined) {
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw new InvalidInput(`${what} "binary_data_size" must be a byte count; got ${show(size)}.`);
    if (size !== binary.length) {
      throw new InvalidInput(`${what} "binary_data_size" is ${size}, but ${binary.length} bytes follow the JSON (Inference-Header-Content-Length).`);
    }
  } else if (binary.length > 0) {
    throw new InvalidInput(`${binary.length} bytes follow the JSON, but no input has a "binary_data_size" parameter.`);
  }
  if (name === IMAGE_INPUT) {
    const images = size !== undefined ? readBytesElements(binary, count, what) : base64Images(input.data, count, what);
    return { name, images };
  }
  const values = count * pixelsPerImage(model);
  if (size !== undefined) {
    if (size !== values) throw new InvalidInput(`${what} of shape [${shape}] is ${values} bytes; "binary_data_size" is ${size}.`);
    return { name, pixels: binary, count };
  }
  return { name, pixels: uint8Values(input.data, values, what), count };
}

/** The batch size from a shape that must be [N] (image) or [N, size, size, channels] (pixels). */
function batchOf(shape: unknown, name: string, model: V2Model): number {
  const dims = name === IMAGE_INPUT ? 'N' : `N,${model.inputSize},${model.inputSize},${model.channels}`;
  const valid = Array.isArray(shape) && shape.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0);
  const expected = name === IMAGE_INPUT ? [] : [model.inputSize, model.inputSize, model.channels];
  if (!valid || shape.length !== expected.length + 1 || expected.some((d, i) => shape[i + 1] !== d)) {
    throw new InvalidInput(`input "${name}" has shape ${show(shape)}; it must be [${dims}].`);
  }
  const count = shape[0] as number;
  if (count === 0) throw new InvalidInput(`input "${name}" holds no image (N = 0); send from 1 to ${model.maxBatchSize}.`);
  if (count > model.maxBatchSize) throw new BatchTooLarge(count, model.maxBatchSize);
  return count;
}

/**
 * In JSON, a BYTES element is a string; an encoded image is not valid UTF-8, so each one is
 * sent base64-encoded, as OpenVINO Model Server and KServe's image examples do. Node's
 * decoder skips what is not base64, so a string is valid when nothing was skipped.
 */
function base64Images(data: unknown, count: number, what: string): Buffer[] {
  if (!Array.isArray(data) || data.length !== count) {
    throw new InvalidInput(`${what} "data" must be an array of ${count} base64 strings, as its shape says.`);
  }
  return data.map((element, i) => {
    const bytes = typeof element === 'string' ? Buffer.from(element, 'base64') : undefined;
    const padding = typeof element === 'string' ? (element.endsWith('==') ? 2 : element.endsWith('=') ? 1 : 0) : 0;
    if (!bytes || element.length % 4 !== 0 || bytes.length !== (element.length / 4) * 3 - padding) {
      throw new InvalidInput(`${what} element ${i} must be an image as a base64 string (RFC 4648, padded); got ${show(element).slice(0, 24)}…`);
    }
    return bytes;
  });
}

/** UINT8 values given flat or nested in any way, row-major, into `expected` bytes. */
function uint8Values(data: unknown, expected: number, what: string): Uint8Array {
  const out = new Uint8Array(expected);
  let n = 0;
  // Depth is bounded by parseJson's bounds, so the stack of arrays stays small.
  const stack: Array<{ array: unknown[]; at: number }> = [{ array: Array.isArray(data) ? data : [data], at: 0 }];
  while (stack.length) {
    const top = stack[stack.length - 1];
    if (top.at === top.array.length) {
      stack.pop();
      continue;
    }
    const value = top.array[top.at++];
    if (Array.isArray(value)) {
      stack.push({ array: value, at: 0 });
      continue;
    }
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 255) {
      throw new InvalidInput(`${what} value ${n} is ${show(value)}; UINT8 values are integers from 0 to 255.`);
    }
    if (n === expected) throw new InvalidInput(`${what} "data" holds more than the ${expected} values its shape says.`);
    out[n++] = value;
  }
  if (n !== expected) throw new InvalidInput(`${what} "data" holds ${n} values; its shape says ${expected}.`);
  return out;
}

function readOutput(outputs: unknown, params: Json, model: V2Model): InferPlan['output'] {
  const classes = model.labels.length;
  const binaryAll = optionalBool(params, 'binary_data_output', 'Request') ?? false;
  // Triton reads "classification" on an output; on the request it applies to the output too.
  const classifyAll = classificationOf(params, 'Request', classes) ?? 0;
  if (outputs === undefined) return { name: PROBABILITIES_OUTPUT, binary: binaryAll, classification: classifyAll };
  if (!Array.isArray(outputs) || outputs.length !== 1) {
    throw new InvalidInput(`"outputs" must be an array holding at most the one output, "${PROBABILITIES_OUTPUT}"; got ${show(outputs)}.`);
  }
  const output = outputs[0];
  if (!isObject(output)) throw new InvalidInput(`outputs[0] must be an object; got ${show(output)}.`);
  if (output.name !== PROBABILITIES_OUTPUT) throw new InvalidInput(`Unknown output ${show(output.name)} for model "${model.name}"; it has one, "${PROBABILITIES_OUTPUT}".`);
  const what = `Output "${PROBABILITIES_OUTPUT}"`;
  const own = optionalObject(output.parameters, `${what} "parameters"`);
  return {
    name: PROBABILITIES_OUTPUT,
    binary: optionalBool(own, 'binary_data', what) ?? binaryAll,
    classification: classificationOf(own, what, classes) ?? classifyAll,
  };
}
