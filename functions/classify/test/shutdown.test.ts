// SIGTERM while the function is still starting: Knative stops pods that never became ready
// (a rollout replaced them, a node drains). Its inference workers are still creating their
// ONNX Runtime sessions then, and its decoder processes are still warming up; ending a
// worker thread in the middle of that aborted the whole process ("terminate called after
// throwing an instance of 'Napi::Error'", exit 134), and a decoder whose server had gone
// threw ERR_IPC_CHANNEL_CLOSED.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { prepareModel } from '../src/model/prepare.ts';
import { ROOT, testConfig, within } from '../../../test/support.ts';

const ROUNDS = 3;
const early = suite<{ child?: ChildProcess }>('SIGTERM during start-up');

early.before(async () => {
  // The models are converted once here, so each start below only loads them.
  const config = testConfig();
  for (const model of config.models) await prepareModel(model, config);
});
early.after.each((ctx) => {
  ctx.child?.kill('SIGKILL');
});

early(`stopped as soon as it listens, with its workers still loading, it exits 0 and cleanly (${ROUNDS} rounds)`, async (ctx) => {
  for (let round = 1; round <= ROUNDS; round++) {
    const child = spawn(process.execPath, ['--import', 'tsx', 'functions/classify/src/main.ts'], {
      cwd: ROOT,
      env: { ...process.env, PORT: '0', HOST: '127.0.0.1', KLASSIFY_WORKERS: '3', KLASSIFY_MODEL_FETCH: 'never', KLASSIFY_MODEL_CACHE: testConfig().modelCacheDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    ctx.child = child;
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk));
    const lines: string[] = [];
    const listening = new Promise<void>((resolve) =>
      createInterface({ input: child.stdout! }).on('line', (line) => {
        lines.push(line);
        if (line.includes('listening on')) resolve();
      }),
    );
    await within(60_000, `round ${round}: listening`, listening);
    // Three workers load one after another's start; at "listening" none has reported ready.
    const readyBefore = lines.some((line) => line.includes('start-up (ms since process start)'));
    child.kill('SIGTERM');
    const [code, signal] = await within(30_000, `round ${round}: exit after SIGTERM`, exited);
    assert.not.ok(readyBefore, `round ${round}: the signal came before the function was ready`);
    assert.equal([code, signal], [0, null], `round ${round}: exit code\n${stderr}`);
    assert.not.match(stderr, /terminate called|Napi::Error|ERR_IPC_CHANNEL_CLOSED|Unhandled/, `round ${round}: stderr\n${stderr}`);
  }
});

early.run();
