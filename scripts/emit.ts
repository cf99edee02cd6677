// `npm run emit -- <image> [--broker URL] [--structured] [--subject S]`
// Sends an image as a dev.klassify.image.submitted CloudEvent with the SDK's HTTP emitter
// and prints the reply. Default target: the local function (npm start). A broker ingress
// (through kubectl port-forward) acknowledges with 202 and no reply: the result goes back
// into the Broker and on to the UI's feed.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CloudEvent, emitterFor, Mode, type Message } from 'cloudevents';
import { SUBMITTED } from '../functions/classify/src/events/validate.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    broker: { type: 'string' },
    structured: { type: 'boolean', default: false },
    subject: { type: 'string' },
  },
});
if (positionals.length !== 1) {
  console.error('usage: npm run emit -- <image> [--broker URL] [--structured] [--subject S]');
  process.exit(2);
}
const file = positionals[0];
const target = values.broker ?? `http://127.0.0.1:${process.env.PORT || 8080}/`;
const ext = path.extname(file).slice(1).toLowerCase();
const event = new CloudEvent({
  type: SUBMITTED,
  source: '/klassify/emit',
  subject: percentEncode(values.subject ?? path.basename(file)),
  datacontenttype: `image/${ext === 'jpg' ? 'jpeg' : ext || 'octet-stream'}`,
  data: await readFile(file),
});
/** The SDK's emitter over fetch, so we also get the HTTP status (its own transport drops it). */
async function transport(message: Message) {
  const res = await fetch(target, { method: 'POST', headers: message.headers as Record<string, string>, body: message.body as string });
  return { status: res.status, headers: Object.fromEntries(res.headers), body: await res.text() };
}
const emit = emitterFor(transport, { mode: values.structured ? Mode.STRUCTURED : Mode.BINARY });
console.error(`sending ${event.type} id=${event.id} (${values.structured ? 'structured' : 'binary'}) to ${target}`);
try {
  const reply = (await emit(event)) as { status?: number; headers?: Record<string, string>; body?: unknown } | undefined;
  const status = reply?.status ?? 0;
  const ce = Object.fromEntries(Object.entries(reply?.headers ?? {}).filter(([k]) => k.startsWith('ce-')));
  console.log(JSON.stringify({ status, replyEvent: Object.keys(ce).length ? ce : null, data: parse(reply?.body) }, null, 2));
  process.exit(status >= 200 && status < 300 ? 0 : 1);
} catch (err) {
  console.error(`emit failed: ${(err as Error).message}`);
  process.exit(1);
}

/**
 * The function accepts printable ASCII attributes only, as the CloudEvents HTTP binding has
 * senders percent-encode the rest (and space, `"` and `%`): `café.jpg` → `caf%C3%A9.jpg`.
 */
function percentEncode(value: string): string {
  return value.replace(/[^\x21\x23\x24\x26-\x7e]/gu, (c) => encodeURIComponent(c));
}

function parse(body: unknown) {
  if (typeof body !== 'string' || !body) return body ?? null;
  try {
    return JSON.parse(body);
  } catch {
    return body;
  }
}
