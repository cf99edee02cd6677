// A client that keeps uploading while the server answers early, run in its own process (in
// the test's process, the server's event loop would pace it). Each of `count` uploads sends
// `bytes` to `path`, declared or chunked, as fast as the socket takes it while reading, as
// any HTTP client does. Resolves with the status each upload read before the close (null
// for none): the check that a staged close lets the client read its 413.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const SCRIPT = `
const net = require('node:net');
const [port, chunked, count, bytes] = process.argv.slice(1, 5).map(Number);
const path = process.argv[5];
const block = Buffer.alloc(65536, 0x61);
const frame = chunked ? Buffer.concat([Buffer.from('10000\\r\\n'), block, Buffer.from('\\r\\n')]) : block;
const framing = chunked ? 'transfer-encoding: chunked' : 'content-length: ' + bytes;
const one = () => new Promise((resolve) => {
  const socket = net.connect(port, '127.0.0.1');
  let received = '';
  let sent = 0;
  const deadline = setTimeout(() => socket.destroy(), 20000);
  socket.on('data', (d) => (received += d.toString('latin1')));
  socket.on('error', () => {});
  socket.on('close', () => { clearTimeout(deadline); resolve(Number(received.slice(9, 12)) || null); });
  socket.write('POST ' + path + ' HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\ncontent-type: image/png\\r\\n' + framing + '\\r\\n\\r\\n');
  const pump = () => { while (!socket.destroyed && sent < bytes) { sent += 65536; if (!socket.write(frame)) return void socket.once('drain', pump); } };
  pump();
});
(async () => { const out = []; for (let i = 0; i < count; i++) out.push(await one()); console.log(JSON.stringify(out)); })();
`;

export async function uploadsWhileAnswered(opts: { port: number | string; path: string; bytes: number; chunked: boolean; count: number }): Promise<Array<number | null>> {
  const args = ['-e', SCRIPT, String(opts.port), opts.chunked ? '1' : '0', String(opts.count), String(opts.bytes), opts.path];
  const { stdout } = await promisify(execFile)(process.execPath, args, { timeout: 120_000 });
  return JSON.parse(stdout) as Array<number | null>;
}
