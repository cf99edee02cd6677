// The HTTP transport: routing, admission, problem responses and metrics per request.
// It knows nothing about images or models beyond calling the core and naming its models.
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { clientAddress, clientKey } from '../../../../server-kit/client-address.ts';
import { stageClose } from '../../../../server-kit/linger.ts';
import type { Logger } from '../../../../server-kit/log.ts';
import type { Classifier } from '../classifier.ts';
import type { Config } from '../config.ts';
import { ClientClosed, ClientError, MethodNotAllowed, NotFound, NotReady } from '../errors.ts';
import type { Metrics } from '../metrics.ts';
import { openApiDocument } from './openapi.ts';
import { readUpload, type BodyGuard, type BodyTiming } from './body.ts';
import { classifyOptions, readParams } from './params.ts';
import { closesConnection } from './problems.ts';
import type { Admit, Handler, RequestFacts, Route } from './route.ts';
import { sendJson, sendProblem } from './respond.ts';
import { classifierRuntime, servedModels } from './v2/model.ts';
import { createV2Routes } from './v2/routes.ts';

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
   * Handles CloudEvents posted to `/` (the path a Knative Trigger delivers to). `body` is the
   * request's body policy: its timing, and a signal that fires when the sender has gone.
   */
  handleEvent: (req: IncomingMessage, res: ServerResponse, classifier: Classifier, body: BodyGuard, facts: RequestFacts) => Promise<number>;
}

/** What GET / answers: directions for a person or a probe that opens the function's URL. */
const INDEX = {
  service: 'klassify classify function',
  classify: 'POST /classify with an image (raw bytes, or a multipart "image" file); ?model= picks a model',
  events: 'POST / with a CloudEvent dev.klassify.image.submitted; the extension attribute klassifymodel picks a model',
  openapi: '/openapi.json',
  inferenceProtocol: 'Open Inference Protocol v2 (KServe, Triton clients): GET /v2, POST /v2/models/{model}/infer',
  health: { liveness: '/health/liveness', readiness: '/health/readiness' },
  metrics: '/metrics',
  ui: 'The web UI is served on its own (npm start: http://localhost:3000; on Knative: the ui Service).',
};

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

  /** The core with a worker ready to infer: what both readiness probes (here and /v2) report. */
  const serving = (): Classifier => {
    const classifier = ready();
    if (!classifier.workers.ready) throw new NotReady('No inference worker is ready; a replacement is starting.');
    return classifier;
  };

  /**
   * Admission first, so a refused request costs no body buffering. Every route that reads
   * a body goes through here, so each counts against its client's share (admission.ts), and
   * reads its body with the policy handed to `fn`: the slow-client timing, `gone`, and the
   * cut that ends the read when the client's slow uploads pass its share.
   */
  const withAdmission: Admit = async (req, gone, fn) => {
    const classifier = ready();
    const client = clientKey(clientAddress(req.socket.remoteAddress, req.headers['x-forwarded-for'], config.trustedProxies));
    const cut = new AbortController();
    const ticket = classifier.admit(client, (err) => cut.abort(err));
    // 'end' comes once the body has been read to its end, by whichever reader.
    req.once('end', ticket.bodyRead);
    try {
      return await fn(classifier, { timing, signal: gone, cut: cut.signal });
    } finally {
      req.off('end', ticket.bodyRead);
      ticket.release();
    }
  };

  const classify: Handler = (req, res, url, gone, facts) =>
    withAdmission(req, gone, async (classifier, body) => {
      const query = readParams(url.searchParams, config.models); // a bad query is refused before the body is read
      facts.model = query.model;
      const upload = await readUpload(req, config.bodyLimitBytes, body);
      const opts = classifyOptions(config, query, readParams(upload.params, config.models, query));
      facts.model = opts.model;
      gone.throwIfAborted(); // nobody is waiting: start no work
      sendJson(res, 200, await classifier.classify(upload.bytes, { ...opts, signal: gone }));
      return 200;
    });

  const handlers: Record<string, Record<string, Handler>> = {
    '/classify': { POST: classify },
    '/': {
      GET: (_req, res) => (sendJson(res, 200, { ...INDEX, models: config.models, defaultModel: config.model }), 200),
      POST: (req, res, _url, gone, facts) => withAdmission(req, gone, (classifier, body) => deps.handleEvent(req, res, classifier, body, facts)),
    },
    '/health/liveness': { GET: (_req, res) => (sendJson(res, 200, { status: 'alive' }), 200) },
    '/health/readiness': {
      GET: (_req, res) => {
        const classifier = serving();
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
  // /classify and / serve a model: the one a request names (RequestFacts), else the default.
  const served = new Set(['/classify', '/']);
  const routes: Record<string, Route> = Object.fromEntries(
    Object.entries(handlers).map(([path, methods]) => [path, { label: path, model: served.has(path) ? config.model : '', methods, sendError: sendProblem }]),
  );
  const v2 = createV2Routes({
    config,
    models: servedModels(config),
    serving,
    withAdmission,
    runtime: (classifier) => classifierRuntime(classifier, config.resize),
  });
  const unmatched: Route = { label: 'unmatched', model: '', methods: {}, sendError: sendProblem };

  return (req, res) => {
    const gone = new AbortController();
    res.once('close', () => res.writableFinished || gone.abort(new ClientClosed()));
    // The Host header is client-controlled; only the path matters for routing.
    const url = new URL(req.url ?? '/', 'http://localhost');
    const route = routes[url.pathname] ?? v2(url.pathname);
    const { label, model, sendError } = route ?? unmatched;
    const facts: RequestFacts = {};
    const run = async (): Promise<number> => {
      if (!route) throw new NotFound(url.pathname);
      const method = req.method === 'HEAD' && route.methods.GET ? 'GET' : (req.method ?? '');
      const handler = route.methods[method];
      if (!handler) throw Object.keys(route.methods).length ? new MethodNotAllowed(req.method ?? '', Object.keys(route.methods)) : new NotFound(url.pathname);
      return handler(req, res, url, gone.signal, facts);
    };
    run()
      .catch((err) => {
        // A client that has gone reads nothing: whatever failed after that is not logged.
        if (gone.signal.aborted) return 499;
        if (!(err instanceof ClientError)) log.error('request failed', { method: req.method, path: url.pathname, model: facts.model ?? (model || undefined), error: err });
        if (closesConnection(err)) dropConnectionAfterReply(req, res);
        return sendError(res, err, url.pathname);
      })
      // Counted as 499 (nginx's "client closed request") even if an answer was written.
      .then((status) => metrics.requests.labels(label, gone.signal.aborted ? '499' : String(status), facts.model ?? model).inc())
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
