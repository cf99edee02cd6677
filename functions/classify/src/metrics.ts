// Prometheus metrics, on a registry of our own so tests can create several servers.
import client from 'prom-client';

export type Stage = 'decode' | 'queue' | 'inference' | 'total';

export function createMetrics() {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 10 });
  const registers = [registry];
  return {
    registry,
    requests: new client.Counter({
      name: 'klassify_requests_total',
      help: 'Requests answered, by route, status code and model ("" where no model serves the route).',
      labelNames: ['route', 'status', 'model'] as const,
      registers,
    }),
    stageSeconds: new client.Histogram({
      name: 'klassify_stage_seconds',
      help: 'Time spent per pipeline stage, by model.',
      labelNames: ['stage', 'model'] as const,
      buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5],
      registers,
    }),
    batchSize: new client.Histogram({
      name: 'klassify_batch_size',
      help: 'Images per inference call (micro-batching), by model.',
      labelNames: ['model'] as const,
      buckets: [1, 2, 4, 8, 16, 32, 64, 128],
      registers,
    }),
    workerLosses: new client.Counter({
      name: 'klassify_worker_losses_total',
      help: 'Inference workers lost and replaced, by reason: crashed, exited, timed-out (a batch past its deadline).',
      labelNames: ['reason'] as const,
      registers,
    }),
    decoderLosses: new client.Counter({
      name: 'klassify_decoder_losses_total',
      help: 'Decoder processes killed or lost and replaced, by reason: timed-out, over-memory, client-gone, crashed.',
      labelNames: ['reason'] as const,
      registers,
    }),
    inFlight: new client.Gauge({ name: 'klassify_in_flight_requests', help: 'Classification requests being served.', registers }),
    dedupeEntries: new client.Gauge({ name: 'klassify_dedupe_entries', help: 'CloudEvent replies held for de-duplication.', registers }),
    dedupeBytes: new client.Gauge({ name: 'klassify_dedupe_bytes', help: 'Estimated bytes of the held CloudEvent replies and their keys.', registers }),
    modelLoadSeconds: new client.Gauge({
      name: 'klassify_model_load_seconds',
      help: 'Time to fetch, convert, load and warm up the model at start-up.',
      registers,
    }),
    info: new client.Gauge({
      name: 'klassify_info',
      help: 'Constant 1 per served model, labelled with the engine and execution provider in use and whether it is the default.',
      labelNames: ['engine', 'provider', 'model', 'default'] as const,
      registers,
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
