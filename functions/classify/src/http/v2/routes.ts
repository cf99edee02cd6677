// The Open Inference Protocol's REST routes (/v2/...), beside /classify. They share its
// admission, body limits and slow-client policy, decode budget, timeouts, metrics and logs
// through app.ts; what differs is the protocol, and errors, which the protocol wants as
// {"error": "..."} with a 4xx: this module owns that rendering.
import type { IncomingMessage, ServerResponse } from 'node:http';
import pkg from '../../../../../package.json' with { type: 'json' };
import { writeJson } from '../../../../../server-kit/json.ts';
import { INTERNAL_PROBLEM } from '../../../../../server-kit/problem.ts';
import type { Classifier } from '../../classifier.ts';
import type { Config } from '../../config.ts';
import { ClientError, InvalidInput, NotReady, UnknownModel, type ErrorCode } from '../../errors.ts';
import { topK } from '../../labels.ts';
import type { Admit, Handler, Route } from '../route.ts';
import { readRaw, type BodyGuard } from '../body.ts';
import { headersOf } from '../problems.ts';
import { decodeContent, encodeResponse, HEADER_LENGTH, splitBody, type OutputTensor } from './codec.ts';
import { IMAGE_INPUT, MODEL_VERSION, modelConfiguration, modelMetadata, pixelsPerImage, type V2Model, type V2Runtime } from './model.ts';
import { planInference, type InferPlan } from './request.ts';

export const EXTENSIONS = ['binary_tensor_data', 'classification', 'model_configuration'] as const;

export interface V2Deps {
  config: Readonly<Config>;
  models: readonly V2Model[];
  /** The core once a worker is ready to infer; throws NotReady before. */
  serving(): Classifier;
  /** Admission as /classify has it (route.ts): a place, the client's share, the body policy. */
  withAdmission: Admit;
  runtime(classifier: Classifier): V2Runtime;
}

/** Statuses the protocol's clients act on; every other client error is a 400, as in Triton. */
const STATUS: Partial<Record<ErrorCode, number>> = {
  'not-found': 404,
  'unknown-model': 404,
  'method-not-allowed': 405,
  'request-timeout': 408,
  'payload-too-large': 413,
  'client-closed': 499,
  'too-many-uploads': 429,
  overloaded: 503,
  'not-ready': 503,
  'worker-unavailable': 503,
};

/** The protocol's $..._error_response: {"error": message}, never internals. */
export function sendV2Error(res: ServerResponse, err: unknown): number {
  const known = err instanceof ClientError;
  const status = known ? (STATUS[err.code] ?? 400) : 500;
  if (res.headersSent) {
    res.destroy();
    return status;
  }
  const error = known ? err.message : INTERNAL_PROBLEM.detail;
  writeJson(res, status, { error }, { ...(known ? headersOf(err) : {}), 'cache-control': 'no-store' });
  return status;
}

type Kind = 'ready' | 'config' | 'infer' | 'metadata';

/** Splits /v2/models/{model}[/versions/{version}][/ready|/config|/infer]; undefined if not so. */
function modelPath(segments: string[]): { model: string; version?: string; kind: Kind } | undefined {
  const [name, ...rest] = segments;
  let version: string | undefined;
  if (rest[0] === 'versions' && rest.length >= 2) version = rest.splice(0, 2)[1];
  const kind = rest.length === 0 ? 'metadata' : rest.length === 1 && ['ready', 'config', 'infer'].includes(rest[0]) ? (rest[0] as Kind) : undefined;
  if (!name || !kind) return undefined;
  try {
    return { model: decodeURIComponent(name), version: version === undefined ? undefined : decodeURIComponent(version), kind };
  } catch {
    return undefined; // malformed percent-encoding: no such model
  }
}

export function createV2Routes(deps: V2Deps): (pathname: string) => Route | undefined {
  const { config, models } = deps;
  const names = models.map((m) => m.name);
  const route = (label: string, methods: Record<string, Handler>, model = ''): Route => ({ label, model, methods, sendError: sendV2Error });
  const fixed: Record<string, Route> = {
    '/v2': route('/v2', { GET: (_req, res) => ok(res, { name: 'klassify', version: pkg.version, extensions: EXTENSIONS }) }),
    '/v2/health/live': route('/v2/health/live', { GET: (_req, res) => ok(res, { live: true }) }),
    '/v2/health/ready': route('/v2/health/ready', { GET: (_req, res) => readiness(res, {}) }),
  };
  fixed['/v2/'] = fixed['/v2'];

  /** 200 once a worker is ready; 503 with the reason (and Retry-After) before. */
  const readiness = (res: ServerResponse, body: Record<string, unknown>): number => {
    try {
      deps.serving();
    } catch (err) {
      if (!(err instanceof NotReady)) throw err;
      writeJson(res, 503, { ...body, ready: false, error: err.message }, { 'retry-after': String(err.retryAfterSeconds), 'cache-control': 'no-store' });
      return 503;
    }
    return ok(res, { ...body, ready: true });
  };

  const find = (name: string, version: string | undefined): V2Model => {
    const model = models.find((m) => m.name === name);
    if (!model) throw new UnknownModel(`Unknown model "${name}"; this server serves ${names.map((n) => `"${n}"`).join(', ')}.`, names);
    if (version !== undefined && !model.versions.includes(version)) {
      throw new UnknownModel(`Model "${name}" has no version "${version}"; it has version ${model.versions.join(', ')}.`, names);
    }
    return model;
  };

  return (pathname) => {
    if (fixed[pathname]) return fixed[pathname];
    const segments = pathname.split('/').slice(1);
    const path = segments[0] === 'v2' && segments[1] === 'models' ? modelPath(segments.slice(2)) : undefined;
    if (!path) return pathname === '/v2' || pathname.startsWith('/v2/') ? route('unmatched', {}) : undefined;
    const { kind, version } = path;
    const label = `/v2/models/{model}${kind === 'metadata' ? '' : `/${kind}`}`;
    const model = () => find(path.model, version);
    const known = names.includes(path.model) ? path.model : '';
    if (kind === 'infer') return route(label, { POST: (req, res, _url, gone) => infer(deps, req, res, model(), gone) }, known);
    const answer: Record<Exclude<Kind, 'infer'>, (res: ServerResponse) => number> = {
      metadata: (res) => ok(res, modelMetadata(model())),
      config: (res) => ok(res, modelConfiguration(model(), config)),
      ready: (res) => readiness(res, { name: model().name }),
    };
    return route(label, { GET: (_req, res) => answer[kind](res) }, known);
  };
}

function ok(res: ServerResponse, body: unknown): number {
  writeJson(res, 200, body);
  return 200;
}

async function infer(deps: V2Deps, req: IncomingMessage, res: ServerResponse, model: V2Model, gone: AbortSignal): Promise<number> {
  return deps.withAdmission(req, gone, async (classifier, guard) => {
    const limit = deps.config.bodyLimitBytes;
    const body = decodeContent(await readBody(req, limit, guard), req.headers['content-encoding'], limit);
    const plan = planInference(splitBody(body, req.headers[HEADER_LENGTH]), model);
    gone.throwIfAborted(); // nobody is waiting: start no work
    const probabilities = await runBatch(deps.runtime(classifier), model, plan, gone);
    const head = { model_name: model.name, model_version: MODEL_VERSION, ...(plan.id === undefined ? {} : { id: plan.id }) };
    const { body: payload, headers } = encodeResponse(head, [outputOf(plan, model, probabilities)]);
    res.writeHead(200, { ...headers, 'content-length': payload.length });
    res.end(payload);
    return 200;
  });
}

async function readBody(req: IncomingMessage, limit: number, guard: BodyGuard): Promise<Buffer> {
  try {
    return await readRaw(req, limit, guard);
  } catch (err) {
    if (err instanceof ClientError && err.code === 'empty-body') {
      throw new InvalidInput('The request body is empty; send an inference request: a JSON object, optionally followed by binary tensor data.');
    }
    throw err;
  }
}

/**
 * Every image of the batch through the same path as /classify's, each one counted against
 * the decode budget and queued for inference on its own, so that the pool merges them with
 * other requests' images as it does any. The first failure ends the request; images not
 * yet started are then skipped.
 */
async function runBatch(runtime: V2Runtime, model: V2Model, plan: InferPlan, gone: AbortSignal): Promise<Float32Array[]> {
  const failed = new AbortController();
  const signal = AbortSignal.any([gone, failed.signal]);
  const { input } = plan;
  const size = pixelsPerImage(model);
  const rows =
    input.name === IMAGE_INPUT
      ? input.images.map(async (bytes, i) => runtime.infer(model, await runtime.decode(model, bytes, signal).catch((err) => Promise.reject(atElement(err, i))), signal))
      : Array.from({ length: plan.count }, (_, i) => runtime.infer(model, input.pixels.subarray(i * size, (i + 1) * size), signal));
  try {
    return await Promise.all(rows);
  } catch (err) {
    failed.abort(err);
    throw err;
  }
}

/** An image's error, naming which element of the batch it is. */
function atElement(err: unknown, index: number): unknown {
  if (!(err instanceof ClientError) || err.code === 'client-closed') return err;
  return new ClientError(err.code, err.title, `input "${IMAGE_INPUT}" element ${index}: ${err.message}`, err.details);
}

function outputOf(plan: InferPlan, model: V2Model, rows: Float32Array[]): OutputTensor {
  const { name, binary, classification: k } = plan.output;
  const classes = model.labels.length;
  if (k > 0) {
    // Triton's "<value>:<index>:<label>", best first; the value in full, as /classify gives it.
    const data = rows.flatMap((p) => topK(p, k).map(({ classIndex, probability }) => `${probability}:${classIndex}:${model.labels[classIndex]}`));
    return { name, datatype: 'BYTES', shape: [rows.length, k], data, binary };
  }
  const data = new Float32Array(rows.length * classes);
  rows.forEach((p, i) => data.set(p, i * classes));
  return { name, datatype: 'FP32', shape: [rows.length, classes], data, binary };
}
