// What a submitted event must look like before any work is done for it. Every attribute is
// checked here once, in both content modes, so that what flows on (into the de-duplication
// key, into reply headers) is known to be present, small and header-safe, and what a reply
// copies is known to pass the SDK's own validation of that reply.
import { CloudEvent, ValidationError } from 'cloudevents';
import { SUBMITTED } from '../../../../contracts/events.ts';
import { MODEL_EXTENSION } from '../../../../contracts/models.ts';
import { ClientError, InvalidInput } from '../errors.ts';
import { QUOTE, stringEnd } from '../json-scan.ts';

export const EVENT_LIMITS = {
  /** Longest attribute value, in bytes: ids, sources and subjects are short identifiers. */
  attributeBytes: 1024,
  /** Longest attribute name; the spec asks for at most 20 characters, we tolerate more. */
  nameChars: 64,
  /** Extension attributes per event; a Broker adds a handful (traceparent, knativearrivaltime…). */
  extensions: 32,
  /**
   * JSON values (objects, arrays, members) in a structured event. A real one is a dozen
   * attributes and one long base64 string; a body of `[{},{},…]` parses into many times its
   * own size in heap.
   */
  jsonValues: 4096,
  /** Room in a structured event for its attributes around data_base64. */
  jsonAllowanceBytes: 64 * 1024,
} as const;

/** The attributes a submitted event carries, validated. */
export interface Attributes {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  subject?: string;
  datacontenttype?: string;
  /** The extension attribute klassifymodel: the model to classify with (the handler checks it is served). */
  model?: string;
}

/** A submitted event whose attributes have been validated; its data as bytes. */
export interface SubmittedEvent {
  attributes: Attributes;
  data: Buffer | undefined;
}

/** What a reply copies from the event it answers: its subject, and its identity as extensions. */
export interface CopiedAttributes {
  subject?: string;
  correlationid: string;
  correlationsource: string;
}

export function copiedAttributes(attributes: Attributes): CopiedAttributes {
  return { subject: attributes.subject, correlationid: attributes.id, correlationsource: attributes.source };
}

const REQUIRED = ['id', 'source', 'specversion', 'type'] as const;
/** Context attributes the spec defines besides the required ones; all are strings. */
const OPTIONAL = new Set(['subject', 'datacontenttype', 'dataschema', 'time']);
const NAME = /^[a-z0-9]+$/;
/** Printable ASCII: safe in an HTTP header as is (no CR/LF, nothing outside Latin-1). */
const PRINTABLE = /^[\x20-\x7e]*$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export function malformed(detail: string): ClientError {
  return new InvalidInput(detail, 'malformed-cloudevent', 'Malformed CloudEvent');
}

/**
 * Checks every attribute of an event, as a transport found it; throws a malformed-cloudevent
 * or unsupported-event-type error.
 */
export function validateAttributes(raw: Record<string, unknown>): Attributes {
  const names = Object.keys(raw);
  const extensions = names.filter((n) => !OPTIONAL.has(n) && !(REQUIRED as readonly string[]).includes(n));
  if (extensions.length > EVENT_LIMITS.extensions) {
    throw malformed(`The event has ${extensions.length} extension attributes; at most ${EVENT_LIMITS.extensions} are accepted.`);
  }
  for (const name of names) checkAttribute(name, raw[name], extensions.includes(name));
  for (const name of REQUIRED) {
    const value = raw[name];
    if (value === undefined || value === null || value === '') {
      throw malformed(`The required attribute "${name}" is missing (a ce-${name} header in binary mode, a "${name}" member in structured mode).`);
    }
  }
  if (raw.specversion !== '1.0') throw malformed(`specversion ${raw.specversion} is not supported; send CloudEvents 1.0.`);
  if (raw.type !== SUBMITTED) {
    throw new InvalidInput(`Event type ${raw.type} is not handled here; send ${SUBMITTED}.`, 'unsupported-event-type', 'Unsupported event type');
  }
  const attributes: Attributes = {
    specversion: '1.0',
    id: raw.id as string,
    source: raw.source as string,
    type: raw.type,
    subject: (raw.subject ?? undefined) as string | undefined,
    datacontenttype: (raw.datacontenttype ?? undefined) as string | undefined,
    model: raw[MODEL_EXTENSION] === undefined || raw[MODEL_EXTENSION] === null ? undefined : String(raw[MODEL_EXTENSION]),
  };
  checkReplyCopies(copiedAttributes(attributes));
  return attributes;
}

/**
 * The SDK validates every reply it builds, and a reply it refuses after the work is done is
 * a 5xx on every delivery (and a broker retries those). So what a reply copies goes through
 * that same validation now, with placeholders for what the reply sets itself.
 */
function checkReplyCopies(copied: CopiedAttributes): void {
  try {
    new CloudEvent({ id: 'check', source: '/check', type: 'check', ...copied });
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    const [first] = (err.errors ?? []) as { instancePath?: string; message?: string }[];
    const where = first?.instancePath ? ` (${first.instancePath.slice(1)}: ${first.message})` : '';
    throw malformed(`A reply cannot carry this event's attributes${where}; send CloudEvents 1.0 attribute values.`);
  }
}

function checkAttribute(name: string, value: unknown, extension: boolean): void {
  if (name.length > EVENT_LIMITS.nameChars || !NAME.test(name)) {
    throw malformed(`Attribute name ${JSON.stringify(name.slice(0, EVENT_LIMITS.nameChars))} is invalid; names are lower-case letters and digits, at most ${EVENT_LIMITS.nameChars}.`);
  }
  if (value === null || value === undefined) return; // the JSON format's way of saying "absent"
  // Extensions may also be booleans or integers in structured mode; everything else is a string.
  if (extension && (typeof value === 'boolean' || (typeof value === 'number' && Number.isInteger(value) && value >= -(2 ** 31) && value < 2 ** 31))) return;
  if (typeof value !== 'string') throw malformed(`Attribute "${name}" must be a string, not ${Array.isArray(value) ? 'an array' : typeof value}.`);
  if (value.length > EVENT_LIMITS.attributeBytes) {
    throw malformed(`Attribute "${name}" is ${value.length} characters long; at most ${EVENT_LIMITS.attributeBytes} bytes are accepted.`);
  }
  if (!PRINTABLE.test(value)) {
    throw malformed(`Attribute "${name}" contains a character outside printable ASCII (a control character, CR/LF or non-ASCII text); percent-encode it.`);
  }
  // The spec: an optional attribute, if present, is a non-empty string (an empty ce-subject
  // header is one that is present).
  if (value === '' && OPTIONAL.has(name)) throw malformed(`Attribute "${name}" is empty; leave it out instead.`);
  // A reply carries values in binary-mode headers, where HTTP drops a leading or trailing space.
  if (value.trim() !== value) throw malformed(`Attribute "${name}" starts or ends with a space, which an HTTP header cannot keep; percent-encode it (%20).`);
}

/**
 * Reads a structured-mode event (the JSON event format): its attributes, validated, and its
 * image from data_base64. A `data` member is JSON, never an image, so it counts as no image.
 */
export function parseStructured(body: Buffer): SubmittedEvent {
  if (jsonValues(body, EVENT_LIMITS.jsonValues) > EVENT_LIMITS.jsonValues) {
    throw malformed(`The structured event has more than ${EVENT_LIMITS.jsonValues} JSON values; an event is a few attributes and data_base64.`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw malformed(`The structured event is not valid JSON: ${(err as Error).message}.`);
  }
  if (Array.isArray(parsed)) throw malformed('Batched events are not accepted; send one event per request.');
  if (typeof parsed !== 'object' || parsed === null) throw malformed('A structured event must be a JSON object.');
  const { data, data_base64: base64, ...attributes } = parsed as Record<string, unknown>;
  if (base64 !== undefined && data !== undefined) throw malformed('The event has both data and data_base64; send one.');
  const validated = validateAttributes(attributes);
  if (base64 === undefined || base64 === null) return { attributes: validated, data: undefined };
  if (typeof base64 !== 'string' || !BASE64.test(base64)) throw malformed('data_base64 must be a base64 string (RFC 4648, no line breaks).');
  return { attributes: validated, data: Buffer.from(base64, 'base64') };
}

/**
 * Counts the places where JSON.parse would create a value (`{`, `[` and `,` outside
 * strings), stopping past `limit`, without building anything. Strings are skipped with
 * indexOf, so the long data_base64 costs almost nothing. Malformed text is left to JSON.parse.
 */
function jsonValues(text: Buffer, limit: number): number {
  let count = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === QUOTE) {
      i = stringEnd(text, i);
    } else if ((c === 0x2c || c === 0x7b || c === 0x5b) && ++count > limit) {
      break;
    }
  }
  return count;
}
