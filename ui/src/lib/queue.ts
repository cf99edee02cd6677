/**
 * A FIFO queue that runs at most `concurrency` async tasks at a time.
 *
 * The page pushes one task per image; with 20 dropped photos only 4 uploads
 * are in flight, so the first results come back quickly and the function's
 * autoscaler sees a steady load instead of a burst.
 */

export type Task = () => Promise<unknown>;

export interface UploadQueue {
  /** Adds a task; it starts at once when a slot is free. */
  push(task: Task): void;
  /** Drops tasks that have not started yet; returns how many were dropped. */
  clear(): number;
  /** Resolves when nothing is running and nothing is waiting. */
  onIdle(): Promise<void>;
  readonly active: number;
  readonly pending: number;
}

export interface QueueOptions {
  concurrency: number;
  /** Called with whatever a task threw; a failing task never stalls the queue. */
  onError?: (error: unknown) => void;
}

export function createQueue({ concurrency, onError = reportError }: QueueOptions): UploadQueue {
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);
  }
  const waiting: Task[] = [];
  let active = 0;
  let idleWaiters: Array<() => void> = [];

  function settleIdle() {
    if (active === 0 && waiting.length === 0) {
      const waiters = idleWaiters;
      idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  function pump() {
    while (active < concurrency && waiting.length > 0) {
      const task = waiting.shift() as Task;
      active += 1;
      run(task);
    }
    settleIdle();
  }

  async function run(task: Task) {
    try {
      await task();
    } catch (error) {
      onError(error);
    } finally {
      active -= 1;
      pump();
    }
  }

  return {
    push(task) {
      waiting.push(task);
      pump();
    },
    clear() {
      const dropped = waiting.length;
      waiting.length = 0;
      settleIdle();
      return dropped;
    },
    onIdle() {
      if (active === 0 && waiting.length === 0) return Promise.resolve();
      return new Promise((resolve) => idleWaiters.push(resolve));
    },
    get active() {
      return active;
    },
    get pending() {
      return waiting.length;
    },
  };
}

function reportError(error: unknown) {
  console.error('upload task failed', error);
}
