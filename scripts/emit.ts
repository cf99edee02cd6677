// `npm run emit -- <image> [--broker URL | --direct] [--structured] [--subject S]`
// Sends an image as a dev.klassify.image.submitted CloudEvent with the SDK's HTTP emitter.
//
// - default: the local relay of `npm start` (http://127.0.0.1:$RELAY_PORT, 8090), which
//   acknowledges with 202 like a broker, delivers to the function and forwards the reply
//   event to the UI's live feed;
// - --broker URL: a Broker ingress (e.g. through kubectl port-forward), same 202 and feed;
// - --direct: the function itself (http://127.0.0.1:$PORT, 8080); prints its reply event.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CloudEvent, emitterFor, Mode, type Message } from 'cloudevents';
import { encodeSubject, SUBMITTED } from '../contracts/events.ts';

const USAGE = 'usage: npm run emit -- <image> [--broker URL | --direct] [--structured] [--subject S]';

/** Media types by extension; the function sniffs the bytes anyway, this is what it is told. */
const MEDIA_TYPES: Record<string, string> = {
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  gif: 'image/gif',
  avif: 'image/avif',
  tif: 'image/tiff',
  tiff: 'image/tiff',
  svg: 'image/svg+xml',
  bmp: 'image/bmp',
  heic: 'image/heic',
  heif: 'image/heif',
};

function fail(message: string, code = 1): never {
  console.error(message);
  process.exit(code);
}

let parsed;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: {
      broker: { type: 'string' },
      direct: { type: 'boolean', default: false },
      structured: { type: 'boolean', default: false },
      subject: { type: 'string' },
    },
  });
} catch (error) {
  fail(`${(error as Error).message}\n${USAGE}`, 2);
}
const { values, positionals } = parsed;
if (positionals.length !== 1) fail(USAGE, 2);
if (values.broker && values.direct) fail(`--broker and --direct are exclusive\n${USAGE}`, 2);

const file = positionals[0];
const relayUrl = `http://127.0.0.1:${process.env.RELAY_PORT || 8090}/`;
const functionUrl = `http://127.0.0.1:${process.env.PORT || 8080}/`;
const target = values.broker ?? (values.direct ? functionUrl : relayUrl);
const what = values.broker ? 'the broker' : values.direct ? 'the classify function' : 'the local relay';

let data: Buffer;
try {
  data = await readFile(file);
} catch (error) {
  const code = (error as NodeJS.ErrnoException).code;
  fail(code === 'ENOENT' ? `emit: ${file}: no such file` : code === 'EISDIR' ? `emit: ${file} is a folder, not an image` : `emit: cannot read ${file} (${code ?? (error as Error).message})`);
}

const ext = path.extname(file).slice(1).toLowerCase();
const event = new CloudEvent({
  type: SUBMITTED,
  source: '/klassify/emit',
  subject: encodeSubject(values.subject ?? path.basename(file)),
  datacontenttype: MEDIA_TYPES[ext] ?? 'application/octet-stream',
  data,
});

/** The SDK's emitter over fetch, so we also get the HTTP status (its own transport drops it). */
async function transport(message: Message) {
  const res = await fetch(target, { method: 'POST', headers: message.headers as Record<string, string>, body: message.body as string });
  return { status: res.status, headers: Object.fromEntries(res.headers), body: await res.text() };
}

function hint(): string {
  if (values.broker) return `Is the port-forward to the broker running? Check the URL given to --broker.`;
  if (values.direct) return `Start it with \`npm start\` (or set PORT to where it listens).`;
  return `Start it with \`npm start\` (or set RELAY_PORT to where it listens; --direct sends to the function on $PORT, --broker URL to a cluster).`;
}

const emit = emitterFor(transport, { mode: values.structured ? Mode.STRUCTURED : Mode.BINARY });
console.error(`sending ${event.type} id=${event.id} (${values.structured ? 'structured' : 'binary'}, ${event.datacontenttype}) to ${what} at ${target}`);
let reply: { status?: number; headers?: Record<string, string>; body?: unknown } | undefined;
try {
  reply = (await emit(event)) as typeof reply;
} catch (error) {
  const cause = (error as { cause?: NodeJS.ErrnoException }).cause;
  if (cause?.code === 'ECONNREFUSED') fail(`emit: nothing listens at ${target}. ${hint()}`);
  fail(`emit: could not send to ${target}: ${cause?.code ?? cause?.message ?? (error as Error).message}. ${hint()}`);
}
const status = reply?.status ?? 0;
const ce = Object.fromEntries(Object.entries(reply?.headers ?? {}).filter(([k]) => k.startsWith('ce-')));
console.log(JSON.stringify({ status, replyEvent: Object.keys(ce).length ? ce : null, data: parse(reply?.body) }, null, 2));
if (status === 202 && !values.direct) {
  console.error(`accepted by ${what}: the result appears in the UI's live feed${values.broker ? '' : ` (http://localhost:${process.env.UI_PORT || 3000})`}`);
}
process.exit(status >= 200 && status < 300 ? 0 : 1);

function parse(body: unknown) {
  if (typeof body !== 'string' || !body) return body ?? null;
  try {
    return JSON.parse(body);
  } catch {
    return body;
  }
}
