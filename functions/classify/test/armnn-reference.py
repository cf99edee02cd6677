"""Runs a .tflite model with Arm NN's TfLite parser on its portable CpuRef backend.

An independent reference for the TFLite -> ONNX conversion: neither TensorFlow nor klassify
wrote it. Debian: apt-get install python3-pyarmnn libarmnn-cpuref-backend22.

    python3 armnn-reference.py MODEL.tflite PIXELS.bin OUT.bin

PIXELS.bin holds N images of the model's input (uint8 NHWC), back to back. For each image
in turn, every output of the model's subgraph is appended to OUT.bin as raw bytes. Prints
one JSON object describing them: Arm NN's version, the image count and, per output, its
name, shape, numpy dtype, quantization scale and zero point, and bytes per image.
"""
import json
import sys

import numpy as np
import pyarmnn as ann


def main(model_path, pixels_path, out_path):
    parser = ann.ITfLiteParser()
    network = parser.CreateNetworkFromBinaryFile(model_path)
    input_info = parser.GetNetworkInputBindingInfo(0, parser.GetSubgraphInputTensorNames(0)[0])
    output_names = parser.GetSubgraphOutputTensorNames(0)
    output_infos = [parser.GetNetworkOutputBindingInfo(0, name) for name in output_names]

    runtime = ann.IRuntime(ann.CreationOptions())
    optimized, _ = ann.Optimize(network, [ann.BackendId('CpuRef')], runtime.GetDeviceSpec(), ann.OptimizerOptions())
    net_id, _ = runtime.LoadNetwork(optimized)

    info = input_info[1]
    shape = tuple(info.GetShape()[i] for i in range(info.GetNumDimensions()))
    per_image = int(np.prod(shape))
    pixels = np.fromfile(pixels_path, dtype=np.uint8)
    if pixels.size == 0 or pixels.size % per_image:
        raise SystemExit(f'{pixels_path}: {pixels.size} bytes is not a whole number of {shape} images')

    described = []
    with open(out_path, 'wb') as out:
        for image in pixels.reshape((-1,) + shape):
            output_tensors = ann.make_output_tensors(output_infos)
            runtime.EnqueueWorkload(net_id, ann.make_input_tensors([input_info], [image]), output_tensors)
            results = ann.workload_tensors_to_ndarray(output_tensors)
            for result in results:
                out.write(np.ascontiguousarray(result).tobytes())
            if not described:
                described = [{
                    'name': name,
                    'shape': list(result.shape),
                    'dtype': str(result.dtype),
                    'scale': binding[1].GetQuantizationScale(),
                    'zeroPoint': binding[1].GetQuantizationOffset(),
                    'bytes': result.nbytes,
                } for name, binding, result in zip(output_names, output_infos, results)]

    json.dump({'armnn': ann.ARMNN_VERSION, 'images': len(pixels) // per_image, 'outputs': described}, sys.stdout)


if __name__ == '__main__':
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    main(*sys.argv[1:])
