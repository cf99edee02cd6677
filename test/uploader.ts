// A client that keeps uploading while the server answers early, run in its own process (in
// the test's process, the server's event loop would pace it, and its buffers would count in
// the test's RSS). Each of `count` uploads sends `bytes` to `path`, declared or chunked, as
// fast as the socket takes it while reading, as any HTTP client does; one after another, or
// all at once with `parallel`. Resolves with the status each upload read (null for none): the
// check that a staged close lets the client read its 413.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const SCRIPT = `
const net = require('node:net');
const [port, chunked, count, bytes, parallel] = process.argv.slice(1, 6).map(Number);
const path = process.argv[6];
const extra = Object.entries(JSON.parse(process.argv[7])).map(([k, v]) => k + ': ' + v + '\\r\\n').join('');
const block = Buffer.alloc(65536, 0x61);
const frame = chunked ? Buffer.concat([Buffer.from('10000\\r\\n'), block, Buffer.from('\\r\\n')]) : block;
const framing = chunked ? 'transfer-encoding: chunked' : 'content-length: ' + bytes;
const one = () => new Promise((resolve) => {
  const socket = net.connect(port, '127.0.0.1');
  let received = '';
  let sent = 0;
  const deadline = setTimeout(() => socket.destroy(), 20000);
  // The status line is all that is wanted: once the head is in, the upload is over.
  socket.on('data', (d) => { received += d.toString('latin1'); if (received.includes('\\r\\n\\r\\n')) socket.destroy(); });
  socket.on('error', () => {});
  socket.on('close', () => { clearTimeout(deadline); resolve(Number(received.slice(9, 12)) || null); });
  socket.write('POST ' + path + ' HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\ncontent-type: image/png\\r\\n' + extra + framing + '\\r\\n\\r\\n');
  const pump = () => {
    while (!socket.destroyed && sent < bytes) { sent += 65536; if (!socket.write(frame)) return void socket.once('drain', pump); }
    if (chunked && !socket.destroyed) socket.write('0\\r\\n\\r\\n');
  };
  pump();
});
(async () => {
  const out = [];
  if (parallel) out.push(...(await Promise.all(Array.from({ length: count }, one))));
  else for (let i = 0; i < count; i++) out.push(await one());
  console.log(JSON.stringify(out));
})();
`;

export interface Uploads {
  port: number | string;
  path: string;
  bytes: number;
  chunked: boolean;
  count: number;
  /** All at once instead of one after another. */
  parallel?: boolean;
  /** Added to each request's head, after content-type: image/png (a content-type here would be a second one). */
  headers?: Record<string, string>;
}

export async function uploadsWhileAnswered(opts: Uploads): Promise<Array<number | null>> {
  const flags = [opts.chunked, opts.count, opts.bytes, opts.parallel ?? false].map(Number).map(String);
  const args = ['-e', SCRIPT, String(opts.port), ...flags, opts.path, JSON.stringify(opts.headers ?? {})];
  const { stdout } = await promisify(execFile)(process.execPath, args, { timeout: 120_000 });
  return JSON.parse(stdout) as Array<number | null>;
}
