// What every served model takes and returns, in one place: the decoder sizes images by it,
// the pool batches by it, the engines feed and read the graphs by it and the labels table is
// checked against it. The models themselves are described in mobilenet-v1.ts and
// mobilenet-v2.ts, and listed in catalog.ts. Constants only, so any module can import it.

/** Square input, in pixels. */
export const INPUT_SIZE = 224;
/** RGB. */
export const CHANNELS = 3;
/**
 * Bytes of one decoded image, the unit the pool batches in. Every engine takes decoded
 * uint8 bytes, batch first, channels last ([N, 224, 224, 3]).
 */
export const IMAGE_VALUES = INPUT_SIZE * INPUT_SIZE * CHANNELS;

/** Tensor names of every converted ONNX graph (model/convert.ts, model/convert-tflite.ts). */
export const INPUT_NAME = 'input';
export const OUTPUT_NAME = 'probabilities';

/**
 * Softmax outputs per image, [N, 1000], in the order of the ImageNet table that the TF.js
 * MobileNet was published with (imagenet-classes.ts, read through labels.ts). A model with a
 * background class has it dropped by its converter, so that class i means the same in all.
 */
export const CLASS_COUNT = 1000;
