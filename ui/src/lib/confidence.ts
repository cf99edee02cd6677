/**
 * How sure the model is, said honestly. MobileNet's softmax spreads over 1000
 * classes: a top-1 under ~30 % is a guess among near neighbours, and rows under
 * 1 % are noise that would only crowd the card. Pure: unit-tested in Node.
 */

export const UNSURE_BELOW = 0.3;
export const MINOR_BELOW = 0.01;

export interface Ranked<P> {
  /** Shown as rows: the top one always, then every one of at least 1 %. */
  main: P[];
  /** Collapsed under "N more under 1 %". */
  minor: P[];
  /** The top one is below UNSURE_BELOW. */
  unsure: boolean;
}

export function rankPredictions<P extends { probability: number }>(predictions: readonly P[]): Ranked<P> {
  const main: P[] = [];
  const minor: P[] = [];
  predictions.forEach((prediction, index) => {
    (index === 0 || prediction.probability >= MINOR_BELOW ? main : minor).push(prediction);
  });
  return { main, minor, unsure: predictions.length === 0 || predictions[0].probability < UNSURE_BELOW };
}
