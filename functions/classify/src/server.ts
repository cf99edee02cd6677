// Wires config, core and transports into a running server with a graceful lifecycle.
// The port opens at once so liveness answers during model load; readiness turns true only
// once every worker has loaded and warmed up the model.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Classifier } from './classifier.ts';
import { checkEventSource, createDeduper } from './events/handler.ts';
import { handleCloudEvent } from './http/events.ts';
import type { Logger } from '../../../server-kit/log.ts';
import type { Config } from './config.ts';
import { startDecoders, stopUnclaimed, type Decoders } from './decoders.ts';
import { startInference, type LoadedModel } from './inference.ts';
import { createApp, type ServiceState } from './http/app.ts';
import { log as defaultLog } from './log.ts';
import { createMetrics } from './metrics.ts';

export interface RunningService {
  url: string;
  server: Server;
  /** Resolves when the model is loaded and readiness is true; rejects if loading fails. */
  ready: Promise<void>;
  /** Fails readiness, stops accepting, finishes in-flight requests, stops the workers. */
  shutdown(): Promise<void>;
}

export async function startService(
  config: Readonly<Config>,
  log: Logger = defaultLog,
  inference: Promise<LoadedModel> = startInference(config, log),
  decoders: Promise<Decoders> = startDecoders(config, log),
): Promise<RunningService> {
  checkEventSource(config.eventSource);
  const metrics = createMetrics();
  const state: ServiceState = { classifier: null, shuttingDown: false };
  const deduper = createDeduper(config, metrics);
  const app = createApp({
    config,
    metrics,
    state,
    log,
    // The abort signal is not passed on here: the sender is a broker, and when it gives up
    // on a slow delivery it retries the same event. Finishing the work fills the
    // de-duplication store, so the retry is answered at once instead of classified again.
    handleEvent: (req, res, classifier, body, facts) => handleCloudEvent(req, res, body, { classifier, config, deduper }, facts),
  });
  // Node's own request timeout is a backstop behind the body policy in http/body.ts, which
  // answers 408 first and releases admission.
  const server = createServer({ requestTimeout: config.bodyTimeoutMs + 15_000, headersTimeout: 15_000, keepAliveTimeout: 65_000 }, app);
  // close() ends only the connections idle at that moment: one whose answer is written later
  // stays open until its client closes it, and a proxy (Knative's queue-proxy) keeps its
  // connections for minutes. So while shutting down, each connection closes as its answer ends.
  server.on('request', (_req, res) => res.once('finish', () => state.shuttingDown && server.closeIdleConnections()));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  log.info(`klassify classify function listening on ${config.host}:${port}`, { host: config.host, port });

  const ready = Classifier.create(config, metrics, inference, log, decoders).then((c) => {
    state.classifier = c;
  });
  ready.catch(() => {}); // the caller owns the failure; avoid an unhandled rejection here

  let stopping: Promise<void> | undefined;
  const shutdown = () =>
    (stopping ??= (async () => {
      state.shuttingDown = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await closed; // in-flight requests have been answered
      await ready.catch(() => {});
      await state.classifier?.close();
      if (!state.classifier) await stopUnclaimed(inference, decoders);
    })());

  return { url, server, ready, shutdown };
}
