// The HTTP transport: routing, admission, problem responses and metrics per request.
// It knows nothing about images or models beyond calling the core.
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { stageClose } from '../../../../server-kit/linger.ts';
import type { Logger } from '../../../../server-kit/log.ts';
import type { Classifier } from '../classifier.ts';
import type { Config } from '../config.ts';
import { ClientClosed, ClientError, MethodNotAllowed, NotFound, NotReady } from '../errors.ts';
import type { Metrics } from '../metrics.ts';
import { openApiDocument } from '../openapi.ts';
import { guardBody, readUpload, type BodyTiming } from './body.ts';
import { classifyOptions, mergeParams } from './params.ts';
import { closesConnection } from './problems.ts';
import { sendJson, sendProblem } from './respond.ts';

export interface ServiceState {
  classifier: Classifier | null;
  shuttingDown: boolean;
}

export interface AppDeps {
  config: Readonly<Config>;
  metrics: Metrics;
  state: ServiceState;
  log: Logger;
  /**
   * Handles CloudEvents posted to `/` (the path a Knative Trigger delivers to). `gone` fires
   * when the sender has closed the connection: pass it on as ClassifyOptions.signal.
   */
  handleEvent: (req: IncomingMessage, res: ServerResponse, classifier: Classifier, gone: AbortSignal) => Promise<number>;
}

/** What GET / answers: directions for a person or a probe that opens the function's URL. */
const INDEX = {
  service: 'klassify classify function',
  classify: 'POST /classify with an image (raw bytes, or a multipart "image" file); ?model= picks a model',
  events: 'POST / with a CloudEvent dev.klassify.image.submitted (extension klassifymodel picks a model)',
  openapi: '/openapi.json',
  health: { liveness: '/health/liveness', readiness: '/health/readiness' },
  metrics: '/metrics',
  ui: 'The web UI is served on its own (npm start: http://localhost:3000; on Knative: the ui Service).',
};

/**
 * `gone` is aborted when the client closes the connection before the reply is written;
 * `fields` collects facts about the request (the model) for the log line of a failure.
 */
type Handler = (req: IncomingMessage, res: ServerResponse, url: URL, gone: AbortSignal, fields: Record<string, unknown>) => Promise<number> | number;

export function createApp(deps: AppDeps): RequestListener {
  const { config, metrics, state, log } = deps;
  const timing: BodyTiming = {
    idleTimeoutMs: config.bodyIdleTimeoutMs,
    graceMs: config.bodyGraceMs,
    minRateBytesPerSec: config.bodyMinRate,
    timeoutMs: config.bodyTimeoutMs,
  };

  let openApi: string | undefined;

  const ready = (): Classifier => {
    if (state.shuttingDown) throw new NotReady('The server is shutting down.');
    if (!state.classifier) throw new NotReady('The model is still loading; retry shortly.');
    return state.classifier;
  };

  /** Admission first, so a refused request costs no body buffering. */
  const withAdmission = async (fn: (c: Classifier) => Promise<number>): Promise<number> => {
    const classifier = ready();
    const release = classifier.admit();
    try {
      return await fn(classifier);
    } finally {
      release();
    }
  };

  const classify: Handler = (req, res, url, gone, fields) =>
    withAdmission(async (classifier) => {
      classifyOptions(url.searchParams, config); // a bad query is refused before the body is read
      const upload = await readUpload(req, config.bodyLimitBytes);
      const opts = classifyOptions(mergeParams(url.searchParams, upload.params), config);
      fields.model = opts.model ?? config.model;
      gone.throwIfAborted(); // nobody is waiting: start no work
      sendJson(res, 200, await classifier.classify(upload.bytes, { ...opts, signal: gone }));
      return 200;
    });

  const routes: Record<string, Record<string, Handler>> = {
    '/classify': { POST: classify },
    '/': {
      GET: (_req, res) => (sendJson(res, 200, { ...INDEX, models: config.models, defaultModel: config.model }), 200),
      POST: (req, res, _url, gone) => withAdmission((classifier) => deps.handleEvent(req, res, classifier, gone)),
    },
    '/health/liveness': { GET: (_req, res) => (sendJson(res, 200, { status: 'alive' }), 200) },
    '/health/readiness': {
      GET: (_req, res) => {
        const classifier = ready();
        if (!classifier.workers.ready) throw new NotReady('No inference worker is ready; a replacement is starting.');
        sendJson(res, 200, { status: 'ready', engine: config.engine, provider: classifier.provider, workers: classifier.workers, models: config.models });
        return 200;
      },
    },
    '/metrics': {
      GET: async (_req, res) => {
        const body = await metrics.registry.metrics();
        res.writeHead(200, { 'content-type': metrics.registry.contentType });
        res.end(body);
        return 200;
      },
    },
    // Built on first use, not at start-up: nothing waits for it on a cold start.
    '/openapi.json': { GET: (_req, res) => (sendJson(res, 200, (openApi ??= JSON.stringify(openApiDocument(config)))), 200) },
  };

  return (req, res) => {
    const gone = new AbortController();
    res.once('close', () => res.writableFinished || gone.abort(new ClientClosed()));
    guardBody(req, { timing, signal: gone.signal });
    // The Host header is client-controlled; only the path matters for routing.
    const url = new URL(req.url ?? '/', 'http://localhost');
    const route = routes[url.pathname];
    const routeLabel = route ? url.pathname : 'unmatched';
    const fields: Record<string, unknown> = {};
    const run = async (): Promise<number> => {
      if (!route) throw new NotFound(url.pathname);
      const method = req.method === 'HEAD' && route.GET ? 'GET' : (req.method ?? '');
      const handler = route[method];
      if (!handler) throw new MethodNotAllowed(req.method ?? '', Object.keys(route));
      return handler(req, res, url, gone.signal, fields);
    };
    run()
      .catch((err) => {
        // A client that has gone reads nothing: whatever failed after that is not logged.
        if (gone.signal.aborted) return 499;
        if (!(err instanceof ClientError)) log.error('request failed', { method: req.method, path: url.pathname, ...fields, error: err });
        if (closesConnection(err)) dropConnectionAfterReply(req, res);
        return sendProblem(res, err, url.pathname);
      })
      // Counted as 499 (nginx's "client closed request") even if an answer was written.
      .then((status) => metrics.requests.labels(routeLabel, gone.signal.aborted ? '499' : String(status)).inc())
      // Last line of defence: nothing about one request may become an unhandled rejection.
      .catch((err) => {
        log.error('failed to answer', { method: req.method, path: url.pathname, error: err });
        res.destroy();
      });
  };
}

/**
 * After a 413 (or any error that closes the connection) the rest of the body is never read;
 * the close is staged so that a client still uploading reads the answer (server-kit/linger.ts).
 */
function dropConnectionAfterReply(req: IncomingMessage, res: ServerResponse): void {
  const socket = req.socket ?? res.socket; // captured now: both detach once the reply is done
  if (socket) stageClose(socket);
}
