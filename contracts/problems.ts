/**
 * RFC 9457 problem details: the one error format of the classify function and the UI
 * server, and the data of a dev.klassify.image.rejected event. Each problem's `type` is
 * PROBLEM_BASE plus a short code, e.g. https://klassify.dev/problems/payload-too-large.
 */
import type { FromSchema } from './schema.ts';

export const PROBLEM_BASE = 'https://klassify.dev/problems/';
export const PROBLEM_MEDIA_TYPE = 'application/problem+json';

/** The problem type URI for a code such as "not-found". */
export function problemType(code: string): string {
  return PROBLEM_BASE + code;
}

export const PROBLEM_SCHEMA = {
  type: 'object',
  required: ['type', 'title', 'status'],
  properties: {
    type: { type: 'string', description: `${PROBLEM_BASE}<code>, or about:blank for an internal error.` },
    title: { type: 'string' },
    status: { type: 'integer', minimum: 400, maximum: 599 },
    detail: { type: 'string', description: 'What went wrong with this request, and what to send instead.' },
    instance: { type: 'string' },
    supported: { type: 'array', items: { type: 'string' }, description: 'With 415: the image formats that are decoded.' },
    parameter: { type: 'string', description: 'With an invalid parameter: its name.' },
    models: { type: 'array', items: { type: 'string' }, description: 'With unknown-model: the models this server serves.' },
  },
} as const;

/** Other members are extensions: facts a client can act on (a limit, the valid values). */
export type Problem = FromSchema<typeof PROBLEM_SCHEMA> & { [extension: string]: unknown };
