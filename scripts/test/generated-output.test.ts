// Benchmarks and load tests write only where git does not look: a run leaves a clone with
// nothing to commit. This runs a one-second load test (scripts/load-test.sh, with hey) in a
// committed copy of the repository, against a loopback stand-in for the function.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { copyClone } from '../../test/clone.ts';
import { requireProgram } from '../../test/programs.ts';

const git = (cwd: string, ...args: string[]) => {
  const result = spawnSync('git', ['-c', 'user.name=test', '-c', 'user.email=test@example.invalid', ...args], { cwd, encoding: 'utf8' });
  assert.is(result.status, 0, `git ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
};

const HEY = requireProgram({
  name: 'hey',
  candidates: ['hey'],
  install: 'Install it with `apt-get install -y hey`.',
  suite: 'generated output stays out of git',
});
if (HEY) {
  const output = suite<{ dir: string; server: http.Server }>('generated output stays out of git');
  output.before(async (ctx) => {
    ctx.dir = mkdtempSync(path.join(tmpdir(), 'klassify-clean-'));
    copyClone(ctx.dir);
    git(ctx.dir, 'init', '-q');
    git(ctx.dir, 'add', '-A');
    git(ctx.dir, 'commit', '-q', '-m', 'clone');
    ctx.server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"predictions":[]}'));
    });
    await new Promise<void>((resolve) => ctx.server.listen(0, '127.0.0.1', resolve));
  });
  output.after(async (ctx) => {
    ctx.server?.closeAllConnections();
    await new Promise((resolve) => ctx.server?.close(resolve) ?? resolve(null));
    rmSync(ctx.dir, { recursive: true, force: true });
  });

  output('a load test writes its results under bench/results/, and git status stays empty', async ({ dir, server }) => {
    assert.is(git(dir, 'status', '--porcelain'), '', 'the copy starts clean');
    const image = path.join(dir, '.cache', 'body.jpg');
    mkdirSync(path.dirname(image), { recursive: true });
    writeFileSync(image, Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0x10]));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/classify`;
    // Not spawnSync: the stand-in answers from this process's event loop.
    const run = spawn('bash', ['scripts/load-test.sh', '--url', url, '--levels', '1', '--duration', '1s', '--pause', '0', '--image', image], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 60_000,
    });
    let said = '';
    run.stdout.on('data', (chunk: Buffer) => (said += chunk));
    run.stderr.on('data', (chunk: Buffer) => (said += chunk));
    const code = await new Promise((resolve) => run.once('close', resolve));
    assert.is(code, 0, said);
    const results = readdirSync(path.join(dir, 'bench/results'));
    assert.is(results.length, 1, `one run: ${results.join(', ')}`);
    assert.ok(readdirSync(path.join(dir, 'bench/results', results[0])).includes('results.json'), 'the run wrote its report');
    assert.is(git(dir, 'status', '--porcelain', '--untracked-files=all'), '');
  });
  output.run();
}
