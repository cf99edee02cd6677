// `node bench/ort-graphs.mjs <model.onnx>…`: times ONNX Runtime alone on each graph (batch 1,
// one intra-op thread, 8 interleaved rounds of 20 runs; median and best ms per run), feeding
// uint8 or float32 as each graph's input asks. For comparing graphs in one process, e.g. the
// float-input and uint8-input fp32 models in .cache/model, without the engine or the pool.
import ort from 'onnxruntime-node';

const files = process.argv.slice(2);
if (!files.length) throw new Error('usage: node bench/ort-graphs.mjs <model.onnx>…');
const sessions = [];
for (const file of files) {
  // A name with ".ort-" is ONNX Runtime's own optimised graph: load it as it is.
  const session = await ort.InferenceSession.create(file, {
    intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: file.includes('.ort-') ? 'disabled' : 'all',
  });
  const meta = session.inputMetadata[0];
  const shape = meta.shape.map((d) => (typeof d === 'number' && d > 0 ? d : 1));
  const n = shape.reduce((a, b) => a * b, 1);
  const input = meta.type === 'uint8'
    ? new ort.Tensor('uint8', new Uint8Array(n).fill(100), shape)
    : new ort.Tensor('float32', new Float32Array(n).fill(0.1), shape);
  sessions.push({ file, session, feed: { [session.inputNames[0]]: input }, type: meta.type, ms: [] });
}
for (let round = 0; round < 8; round++) {
  for (const s of sessions) {
    for (let i = 0; i < 3; i++) await s.session.run(s.feed);
    const t0 = performance.now();
    for (let i = 0; i < 20; i++) await s.session.run(s.feed);
    s.ms.push((performance.now() - t0) / 20);
  }
}
for (const s of sessions) {
  const ms = [...s.ms].sort((a, b) => a - b);
  console.log(`${s.file.split('/').pop()} (${s.type} input): median ${ms[ms.length >> 1].toFixed(2)} ms, best ${ms[0].toFixed(2)} ms`);
  await s.session.release();
}
