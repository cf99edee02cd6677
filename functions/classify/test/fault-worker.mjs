// A stand-in inference worker for the pool's failure paths. It speaks the real worker's
// message protocol (src/worker.ts) and misbehaves on purpose:
// - at start, per KLASSIFY_FAULT_WORKER_START: "ok", "fail" (throws) or "exit" (exits 0);
// - per job, by the first byte of the batch: 1 throws, 2 hangs (a busy loop), 3 exits with
//   code 0, 4 exits with code 3, 5 answers after 200 ms, 6 after 1 s; anything else answers
//   at once;
// - on 'close', per KLASSIFY_FAULT_WORKER_CLOSE: "ok" exits, "ignore" stays up.
import { parentPort } from 'node:worker_threads';

const CLASS_COUNT = 1000;
const start = process.env.KLASSIFY_FAULT_WORKER_START ?? 'ok';
if (start === 'fail') throw new Error('fault worker: failing at start on purpose');
if (start === 'exit') process.exit(0);

// Like the real worker, it hands the batch's input buffer back for the pool to reuse.
const answer = (job) => {
  const output = new Float32Array(job.batch * CLASS_COUNT).fill(1 / CLASS_COUNT);
  parentPort.postMessage({ type: 'result', output, inferenceMs: 0, rgb: job.rgb }, [output.buffer, job.rgb.buffer]);
};

parentPort.on('message', (job) => {
  if (job === 'close') {
    if (process.env.KLASSIFY_FAULT_WORKER_CLOSE !== 'ignore') parentPort.close();
    else setInterval(() => {}, 1000); // keeps the thread up until it is terminated
    return;
  }
  switch (job.rgb[0]) {
    case 1:
      throw new Error('fault worker: crashing on purpose');
    case 2:
      for (;;); // hangs until terminated
    case 3:
      process.exit(0);
    case 4:
      process.exit(3);
    case 5:
      return void setTimeout(() => answer(job), 200);
    case 6:
      return void setTimeout(() => answer(job), 1000);
    default:
      answer(job);
  }
});
parentPort.postMessage({ type: 'ready', provider: 'fault' });
