// ImageNet class names in model output order (imagenet-classes.ts, the table the TF.js
// MobileNet was published with). Tests pin its checksum and a few indices.
import type { Prediction } from '../../../contracts/classification.ts';
import { IMAGENET_CLASSES } from './imagenet-classes.ts';
import { CLASS_COUNT } from './model/mobilenet.ts';

if (IMAGENET_CLASSES.length !== CLASS_COUNT) {
  throw new Error(`imagenet-classes.ts has ${IMAGENET_CLASSES.length} names for a model with ${CLASS_COUNT} classes`);
}

/** Full names ("tabby, tabby cat"), indexed by class. */
export const CLASS_NAMES: readonly string[] = Object.freeze(
  Array.from({ length: CLASS_COUNT }, (_, i) => IMAGENET_CLASSES[i]),
);

/** The first synonym ("tabby"), which is what people want to read. */
export const LABELS: readonly string[] = Object.freeze(CLASS_NAMES.map((n) => n.split(',')[0].trim()));

/** The k most probable classes, most probable first. */
export function topK(probabilities: Float32Array, k: number): Prediction[] {
  const best: number[] = [];
  // Insertion into a short sorted list: O(1000·k), cheaper than sorting 1000 for small k.
  for (let i = 0; i < probabilities.length; i++) {
    const p = probabilities[i];
    if (best.length === k && p <= probabilities[best[k - 1]]) continue;
    let j = Math.min(best.length, k - 1);
    while (j > 0 && probabilities[best[j - 1]] < p) j--;
    best.splice(j, 0, i);
    if (best.length > k) best.pop();
  }
  return best.map((i) => ({ label: LABELS[i], classIndex: i, probability: probabilities[i] }));
}
