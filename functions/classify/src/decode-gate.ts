// A semaphore weighted by bytes, so that concurrent decodes cannot add up past a memory
// budget however each one passed its own limit, and capped in count, so that waiting
// happens here, where a client that has gone can still be dropped, rather than in libuv's
// queue, where a job always runs.
//
// Waiters are served in arrival order, except that one that fits in what is free goes
// ahead of a larger one that does not yet fit: a phone photo does not wait behind a
// 150 MB decode. A large waiter still gets its turn, because admission bounds how many
// requests exist and each decode ends within its time budget.
import { ClientClosed } from './errors.ts';

interface Waiter {
  bytes: number;
  grant: () => void;
}

export class DecodeGate {
  private usedBytes = 0;
  private running = 0;
  private waiters: Waiter[] = [];

  constructor(
    readonly capacityBytes: number,
    readonly maxConcurrent: number,
  ) {}

  get inUse(): { bytes: number; decodes: number; waiting: number } {
    return { bytes: this.usedBytes, decodes: this.running, waiting: this.waiters.length };
  }

  /**
   * Resolves with a release function once `bytes` fit (clamped to the capacity, so that an
   * image the per-image limit allows is never refused here). Rejects with ClientClosed if
   * `signal` aborts first.
   */
  acquire(bytes: number, signal?: AbortSignal): Promise<() => void> {
    const weight = Math.min(Math.max(0, bytes), this.capacityBytes);
    if (signal?.aborted) return Promise.reject(new ClientClosed());
    if (this.fits(weight)) return Promise.resolve(this.take(weight));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        bytes: weight,
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve(this.take(weight));
        },
      };
      const onAbort = () => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new ClientClosed());
        this.drain(); // a large waiter leaving may let smaller ones behind it through
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  private fits(bytes: number): boolean {
    return this.running < this.maxConcurrent && this.usedBytes + bytes <= this.capacityBytes;
  }

  private take(bytes: number): () => void {
    this.usedBytes += bytes;
    this.running++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.usedBytes -= bytes;
      this.running--;
      this.drain();
    };
  }

  private drain(): void {
    for (let i = 0; i < this.waiters.length && this.running < this.maxConcurrent; ) {
      const waiter = this.waiters[i];
      if (this.fits(waiter.bytes)) {
        this.waiters.splice(i, 1);
        waiter.grant();
      } else {
        i++;
      }
    }
  }
}
