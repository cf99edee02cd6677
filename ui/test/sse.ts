// A minimal Server-Sent Events reader for tests: frames as they arrive.
import http from 'node:http';

export interface SseFrame {
  id?: string;
  event?: string;
  data?: string;
  comment?: string;
  retry?: number;
}

export interface SseStream {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** Resolves with the next frame, or rejects after timeoutMs. */
  next(timeoutMs?: number): Promise<SseFrame>;
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  close(): void;
}

export function openSse(url: string, headers: Record<string, string> = {}): Promise<SseStream> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { Accept: 'text/event-stream', ...headers }, agent: false }, (res) => {
      const frames: SseFrame[] = [];
      const waiters: Array<(frame: SseFrame) => void> = [];
      let buffer = '';
      let endResolve!: () => void;
      const ended = new Promise<void>((r) => (endResolve = r));
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let index: number;
        while ((index = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, index);
          buffer = buffer.slice(index + 2);
          const frame: SseFrame = {};
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) frame.comment = line.slice(1).trim();
            else {
              const colon = line.indexOf(':');
              const field = line.slice(0, colon);
              const value = line.slice(colon + 1).replace(/^ /, '');
              if (field === 'data') frame.data = frame.data === undefined ? value : `${frame.data}\n${value}`;
              else if (field === 'id') frame.id = value;
              else if (field === 'event') frame.event = value;
              else if (field === 'retry') frame.retry = Number(value);
            }
          }
          const waiter = waiters.shift();
          if (waiter) waiter(frame);
          else frames.push(frame);
        }
      });
      res.on('end', endResolve);
      res.on('close', endResolve);
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        ended,
        next(timeoutMs = 2000) {
          const queued = frames.shift();
          if (queued) return Promise.resolve(queued);
          return new Promise((resolveFrame, rejectFrame) => {
            const timer = setTimeout(() => rejectFrame(new Error('no SSE frame in time')), timeoutMs);
            waiters.push((frame) => {
              clearTimeout(timer);
              resolveFrame(frame);
            });
          });
        },
        close: () => req.destroy(),
      });
    });
    req.on('error', reject);
  });
}
