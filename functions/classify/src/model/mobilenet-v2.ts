// MobileNet v2 1.0/224, quantised by Google with quantization-aware training and published
// as a TFLite file: everything that is particular to this model, in one place. Constants
// only, so any module can import it.
import { MODEL_TITLES } from '../../../../contracts/models.ts';

/** The name in the cache, the mirror and every answer's `model`. */
export const MODEL_NAME = 'mobilenet_v2_1.0_224_quant' satisfies keyof typeof MODEL_TITLES;

/**
 * google-coral/test_data at 104342d2 (2021-07-26, Apache-2.0): the Coral team's MLIR
 * re-conversion of the TF1 slim model, with TFLite metadata.
 */
const BASE_URL = 'https://raw.githubusercontent.com/google-coral/test_data/104342d2d3480b3e66203073dac24f4e2dbb4c41/';

export const MOBILENET_V2 = Object.freeze({
  name: MODEL_NAME,
  title: MODEL_TITLES[MODEL_NAME],
  baseUrl: BASE_URL,
  file: 'mobilenet_v2_1.0_224_quant.tflite',
  sha256: Object.freeze({
    'mobilenet_v2_1.0_224_quant.tflite': '7aad0c74c5e3c06e5eb3c827e13304fdd68a83da6087d92ee169c24ff9fd4776',
  }) as Readonly<Record<string, string>>,
  mirrorLayout: `${MODEL_NAME}/mobilenet_v2_1.0_224_quant.tflite`,
  /**
   * Input `input`: uint8 [1,224,224,3], RGB, scale 1/128 and zero point 128, so the real
   * value is q/128 - 1: the decoded bytes are the quantised input as they are (v1 scales
   * the same bytes to x/127.5 - 1; 255 becomes 0.992 here, 1 there).
   */
  input: Object.freeze({ scale: 1 / 128, zeroPoint: 128 }),
  /** Output: 1001 classes, of which index 0 is "background"; 1…1000 are ImageNet's 0…999. */
  dropClasses: 1,
  /**
   * ImageNet validation top-1 in 8 bits, from its publishers: 70.8 % (71.8 % in float), Table 1
   * of tensorflow r1.15 contrib/quantize/README.md.
   */
  publishedTop1: 70.8,
  /** Integer weights and activations, as published. */
  precisions: ['int8'] as const,
  /** The engines that can run it: ONNX Runtime only (TF.js cannot read TFLite). */
  engines: ['onnx'] as const,
});

/**
 * Files beside it in the same release, which the tests use but the server does not: the
 * labels (1001 lines, "background" first), checked against our class table, and Google's
 * TF2 post-training-quantised build (int8, per-channel weights), converted and checked
 * against Arm NN to show that the converter is not tied to one file. It is not served: no
 * accuracy is published for it, and one v2 is enough to choose from.
 */
export const MOBILENET_V2_EXTRAS = Object.freeze({
  baseUrl: BASE_URL,
  labels: 'imagenet_labels.txt',
  tf2Ptq: 'tf2_mobilenet_v2_1.0_224_ptq.tflite',
  sha256: Object.freeze({
    'imagenet_labels.txt': 'b8aaeb5630c62626a7d124a05c0e14230a7ffdd2136a31d0190a4fb71c1d82f1',
    'tf2_mobilenet_v2_1.0_224_ptq.tflite': '5d3137241276e79c86d14a74fe43581398ae0e815191d3dba45495b810840e8c',
  }) as Readonly<Record<string, string>>,
});
