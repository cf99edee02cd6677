/**
 * RFC 9457 problem details: the one error format of the classify function and the UI
 * server; without its HTTP status, also the data of a dev.klassify.image.rejected event
 * (contracts/events.ts). Each problem's `type` is
 * PROBLEM_BASE plus a short code, e.g. https://klassify.dev/problems/payload-too-large.
 */
import type { FromSchema } from './schema.ts';

export const PROBLEM_BASE = 'https://klassify.dev/problems/';
export const PROBLEM_MEDIA_TYPE = 'application/problem+json';

/** The problem type URI for a code such as "not-found". */
export function problemType(code: string): string {
  return PROBLEM_BASE + code;
}

/** What every problem says, whatever carries it: an HTTP answer or a rejected event. */
export const PROBLEM_MEMBERS = {
  type: { type: 'string', description: `${PROBLEM_BASE}<code>, or about:blank for an internal error.` },
  title: { type: 'string' },
  detail: { type: 'string', description: 'What went wrong with this request, and what to send instead.' },
  supported: { type: 'array', items: { type: 'string' }, description: 'With unsupported-media-type: the image formats that are decoded.' },
  parameter: { type: 'string', description: 'With an invalid parameter: its name.' },
  models: { type: 'array', items: { type: 'string' }, description: 'With a model that is not served (invalid-parameter "model", unknown-model): the models that are.' },
} as const;

export const PROBLEM_SCHEMA = {
  type: 'object',
  required: ['type', 'title', 'status'],
  properties: {
    ...PROBLEM_MEMBERS,
    status: { type: 'integer', minimum: 400, maximum: 599 },
    instance: { type: 'string' },
  },
} as const;

/** Other members are extensions: facts a client can act on (a limit, the valid values). */
export type Problem = FromSchema<typeof PROBLEM_SCHEMA> & { [extension: string]: unknown };
