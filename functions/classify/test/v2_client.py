"""Calls klassify's Open Inference Protocol routes as tritonclient's HTTP client and
perf_analyzer do (their documentation and request formats), with urllib and numpy only.

    python3 v2_client.py URL MODEL INPUT_DIR

INPUT_DIR holds what perf_analyzer's --input-data takes: `data.json`, real input data with
an encoded image as {"b64": ...} of the length-prefixed BYTES tensor, and `pixels`, the raw
batch-1 bytes of the UINT8 input (the directory form). Prints a JSON summary; exits non-zero
with the reason on the first failed check.
"""

import base64
import gzip
import json
import struct
import sys
import urllib.error
import urllib.request
from urllib.parse import quote

import numpy as np

URL, MODEL, INPUT_DIR = sys.argv[1], sys.argv[2], sys.argv[3]


def request(method, path, body=None, headers=None):
    req = urllib.request.Request(f"{URL}/{path}", data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as res:
            return res.status, dict(res.headers), res.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def check(condition, message):
    if not condition:
        sys.exit(f"check failed: {message}")


def serialize_bytes(elements):
    """tritonclient.utils.serialize_byte_tensor: each element a 4-byte LE length, then its bytes."""
    return b"".join(struct.pack("<I", len(e)) + e for e in elements)


def deserialize_bytes(data):
    out, at = [], 0
    while at < len(data):
        (length,) = struct.unpack_from("<I", data, at)
        out.append(data[at + 4 : at + 4 + length])
        at += 4 + length
    return out


def infer(inputs, outputs=None, compress=False, extra_headers=None):
    """tritonclient.http: JSON request, binary inputs after it, Inference-Header-Content-Length."""
    body = {"inputs": [], "parameters": {}}
    tail = []
    for name, datatype, shape, data in inputs:
        body["inputs"].append({"name": name, "shape": list(shape), "datatype": datatype, "parameters": {"binary_data_size": len(data)}})
        tail.append(data)
    if outputs:
        body["outputs"] = outputs
    else:
        # No outputs given: all come back as binary (tritonclient and perf_analyzer both).
        body["parameters"]["binary_data_output"] = True
    head = json.dumps(body).encode()
    payload = head + b"".join(tail)
    headers = {"Inference-Header-Content-Length": str(len(head)), **(extra_headers or {})}
    if compress:
        payload = gzip.compress(payload)
        headers["Content-Encoding"] = "gzip"
    status, res_headers, raw = request("POST", f"v2/models/{quote(MODEL)}/infer", payload, headers)
    check(status == 200, f"infer answered {status}: {raw[:300]!r}")
    return parse_result(res_headers, raw)


def parse_result(headers, raw):
    """tritonclient.http.InferResult: the JSON header, then binary outputs by binary_data_size."""
    lowered = {k.lower(): v for k, v in headers.items()}
    length = lowered.get("inference-header-content-length")
    if length is None:
        result = json.loads(raw)
        return {o["name"]: (o, None) for o in result["outputs"]}, result
    length = int(length)
    result = json.loads(raw[:length])
    at, tensors = length, {}
    for output in result["outputs"]:
        size = output.get("parameters", {}).get("binary_data_size")
        tensors[output["name"]] = (output, raw[at : at + size] if size is not None else None)
        at += size or 0
    check(at == len(raw), "binary outputs fill the body")
    return tensors, result


def as_numpy(tensors, name):
    output, data = tensors[name]
    if data is None:
        return np.array(output["data"], dtype=np.object_ if output["datatype"] == "BYTES" else np.float32).reshape(output["shape"])
    if output["datatype"] == "BYTES":
        return np.array(deserialize_bytes(data), dtype=np.object_).reshape(output["shape"])
    return np.frombuffer(data, dtype="<f4").reshape(output["shape"])


def main():
    summary = {}
    # Health, metadata and configuration, as tritonclient and perf_analyzer ask for them.
    for path in ("v2/health/live", "v2/health/ready", f"v2/models/{quote(MODEL)}/ready", f"v2/models/{quote(MODEL)}/versions/1/ready"):
        status, _, _ = request("GET", path)
        check(status == 200, f"{path} answered {status}")
    status, _, raw = request("GET", f"v2/models/{quote(MODEL)}")
    metadata = json.loads(raw)
    check(metadata["name"] == MODEL, "metadata names the model")
    status, _, raw = request("GET", f"v2/models/{quote(MODEL)}/config")
    config = json.loads(raw)
    max_batch = config["max_batch_size"]
    check(max_batch > 0, "the model batches")
    optional = {i["name"]: i.get("optional", False) for i in config["input"]}
    check(all(optional[i["name"]] for i in metadata["inputs"]), "every input is optional: a request sends one")
    # perf_analyzer drops the batch dimension from the metadata shapes when max_batch_size > 0.
    shapes = {i["name"]: i["shape"][1:] for i in metadata["inputs"]}
    summary["max_batch_size"] = max_batch

    # tritonclient: an encoded image as BYTES, output as binary, then as top-3 classification.
    with open(f"{INPUT_DIR}/data.json") as f:
        entry = json.load(f)["data"][0]["image"]
    image_tensor = base64.b64decode(entry["b64"])
    (image,) = deserialize_bytes(image_tensor)
    tensors, result = infer([("image", "BYTES", [1], image_tensor)], [{"name": "probabilities", "parameters": {"binary_data": True}}])
    probabilities = as_numpy(tensors, "probabilities")
    check(probabilities.shape == (1, 1000), f"probabilities shape {probabilities.shape}")
    check(abs(float(probabilities.sum()) - 1) < 1e-3, "softmax sums to 1")
    summary["image_top1"] = int(probabilities[0].argmax())
    summary["model_version"] = result.get("model_version")
    tensors, _ = infer([("image", "BYTES", [1], serialize_bytes([image]))], [{"name": "probabilities", "parameters": {"classification": 3, "binary_data": True}}])
    classes = as_numpy(tensors, "probabilities")
    check(classes.shape == (1, 3), f"classification shape {classes.shape}")
    value, index, label = classes[0][0].decode().split(":", 2)
    check(int(index) == summary["image_top1"], "classification's best is the probabilities' argmax")
    check(abs(float(value) - float(probabilities[0][int(index)])) < 1e-6, "classification value is the probability")
    summary["classification"] = [c.decode() for c in classes[0]]
    # tritonclient's request_compression_algorithm="gzip".
    tensors, _ = infer([("image", "BYTES", [1], serialize_bytes([image]))], compress=True)
    check(np.allclose(as_numpy(tensors, "probabilities"), probabilities, atol=1e-6), "a gzip request gives the same answer")

    # perf_analyzer: a batch of max_batch_size from a raw batch-1 file, sent as
    # application/octet-stream (its curl client removes Expect), outputs binary by default.
    with open(f"{INPUT_DIR}/pixels", "rb") as f:
        one = f.read()
    check(len(one) == int(np.prod(shapes["pixels"])), "the pixels file is one image")
    batch = np.frombuffer(one * max_batch, dtype=np.uint8).reshape([max_batch] + shapes["pixels"])
    tensors, _ = infer([("pixels", "UINT8", batch.shape, batch.tobytes())], extra_headers={"Content-Type": "application/octet-stream"})
    rows = as_numpy(tensors, "probabilities")
    check(rows.shape == (max_batch, 1000), f"batch shape {rows.shape}")
    check(bool(np.all(rows == rows[0])), "every row of a batch of one image is the same")
    summary["pixels_top1"] = int(rows[0].argmax())

    # Past max_batch_size, and with an unknown model: errors as {"error": ...}, 4xx.
    over = np.frombuffer(one * (max_batch + 1), dtype=np.uint8)
    head = json.dumps({"inputs": [{"name": "pixels", "datatype": "UINT8", "shape": [max_batch + 1] + shapes["pixels"], "parameters": {"binary_data_size": over.size}}]}).encode()
    status, _, raw = request("POST", f"v2/models/{quote(MODEL)}/infer", head + over.tobytes(), {"Inference-Header-Content-Length": str(len(head))})
    check(status == 400 and "error" in json.loads(raw), f"a batch over max_batch_size answered {status}")
    status, _, raw = request("GET", "v2/models/nonexistent")
    check(400 <= status < 500 and "error" in json.loads(raw), f"an unknown model answered {status}")
    print(json.dumps(summary))


main()
