// A Python client (urllib + numpy) calls the V2 routes as tritonclient's HTTP client and
// perf_analyzer do (v2_client.py), against the real server on loopback.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { RunningService } from '../src/server.ts';
import { CAT_LABELS, fixture, requireProgram, startTestService } from '../../../test/support.ts';

const run = promisify(execFile);
const SCRIPT = path.join(import.meta.dirname, 'v2_client.py');
const MODEL = 'mobilenet_v1_0.75_224';

// Debian's python3 with python3-numpy (the pyenv python first on PATH may lack numpy).
const python = requireProgram({
  name: 'Python 3 with numpy',
  env: 'KLASSIFY_PYTHON',
  candidates: ['/usr/bin/python3'],
  install: 'apt-get install -y python3-numpy',
  suite: 'V2 routes from a tritonclient-style Python client',
});

let svc: RunningService;
let dir: string;
const client = suite('V2 routes from a tritonclient-style Python client');
client.before(async () => {
  const { stderr } = await run(python!, ['-c', 'import numpy'], { timeout: 30_000 }).catch((err) => err);
  if (stderr) throw new Error(`${python} cannot import numpy (apt-get install -y python3-numpy): ${stderr}`);
  svc = await startTestService();
  dir = await mkdtemp(path.join(os.tmpdir(), 'klassify-v2-'));
  // perf_analyzer's --input-data: JSON with a b64 BYTES tensor, and a raw file per input.
  const png = Buffer.from(await fixture('chelsea.png'));
  const length = Buffer.alloc(4);
  length.writeUInt32LE(png.length);
  await writeFile(path.join(dir, 'data.json'), JSON.stringify({ data: [{ image: { b64: Buffer.concat([length, png]).toString('base64') } }] }));
  const coffee = await sharp(await fixture('coffee.png')).resize(224, 224, { fit: 'fill' }).removeAlpha().raw().toBuffer();
  await writeFile(path.join(dir, 'pixels'), coffee);
});
client.after(async () => {
  await svc?.shutdown();
  if (dir) await rm(dir, { recursive: true, force: true });
});

client('health, metadata, config, binary and classification inference, gzip, a perf_analyzer batch', async () => {
  const { stdout } = await run(python!, [SCRIPT, svc.url, MODEL, dir], { timeout: 120_000 }).catch((err) => {
    throw new Error(`v2_client.py failed: ${err.stderr || err.message}`);
  });
  const summary = JSON.parse(stdout);
  assert.is(summary.max_batch_size, 8);
  assert.is(summary.image_top1, 285); // Egyptian cat
  assert.is(summary.pixels_top1, 967); // espresso
  assert.is(summary.model_version, '1');
  assert.is(summary.classification.length, 3);
  assert.ok(CAT_LABELS.includes(summary.classification[0].split(':')[2]), summary.classification[0]);
});

if (python) client.run();
