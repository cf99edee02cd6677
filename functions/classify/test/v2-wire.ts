// A client's side of Triton's binary tensor data extension, written from its document
// (docs/protocol/extension_binary_data.md in triton-inference-server/server), apart from
// the server's codec: the tests hold the server to this reading of the document.
//   - The body is the JSON object, then each binary tensor in input (or output) order.
//   - Inference-Header-Content-Length gives the JSON's length; Content-Length the body's.
//   - A tensor's bytes are little-endian, row-major; its size is `binary_data_size`.
//   - A BYTES element is a 4-byte unsigned little-endian length, then that many bytes.

/** BYTES elements as binary tensor data. */
export function bytesTensor(elements: Uint8Array[]): Buffer {
  return Buffer.concat(
    elements.flatMap((element) => {
      const length = Buffer.alloc(4);
      length.writeUInt32LE(element.length, 0);
      return [length, Buffer.from(element)];
    }),
  );
}

/** The elements of a BYTES tensor's binary data, checking it holds exactly `count`. */
export function readBytesTensor(data: Buffer, count: number): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  while (at < data.length) {
    const length = data.readUInt32LE(at);
    out.push(data.subarray(at + 4, at + 4 + length));
    at += 4 + length;
  }
  if (at !== data.length || out.length !== count) throw new Error(`BYTES tensor: ${out.length} elements in ${data.length} bytes, expected ${count}`);
  return out;
}

export function readFp32Tensor(data: Buffer): Float32Array {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return Float32Array.from({ length: data.length / 4 }, (_, i) => view.getFloat32(i * 4, true));
}

/**
 * An inference request whose inputs are binary: each input of `header.inputs` gets its
 * `binary_data_size` from the buffer at the same index of `tensors`.
 */
export function binaryRequest(header: { inputs: Array<Record<string, unknown>>; [k: string]: unknown }, tensors: Buffer[]) {
  const inputs = header.inputs.map((input, i) => ({ ...input, parameters: { ...(input.parameters as object), binary_data_size: tensors[i].length } }));
  const json = Buffer.from(JSON.stringify({ ...header, inputs }));
  return { body: Buffer.concat([json, ...tensors]), headers: { 'inference-header-content-length': String(json.length), 'content-type': 'application/octet-stream' } };
}

export interface DecodedOutput {
  name: string;
  datatype: string;
  shape: number[];
  parameters?: Record<string, unknown>;
  /** JSON data as sent, or binary data decoded (numbers for FP32, strings for BYTES). */
  data: Array<number | string>;
}

/**
 * A response body as JSON, or as JSON then binary outputs when the response carries
 * Inference-Header-Content-Length. Binary outputs get their data decoded into `data`, so
 * the result is the $inference_response the JSON form would have been.
 */
export function decodeResponse(body: Buffer, headerLength: string | null): { json: Record<string, any>; outputs: DecodedOutput[]; binary: boolean } {
  const length = headerLength === null ? body.length : Number(headerLength);
  const json = JSON.parse(body.subarray(0, length).toString('utf8'));
  let at = length;
  const outputs = (json.outputs as DecodedOutput[]).map((output) => {
    const size = output.parameters?.binary_data_size as number | undefined;
    if (size === undefined) return output;
    const data = body.subarray(at, at + size);
    at += size;
    const count = output.shape.reduce((a, b) => a * b, 1);
    const values = output.datatype === 'BYTES' ? readBytesTensor(data, count).map((b) => b.toString('utf8')) : Array.from(readFp32Tensor(data));
    const { binary_data_size: _, ...parameters } = output.parameters ?? {};
    return { ...output, parameters, data: values };
  });
  if (at !== body.length) throw new Error(`${body.length - at} bytes after the binary outputs`);
  return { json: { ...json, outputs: outputs.map(({ parameters, ...o }) => (parameters && Object.keys(parameters).length ? { ...o, parameters } : o)) }, outputs, binary: headerLength !== null };
}
