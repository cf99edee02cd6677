// `npm run bench -- --only=v2`: what the Open Inference Protocol costs over /classify, on
// the same photo (the 800×533 load-test JPEG) and the same server, side by side: /classify
// with the raw JPEG, V2 JSON (the JPEG base64 in a BYTES tensor) and V2 binary (the JPEG as
// binary tensor data), with hey, the order rotating within each round. Then the batch
// sizes: one V2 binary request of N copies of the photo, for the latency per request and
// per image that max_batch_size trades.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ROOT } from '../test/support.ts';
import { hey, startServer, type HeyRequest } from './http.ts';
import { loadImagePath } from './load-image.ts';
import { progress } from './cli.ts';
import { closedLoop, loadAverage, median, percentile, rotated, round } from './stats.ts';

const MODEL = 'mobilenet_v1_0.75_224';
const INFER = `/v2/models/${MODEL}/infer`;

/** A V2 binary body: the JSON header, then N copies of the image as BYTES elements. */
function binaryBody(image: Buffer, n: number): { body: Buffer; headerLength: number } {
  const element = Buffer.concat([Buffer.from(new Uint32Array([image.length]).buffer), image]);
  const json = Buffer.from(JSON.stringify({ inputs: [{ name: 'image', datatype: 'BYTES', shape: [n], parameters: { binary_data_size: element.length * n } }], parameters: { binary_data_output: true } }));
  return { body: Buffer.concat([json, ...Array(n).fill(element)]), headerLength: json.length };
}

export async function runV2(quick: boolean) {
  const seconds = quick ? 2 : 5;
  const repeats = quick ? 1 : 3;
  const levels = [1, 4];
  const jpeg = await loadImagePath();
  const image = await readFile(jpeg);
  const dir = path.join(ROOT, '.cache/bench-v2');
  await mkdir(dir, { recursive: true });
  const json = path.join(dir, 'json.json');
  await writeFile(json, JSON.stringify({ inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], data: [image.toString('base64')] }] }));
  const single = binaryBody(image, 1);
  const binary = path.join(dir, 'binary-1.bin');
  await writeFile(binary, single.body);
  const SIDES: Record<string, [string, HeyRequest]> = {
    '/classify': [jpeg, {}],
    'V2 JSON': [json, { path: INFER, contentType: 'application/json' }],
    'V2 binary': [binary, { path: INFER, contentType: 'application/octet-stream', headers: { 'Inference-Header-Content-Length': String(single.headerLength) } }],
  };
  const names = Object.keys(SIDES);
  const batches = [1, 2, 4, 8, 16];
  const server = await startServer({ KLASSIFY_V2_MAX_BATCH: String(Math.max(...batches)) });
  const groups: Array<{ c: number; load: string; sides: Record<string, { rps: number; p50: number; p99: number; non200: number }> }> = [];
  const batchRuns: Array<{ n: number; c: number; p50: number; imagesPerSecond: number; load: string }> = [];
  try {
    for (const [body, request] of Object.values(SIDES)) await hey(server.url, body, 2, 1, request); // warm-up
    let turn = 0;
    for (let r = 0; r < repeats; r++) {
      for (const c of levels) {
        const group: (typeof groups)[number] = { c, load: '', sides: {} };
        for (const name of rotated(names, turn)) {
          progress(`v2 round ${r + 1}/${repeats}: ${name}, ${c} client(s)`);
          const h = await hey(server.url, SIDES[name][0], c, seconds, SIDES[name][1]);
          const ok = h.statusCodes['200'] ?? 0;
          group.sides[name] = { rps: ok / h.seconds, p50: h.latencyMs.p50 ?? NaN, p99: h.latencyMs.p99 ?? NaN, non200: h.requests - ok };
        }
        turn++;
        group.load = await loadAverage();
        groups.push(group);
      }
      for (const n of batches) {
        for (const c of [1, 4]) {
          progress(`v2 round ${r + 1}/${repeats}: batch of ${n}, ${c} client(s)`);
          const { body, headerLength } = binaryBody(image, n);
          const send = async () => {
            const res = await fetch(server.url + INFER, { method: 'POST', body: Uint8Array.from(body), headers: { 'inference-header-content-length': String(headerLength) } });
            await res.arrayBuffer();
            if (res.status !== 200) throw new Error(`batch of ${n}: HTTP ${res.status}`);
          };
          const { rps, latencies } = await closedLoop(send, c, seconds);
          batchRuns.push({ n, c, p50: percentile(latencies, 50), imagesPerSecond: rps * n, load: await loadAverage() });
        }
      }
    }
  } finally {
    await server.stop();
  }
  const rows = levels.map((c) => {
    const at = groups.filter((g) => g.c === c);
    const med = (name: string, key: 'rps' | 'p50' | 'p99') => round(median(at.map((g) => g.sides[name][key])));
    return {
      concurrency: c,
      ...Object.fromEntries(names.map((name) => [name, { rps: med(name, 'rps'), p50: med(name, 'p50'), p99: med(name, 'p99') }])),
      // Within each round, then the median: the machine's load drifts between rounds.
      jsonOverClassifyP50: round(median(at.map((g) => g.sides['V2 JSON'].p50 / g.sides['/classify'].p50)), 3),
      binaryOverClassifyP50: round(median(at.map((g) => g.sides['V2 binary'].p50 / g.sides['/classify'].p50)), 3),
      jsonOverClassifyRps: round(median(at.map((g) => g.sides['V2 JSON'].rps / g.sides['/classify'].rps)), 3),
      binaryOverClassifyRps: round(median(at.map((g) => g.sides['V2 binary'].rps / g.sides['/classify'].rps)), 3),
      non200: at.reduce((sum, g) => sum + Object.values(g.sides).reduce((s, v) => s + v.non200, 0), 0),
    };
  });
  const batchRows = batches.flatMap((n) =>
    [1, 4].map((c) => {
      const at = batchRuns.filter((b) => b.n === n && b.c === c);
      return { n, concurrency: c, p50: round(median(at.map((b) => b.p50))), p50PerImage: round(median(at.map((b) => b.p50 / n)), 2), imagesPerSecond: round(median(at.map((b) => b.imagesPerSecond))) };
    }),
  );
  return { image: { path: path.relative(ROOT, jpeg), bytes: image.length }, rows, batchRows, groups, batchRuns, load: await loadAverage() };
}
