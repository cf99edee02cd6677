// A stand-in decoder process for the pool's failure paths that a real image cannot cause
// on demand. It speaks the real process's protocol (src/decoder-process.ts) and misbehaves
// on purpose:
// - at start, per KLASSIFY_FAULT_DECODER_START: "ok", or "exit" (exits with code 3 before
//   it is ready);
// - per task, by the first byte of the image: 1 exits with code 3 (a codec crash), 2 answers
//   after 400 ms; for a one-step 'decode', 3 answers with the header alone (the decode did
//   not fit), and 4 reads the header for 800 ms, says its decode starts, and never ends it;
//   anything else answers at once (a 1×1 header; pixels of 255 when the image came with the
//   task, 128 when the process already held it).
const start = process.env.KLASSIFY_FAULT_DECODER_START ?? 'ok';
if (start === 'exit') process.exit(3);

const HEADER = { width: 1, height: 1, displayWidth: 1, displayHeight: 1, channels: 3, depth: 'uchar', srgb: true };
let input;
process.on('message', (msg) => {
  if (msg.bytes) input = msg.bytes;
  const pixels = () => new Uint8Array(224 * 224 * 3).fill(msg.bytes ? 255 : 128);
  const answer = () => {
    const value = msg.op === 'header' ? HEADER : msg.op === 'pixels' ? pixels() : input[0] === 3 ? { header: HEADER } : { header: HEADER, rgb: pixels() };
    process.send({ type: 'done', id: msg.id, value });
  };
  if (input[0] === 1) process.exit(3);
  else if (input[0] === 2) setTimeout(answer, 400);
  else if (input[0] === 4 && msg.op === 'decode') setTimeout(() => process.send({ type: 'decoding', id: msg.id, memoryBytes: msg.memoryBytes }), 800);
  else answer();
});
process.on('disconnect', () => process.exit(0));
process.send({ type: 'ready' });
