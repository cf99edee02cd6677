// What the served model is, in one place: the converter builds its graph from these facts,
// the engines feed and read it by them, the decoder sizes images for it and the labels table
// is checked against it. Constants only, so any module can import it without loading a
// runtime or the downloader.

/** Names the files in the cache and the mirror, and every classification's `model`. */
export const MODEL_NAME = 'mobilenet_v1_0.75_224';
export const MODEL_TITLE = 'MobileNet v1 0.75/224';

/** Square input, in pixels. */
export const INPUT_SIZE = 224;
/** RGB. */
export const CHANNELS = 3;
/**
 * Bytes of one decoded image, the unit the pool batches in. Every engine takes decoded
 * uint8 bytes, batch first, channels last ([N, 224, 224, 3]).
 */
export const IMAGE_VALUES = INPUT_SIZE * INPUT_SIZE * CHANNELS;

/** Tensor names of the converted ONNX graph (model/convert.ts). */
export const INPUT_NAME = 'input';
export const OUTPUT_NAME = 'probabilities';

/**
 * The network's input range, as the published tfjs-models/mobilenet scales it:
 * out = in * scale + offset = in / 127.5 - 1, so bytes 0…255 become -1…1. The converter
 * writes it into the graph (Cast, Mul, Add); the tfjs engine applies it itself.
 */
export const NORMALIZE = Object.freeze({ scale: 1 / 127.5, offset: -1 });

/**
 * Softmax outputs per image, [N, 1000], in the order of the ImageNet table that the TF.js
 * MobileNet was published with (imagenet-classes.ts, read through labels.ts).
 */
export const CLASS_COUNT = 1000;
