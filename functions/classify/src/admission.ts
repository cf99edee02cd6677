// Admission: how many requests the function takes at once (KLASSIFY_QUEUE_SIZE), and how
// many slow uploads one client may have among them (KLASSIFY_MAX_UPLOADS_PER_CLIENT).
//
// A place is taken before the body is read, so a flood is refused before it costs memory.
// A body sent at the minimum rate holds its place until the body deadline (120 s), so one
// client with 32 such uploads could hold every place. So each client's uploads (requests
// whose body is still arriving) are counted, and once its oldest upload has been arriving
// for longer than SLOW_UPLOAD_MS, the client may have at most its share of them: the next
// is refused at once, and those past the share are cut, newest first. A load test or a
// broker, however many requests it sends at once, reads each body in milliseconds and
// never reaches its share. Who a client is comes from server-kit/client-address.ts.
//
// What this does not stop: a client that resets each upload before it turns slow and opens
// another at once. That is a flood of connections (dozens a second to hold every place),
// for a rate limit in front of the pod.
import { Overloaded, TooManyUploads } from './errors.ts';

/** A client whose oldest upload has been arriving for longer than this is held to its share. */
export const SLOW_UPLOAD_MS = 1000;

export interface AdmissionLimits {
  queueSize: number;
  maxUploadsPerClient: number;
  /** For the drain estimate in Overloaded's Retry-After. */
  workers: number;
}

/** One admitted request. */
export interface Ticket {
  /** The body has been read: the request no longer counts as an upload. */
  bodyRead(): void;
  /** The request is done, however it ended (idempotent). */
  release(): void;
}

interface Upload {
  started: number;
  /** Ends the body read with the error, which the request answers. */
  cut(err: TooManyUploads): void;
}

export class Admission {
  private admitted = 0;
  /** Uploads in progress per client key, oldest first. */
  private readonly uploads = new Map<string, Set<Upload>>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly limits: AdmissionLimits,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get inFlight(): number {
    return this.admitted;
  }

  /**
   * Reserves a place for a request from `client` whose body is about to be read, or throws
   * TooManyUploads (this client has its share of slow uploads) or Overloaded (every place
   * is taken). `cut` is called if the upload must be stopped later.
   */
  admit(client: string, cut: (err: TooManyUploads) => void): Ticket {
    if (this.slow(client) && this.uploads.get(client)!.size >= this.limits.maxUploadsPerClient) throw this.tooMany();
    if (this.admitted >= this.limits.queueSize) {
      // A rough drain estimate: what is admitted, spread over the workers, at ~50 ms each.
      throw new Overloaded(Math.max(1, Math.ceil((this.admitted / this.limits.workers) * 0.05)));
    }
    this.admitted++;
    const upload: Upload = { started: this.now(), cut };
    const mine = this.uploads.get(client) ?? new Set<Upload>();
    this.uploads.set(client, mine.add(upload));
    this.timer ??= setInterval(() => this.cutExcess(), SLOW_UPLOAD_MS / 4).unref();
    let reading = true;
    let released = false;
    const bodyRead = () => {
      if (!reading) return;
      reading = false;
      mine.delete(upload);
      if (mine.size === 0 && this.uploads.get(client) === mine) this.uploads.delete(client);
      if (this.uploads.size === 0) this.stopTimer();
    };
    return {
      bodyRead,
      release: () => {
        if (released) return;
        released = true;
        bodyRead();
        this.admitted--;
      },
    };
  }

  /** Stops the timer; uploads still open are released by their requests. */
  close(): void {
    this.stopTimer();
  }

  /** Cuts the newest uploads past the share of each slow client. Runs on a timer; exposed for tests. */
  cutExcess(): void {
    for (const [client, mine] of this.uploads) {
      if (!this.slow(client)) continue;
      for (const upload of [...mine].slice(this.limits.maxUploadsPerClient)) {
        mine.delete(upload); // cut once; its place is released when its request ends
        upload.cut(this.tooMany());
      }
    }
  }

  /** Whether the client's oldest upload has been arriving for longer than SLOW_UPLOAD_MS. */
  private slow(client: string): boolean {
    const [oldest] = this.uploads.get(client) ?? [];
    return oldest !== undefined && this.now() - oldest.started > SLOW_UPLOAD_MS;
  }

  private tooMany(): TooManyUploads {
    return new TooManyUploads(this.limits.maxUploadsPerClient, SLOW_UPLOAD_MS);
  }

  private stopTimer(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
