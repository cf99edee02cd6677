// What a route is to app.ts: its handlers by method, the labels it is counted under, and
// how its errors are written (problem+json for the function's own API, {"error"} for the
// Open Inference Protocol).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Classifier } from '../classifier.ts';
import type { BodyGuard } from './body.ts';

/**
 * `gone` is aborted when the client closes the connection before the reply is written. A
 * handler that learns which model a request is for from its parameters notes it in `facts`:
 * it labels the request's metrics and the log line of a failure.
 */
export type Handler = (req: IncomingMessage, res: ServerResponse, url: URL, gone: AbortSignal, facts: RequestFacts) => Promise<number> | number;

export interface RequestFacts {
  model?: string;
}

export interface Route {
  /** The metrics' route label: the path, with any variable part named. */
  label: string;
  /** The metrics' model label: the model served, or '' where none is or a parameter chooses it (RequestFacts). */
  model: string;
  methods: Record<string, Handler>;
  sendError(res: ServerResponse, err: unknown, path: string): number;
}

/**
 * Runs `fn` holding an admission place for the request, refused before the body is read,
 * and counted against its client's share of slow uploads (admission.ts). `fn` reads the body
 * with `body`: the slow-client timing, `gone`, and the cut for uploads past the share.
 */
export type Admit = (req: IncomingMessage, gone: AbortSignal, fn: (classifier: Classifier, body: BodyGuard) => Promise<number>) => Promise<number>;
