/**
 * Turns what the classify API (or anything between it and the browser)
 * answered into one message to show on the image's card.
 *
 * The API speaks RFC 9457 problem+json. An ingress, the activator or the UI
 * server's proxy may answer with something else (HTML, plain text, nothing),
 * so every field is optional and each status has a fallback title.
 */

import type { Problem as ContractProblem } from '../../../contracts/problems.ts';
import { formatName, listFormats, notAnImageText, SUPPORTED_FORMATS_TEXT } from './image-format.ts';

/** The members the page reads (the 415's `supported` lists the formats the function decodes). */
export type Problem = Partial<Pick<ContractProblem, 'type' | 'title' | 'status' | 'detail' | 'instance' | 'supported'>>;

export interface ErrorMessage {
  /** Short headline, e.g. "Unsupported image format". */
  title: string;
  /** One sentence from the server, when it sent one. */
  detail: string;
  /** What the user can do about it. */
  hint: string;
  /** HTTP status, or 0 for a network failure. */
  status: number;
  /** Whether trying again may help (busy, cold, network). */
  retryable: boolean;
}

const MAX_TEXT = 300;

const FALLBACK_TITLES: Record<number, string> = {
  400: 'The request was not understood',
  404: 'Classify endpoint not found',
  408: 'The upload timed out',
  413: 'Image too large',
  415: 'Unsupported image format',
  422: "Couldn't read this image",
  429: 'Too many requests',
  500: 'The classifier failed',
  502: 'Classify function unreachable',
  503: 'The classifier is not ready',
  504: 'The classifier took too long',
};

const HINTS: Record<number, string> = {
  413: 'Try a smaller image or a lower camera resolution.',
  415: `Use a ${SUPPORTED_FORMATS_TEXT} image.`,
  422: 'The file may be damaged or not an image.',
  429: 'Wait a moment, then retry.',
  502: 'The function may be restarting. Retry in a few seconds.',
  503: 'The function may be scaling up. Retry in a few seconds.',
  504: 'The function may be scaling up. Retry in a few seconds.',
};

const RETRYABLE = new Set([0, 408, 429, 502, 503, 504]);

/** Parses a response body as problem+json; returns {} when it is not one. */
export function parseProblem(contentType: string | null, body: string): Problem {
  const type = (contentType ?? '').toLowerCase();
  if (!type.includes('json')) return {};
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return {};
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return {};
  const record = value as Record<string, unknown>;
  const problem: Problem = {};
  if (typeof record.type === 'string') problem.type = record.type;
  if (typeof record.title === 'string') problem.title = clip(record.title);
  if (typeof record.detail === 'string') problem.detail = clip(record.detail);
  if (typeof record.instance === 'string') problem.instance = record.instance;
  if (typeof record.status === 'number' && Number.isInteger(record.status)) problem.status = record.status;
  if (Array.isArray(record.supported) && record.supported.every((item) => typeof item === 'string')) {
    problem.supported = (record.supported as string[]).slice(0, 20);
  }
  return problem;
}

/** The message for an HTTP error answer. */
export function problemToMessage(status: number, problem: Problem = {}): ErrorMessage {
  const title = problem.title?.trim() || fallbackTitle(status);
  const detail = problem.detail?.trim() ?? '';
  return {
    title,
    detail: detail === title ? '' : detail,
    hint: hintFor(status, detail, problem.supported),
    status,
    retryable: RETRYABLE.has(status),
  };
}

/** The message when no HTTP answer came back at all. */
export function networkErrorMessage(online = true): ErrorMessage {
  return {
    title: online ? 'Network error' : 'You are offline',
    detail: online
      ? 'The upload did not reach the server or the connection dropped.'
      : 'The browser reports no network connection.',
    hint: 'Check your connection, then retry.',
    status: 0,
    retryable: true,
  };
}

/** The message for a file the page refuses before uploading it. */
export function tooLargeMessage(size: string, limit: string): ErrorMessage {
  return {
    title: 'Image too large',
    detail: `This file is ${size}; the limit is ${limit}.`,
    hint: HINTS[413],
    status: 413,
    retryable: false,
  };
}

/** The message for a file the page recognises as no image at all, before any upload. */
export function notAnImageMessage(fileName: string): ErrorMessage {
  return {
    title: 'Not an image',
    detail: notAnImageText(fileName),
    hint: '',
    status: 415,
    retryable: false,
  };
}

/** The message for a 2xx answer that is not a classification. */
export function badResponseMessage(): ErrorMessage {
  return {
    title: 'Unexpected answer from the server',
    detail: 'The response was not a classification result.',
    hint: 'Retry; if it persists, check the classify function logs.',
    status: 200,
    retryable: true,
  };
}

/** A next step for the user, unless the server's detail already says it. */
function hintFor(status: number, detail: string, supported: string[] | undefined): string {
  const said = detail.toLowerCase();
  if (supported?.length) {
    const mentioned = supported.some((format) => said.includes(format.toLowerCase()));
    return mentioned ? '' : `Use a ${listFormats([...new Set(supported.map(formatName))])} image.`;
  }
  const hint = HINTS[status] ?? (status >= 500 ? 'Retry in a few seconds.' : '');
  // Say it once: the server's detail often already tells the user to retry.
  if (hint && /\bretry|try again\b/.test(said) && /retry/i.test(hint)) return '';
  return hint;
}

export function fallbackTitle(status: number): string {
  if (FALLBACK_TITLES[status]) return FALLBACK_TITLES[status];
  if (status >= 500) return `Server error (${status})`;
  if (status >= 400) return `Request failed (${status})`;
  return `Unexpected status ${status}`;
}

function clip(text: string): string {
  return text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT - 1)}…` : text;
}
