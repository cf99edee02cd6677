import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { EXIT_CANNOT_START } from '../../../server-kit/exit.ts';
import { builtUi, freePort, ROOT, waitForPort } from '../support.ts';
import { openSse } from '../sse.ts';

function run(env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join('ui', 'server', 'main.ts')], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exit, output: () => output };
}

const main = suite('ui server process');
main('honours $PORT, and SIGTERM closes event streams and exits 0', async () => {
  const { publicDir } = await builtUi();
  const port = await freePort();
  const proc = run({ PORT: String(port), HOST: '127.0.0.1', UI_PUBLIC_DIR: publicDir });
  try {
    await waitForPort(port, { timeoutMs: 10_000, child: proc.child }).catch((err) => assert.unreachable(`${err.message}\n${proc.output()}`));
    const stream = await openSse(`http://127.0.0.1:${port}/events/stream`);
    await stream.next();
    proc.child.kill('SIGTERM');
    await stream.ended;
    assert.is(await proc.exit, 0);
    assert.match(proc.output(), /"msg":"ui stopped"/);
  } finally {
    proc.child.kill('SIGKILL');
  }
});
main('an invalid environment fails fast with every problem listed', async () => {
  const proc = run({ PORT: 'x', UI_MAX_ATTEMPTS: '99' });
  assert.is(await proc.exit, EXIT_CANNOT_START);
  // One JSON line, as every log line, with each invalid variable in the shared form.
  const lines = proc.output().trim().split('\n');
  assert.is(lines.length, 1, proc.output());
  const entry = JSON.parse(lines[0]);
  assert.is(entry.level, 'error');
  assert.is(entry.msg, 'cannot start: invalid configuration');
  assert.equal(entry.problems, [
    'PORT="x" is invalid; valid values: an integer from 0 to 65535 (default 3000).',
    'UI_MAX_ATTEMPTS="99" is invalid; valid values: an integer from 1 to 10 (default 4).',
  ]);
});
main.run();
