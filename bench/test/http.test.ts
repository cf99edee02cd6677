// The cold-start bench reads the function's own start-up line; this keeps the line the
// function prints and the bench's parser in step.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { pollUntil, ROOT } from '../../test/support.ts';
import { startupMarks } from '../http.ts';

const marks = suite('start-up marks');
let child: ChildProcess | undefined;

marks.after.each(() => {
  child?.kill('SIGKILL');
  child = undefined;
});

marks('parses the timeline line, and ignores other lines', () => {
  const timeline = 'start-up (ms since process start): main module 76, HTTP stack loaded 227, listening 240, first worker warm 309, ready 309';
  const expected = { 'main module': 76, 'HTTP stack loaded': 227, listening: 240, 'first worker warm': 309, ready: 309 };
  const json = (msg: string) => JSON.stringify({ time: '2026-01-01T00:00:00.000Z', level: 'info', msg });
  const log = [json('klassify classify function listening on 127.0.0.1:8080'), json(timeline), json('draining in-flight requests, then exiting')].join('\n');
  assert.equal(startupMarks(log), expected);
  assert.equal(startupMarks(`listening\n${timeline}\nSIGTERM\n`), expected, 'a plain-text line too');
  assert.equal(startupMarks('no such line'), {});
});

marks('the function logs its start-up timeline once ready, in order', async () => {
  const proc = spawn(process.execPath, ['--import', 'tsx', path.join('functions', 'classify', 'src', 'main.ts')], {
    cwd: ROOT,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', KLASSIFY_WORKERS: '1', KLASSIFY_MODEL_CACHE: path.join(ROOT, '.cache/model') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child = proc;
  let log = '';
  proc.stdout!.on('data', (d) => (log += d));
  proc.stderr!.on('data', (d) => (log += d));
  const logged = () => {
    if (proc.exitCode !== null) throw new Error(`the function exited with ${proc.exitCode}: ${log}`);
    return Object.keys(startupMarks(log)).length > 0;
  };
  await pollUntil('the start-up timeline line', logged, { timeoutMs: 120_000, intervalMs: 20 });
  const m = startupMarks(log);
  const order = ['main module', 'HTTP stack loaded', 'listening', 'ready'];
  for (const k of [...order, 'first worker warm', 'decoders ready']) assert.ok(Number.isFinite(m[k]) && m[k] > 0, `${k} in ${log}`);
  for (let i = 1; i < order.length; i++) assert.ok(m[order[i]] >= m[order[i - 1]], `${order[i - 1]} before ${order[i]}: ${JSON.stringify(m)}`);
  assert.ok(m['first worker warm'] <= m.ready, JSON.stringify(m));
  assert.ok(m['decoders ready'] <= m.ready, JSON.stringify(m));
});

marks.run();
