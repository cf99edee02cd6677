// `npm run emit -- <image> [--direct | --broker URL] [--structured] [--subject S] [--json]`
// Sends an image as a dev.klassify.image.submitted CloudEvent with the SDK's HTTP emitter,
// and says in one line what became of it.
//
// - default: the local relay of `npm start`, found with its per-run token in
//   .cache/relay.json. It delivers to the function, forwards the reply to the UI's live feed,
//   and tells emit the outcome: classified, rejected, or dead-lettered;
// - --direct: the function itself (http://127.0.0.1:$PORT, 8080); prints its reply;
// - --broker URL: a Broker ingress (e.g. through kubectl port-forward): accepted or not.
//
// The file is checked before it is read: a regular file, not empty, and within the
// function's body limit (KLASSIFY_BODY_LIMIT, 10 MiB), so /dev/zero, a FIFO or a folder is
// refused at once instead of read without end.
import { constants } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { CloudEvent, emitterFor, Mode, type Message } from 'cloudevents';
import { CLASSIFIED, encodeSubject, REJECTED, SUBMITTED } from '../contracts/events.ts';
import { relayInfoFile, type Outcome, type RelayInfo } from './relay.ts';

const USAGE = 'usage: npm run emit -- <image> [--direct | --broker URL] [--structured] [--subject S] [--json]';
const ROOT = path.resolve(import.meta.dirname, '..');
const MiB = 1024 * 1024;
/** Longer than the relay's three delivery attempts take. */
const SEND_TIMEOUT_MS = 200_000;

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

/** A problem for the person at the terminal: one line, no stack. */
class Stop extends Error {
  constructor(
    message: string,
    readonly code = 1,
  ) {
    super(message);
  }
}

interface Target {
  kind: 'relay' | 'function' | 'broker';
  url: string;
  /** Where the result shows, when emit knows. */
  feed?: string;
}

/** The image's bytes, after checking what the path is: never an unbounded read. */
async function readImage(file: string, limit: number): Promise<Buffer> {
  let handle;
  try {
    // Non-blocking, so opening a FIFO with no writer returns at once and fstat can refuse it.
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new Stop(`emit: ${file}: no such file`);
    if (code === 'EACCES') throw new Stop(`emit: ${file}: permission denied`);
    throw new Stop(`emit: cannot open ${file} (${code ?? (error as Error).message})`);
  }
  try {
    const stat = await handle.stat();
    if (stat.isDirectory()) throw new Stop(`emit: ${file} is a folder, not an image`);
    if (!stat.isFile()) throw new Stop(`emit: ${file} is not a regular file (a device, FIFO or socket); give an image file`);
    if (stat.size > limit) {
      throw new Stop(`emit: ${file} is ${stat.size} bytes; the function takes at most ${limit} (KLASSIFY_BODY_LIMIT). Shrink it first, e.g. to 1024 px on the long side.`);
    }
    // Read at most one byte more than fstat said, to notice a file that grows meanwhile.
    const buffer = Buffer.alloc(Math.min(limit, stat.size) + 1);
    let size = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, size, buffer.length - size, size);
      size += bytesRead;
      if (bytesRead === 0 || size === buffer.length) break;
    }
    if (size > stat.size) throw new Stop(`emit: ${file} grew while it was read; give a finished file`);
    if (size === 0) throw new Stop(`emit: ${file} is empty; give an image file`);
    return buffer.subarray(0, size);
  } finally {
    await handle.close();
  }
}

/** The local relay's URL (with its token) from the file `npm start` writes. */
async function relayTarget(env: Env): Promise<Target> {
  const file = env.KLASSIFY_RELAY_FILE || relayInfoFile(ROOT);
  let info: RelayInfo;
  try {
    info = JSON.parse(await readFile(file, 'utf8')) as RelayInfo;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Stop(`emit: no local relay is running (${path.relative(ROOT, file) || file} is missing). Start one with \`npm start\`, or send with --direct (to the function) or --broker URL (to a cluster).`);
    }
    throw new Stop(`emit: cannot read ${file} (${(error as Error).message}); restart \`npm start\``);
  }
  if (typeof info?.url !== 'string') throw new Stop(`emit: ${file} holds no relay URL; restart \`npm start\``);
  const url = new URL(info.url);
  url.searchParams.set('wait', '1'); // the relay answers once it knows what became of the event
  return { kind: 'relay', url: url.href, feed: info.ui };
}

function brokerTarget(text: string): Target {
  try {
    const url = new URL(text);
    if (url.protocol === 'http:' || url.protocol === 'https:') return { kind: 'broker', url: url.href };
  } catch {
    // reported below
  }
  throw new Stop(`emit: --broker needs an http(s) URL, such as http://localhost:8081/klassify/default; got ${JSON.stringify(text)}`, 2);
}

/** The target's URL without the relay's token: what emit prints may end up in a log. */
const shownUrl = (target: Target) => target.url.replace(/\/[\w-]{32,}(\?.*)?$/, '/…');

function where(target: Target): string {
  return { relay: 'the local relay', function: 'the classify function', broker: 'the broker' }[target.kind] + ` at ${shownUrl(target)}`;
}

function hint(target: Target): string {
  if (target.kind === 'broker') return 'Is the port-forward to the broker running? Check the URL given to --broker.';
  if (target.kind === 'function') return 'Start it with `npm start` (or set PORT to where it listens).';
  return 'Is `npm start` still running? Start it again (it writes a fresh .cache/relay.json), or send with --direct.';
}

interface Reply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** The SDK's emitter over fetch, so we also get the HTTP status (its own transport drops it). */
async function send(event: CloudEvent<Buffer>, target: Target, structured: boolean): Promise<Reply> {
  const transport = async (message: Message) => {
    const res = await fetch(target.url, {
      method: 'POST',
      headers: message.headers as Record<string, string>,
      body: message.body as string,
      signal: AbortSignal.timeout(SEND_TIMEOUT_MS),
    });
    return { status: res.status, headers: Object.fromEntries(res.headers), body: await res.text() };
  };
  try {
    return (await emitterFor(transport, { mode: structured ? Mode.STRUCTURED : Mode.BINARY })(event)) as Reply;
  } catch (error) {
    const cause = (error as { cause?: NodeJS.ErrnoException }).cause;
    if (cause?.code === 'ECONNREFUSED') throw new Stop(`emit: nothing listens at ${shownUrl(target)}. ${hint(target)}`);
    if ((error as Error).name === 'TimeoutError') throw new Stop(`emit: no answer from ${where(target)} within ${SEND_TIMEOUT_MS / 1000} s. ${hint(target)}`);
    throw new Stop(`emit: could not send to ${where(target)}: ${cause?.code ?? cause?.message ?? (error as Error).message}. ${hint(target)}`);
  }
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** "Egyptian cat (54.1 %)" from a classification, or undefined. */
function topLabel(data: unknown): string | undefined {
  const top = (data as { predictions?: Array<{ label?: unknown; probability?: unknown }> })?.predictions?.[0];
  if (typeof top?.label !== 'string') return undefined;
  return typeof top.probability === 'number' ? `${top.label} (${(top.probability * 100).toFixed(1)} %)` : top.label;
}

/** "Unsupported image format (415): …" from a problem, or its status alone. */
function problemLine(data: unknown, status?: number): string {
  const problem = data as { title?: unknown; status?: unknown; detail?: unknown } | undefined;
  const code = typeof problem?.status === 'number' ? problem.status : status;
  if (typeof problem?.title !== 'string') return code ? `HTTP ${code}` : 'no answer';
  return `${problem.title}${code ? ` (${code})` : ''}${typeof problem.detail === 'string' ? `: ${problem.detail}` : ''}`;
}

/** What became of the event, in words, and whether it was classified. */
function describe(subject: string, target: Target, reply: Reply): { line: string; ok: boolean } {
  const feed = target.feed ? `; the UI's live feed (${target.feed}) shows it` : '';
  if (target.kind === 'relay') {
    if (reply.status !== 202) return { line: `refused by ${where(target)}: ${problemLine(parse(reply.body), reply.status)}. ${reply.status === 404 ? hint(target) : ''}`.trim(), ok: false };
    const outcome = parse(reply.body) as Outcome | undefined;
    if (outcome?.outcome === 'delivered') {
      const { reply: event } = outcome;
      if (event?.type === CLASSIFIED) return { line: `classified ${subject}: ${topLabel(event.data) ?? 'no label'}, delivered by the local relay${feed}`, ok: true };
      if (event?.type === REJECTED) return { line: `rejected ${subject}: ${problemLine(event.data)}${feed}`, ok: false };
      return { line: `delivered ${subject} (${event?.type ?? 'no reply event'})${feed}`, ok: true };
    }
    if (outcome?.outcome === 'dead-lettered') {
      const why = outcome.status
        ? `the function answered ${problemLine(outcome.problem, outcome.status)}`
        : `the function did not answer (${outcome.error ?? 'no answer'}); is it running?`;
      return { line: `dead-lettered ${subject} after ${outcome.attempts} attempt${outcome.attempts === 1 ? '' : 's'}: ${why}${target.feed ? `; the feed (${target.feed}) shows a "failed" row` : ''}`, ok: false };
    }
    if (outcome?.outcome === 'dropped') return { line: `dropped ${subject}: ${outcome.reason}`, ok: false };
    return { line: `accepted by ${where(target)}, outcome unknown`, ok: true };
  }
  if (target.kind === 'broker') {
    if (reply.status >= 200 && reply.status < 300) {
      return { line: `accepted by ${where(target)} (${reply.status}): the classify Trigger delivers it to the function; the result, or a "failed" row, appears in the UI's live feed`, ok: true };
    }
    return { line: `refused by ${where(target)}: ${problemLine(parse(reply.body), reply.status)}`, ok: false };
  }
  const type = reply.headers['ce-type'];
  const data = parse(reply.body);
  if (reply.status === 200 && type === CLASSIFIED) return { line: `classified ${subject}: ${topLabel(data) ?? 'no label'} (--direct: the feed does not see it)`, ok: true };
  if (reply.status === 200 && type === REJECTED) return { line: `rejected ${subject}: ${problemLine(data)}`, ok: false };
  return { line: `refused by ${where(target)}: ${problemLine(data, reply.status)}`, ok: false };
}

type Env = Record<string, string | undefined>;

/** Where emit writes: its one line to `log`, what it sends and problems to `error`. */
export interface Output {
  log(line: string): void;
  error(line: string): void;
}

/** Runs `npm run emit` with these arguments; resolves with the exit status. */
export async function emit(args: string[], env: Env = process.env, out: Output = console): Promise<number> {
  try {
    return await run(args, env, out);
  } catch (error) {
    out.error(error instanceof Stop ? error.message : `emit: ${(error as Error).message}`);
    return error instanceof Stop ? error.code : 1;
  }
}

async function run(args: string[], env: Env, out: Output): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        broker: { type: 'string' },
        direct: { type: 'boolean', default: false },
        structured: { type: 'boolean', default: false },
        subject: { type: 'string' },
        json: { type: 'boolean', default: false },
      },
    });
  } catch (error) {
    throw new Stop(`emit: ${(error as Error).message}\n${USAGE}`, 2);
  }
  const { values, positionals } = parsed;
  if (positionals.length !== 1) throw new Stop(USAGE, 2);
  if (values.broker !== undefined && values.direct) throw new Stop(`emit: --broker and --direct are exclusive\n${USAGE}`, 2);
  const file = positionals[0];
  const subject = values.subject ?? path.basename(file);
  if (subject.trim() === '') throw new Stop('emit: --subject is empty; give the name the feed should show, or leave it out to use the file name', 2);
  const encoded = encodeSubject(subject);
  if (encoded.length > 1024) throw new Stop(`emit: the subject takes ${encoded.length} characters once percent-encoded; the function takes at most 1024`, 2);
  const limitText = env.KLASSIFY_BODY_LIMIT?.trim();
  const limit = limitText ? Number(limitText) : 10 * MiB;
  if (!Number.isInteger(limit) || limit <= 0) throw new Stop(`emit: KLASSIFY_BODY_LIMIT=${JSON.stringify(limitText)} is not a byte count`, 2);

  const data = await readImage(file, limit);
  const target: Target =
    values.broker !== undefined
      ? brokerTarget(values.broker)
      : values.direct
        ? { kind: 'function', url: `http://127.0.0.1:${env.PORT || 8080}/` }
        : await relayTarget(env);
  const event = new CloudEvent({
    type: SUBMITTED,
    source: '/klassify/emit',
    subject: encoded,
    datacontenttype: MEDIA_TYPES[path.extname(file).slice(1).toLowerCase()] ?? 'application/octet-stream',
    data,
  });
  out.error(`sending ${path.basename(file)} (${data.length} bytes) as ${event.type} id=${event.id} to ${where(target)}`);
  const reply = await send(event, target, values.structured);
  const { line, ok } = describe(subject, target, reply);
  out.log(line);
  if (values.json) out.log(JSON.stringify({ status: reply.status, ceType: reply.headers['ce-type'] ?? null, body: parse(reply.body) ?? reply.body }));
  return ok ? 0 : 1;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) process.exitCode = await emit(process.argv.slice(2));
