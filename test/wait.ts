// Waiting on something another process or socket does, when there is no event to sync on.
// A test that can sync on an event (a promise, 'close', 'exit', an SSE frame) does that
// instead: polling is for state it can only look at.
import { connect } from 'node:net';
import type { ChildProcess } from 'node:child_process';

export interface PollOptions {
  /** Fail after this long (default 10 s). */
  timeoutMs?: number;
  /** Between two checks (default 10 ms). */
  intervalMs?: number;
}

/**
 * Calls `check` until it returns a truthy value, and returns that value. After timeoutMs it
 * fails, naming `what` and the last value seen. An error thrown by `check` fails at once.
 */
export async function pollUntil<T>(what: string, check: () => T | Promise<T>, { timeoutMs = 10_000, intervalMs = 10 }: PollOptions = {}): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${String(value)})`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * Resolves once something accepts TCP connections on host:port. Fails after timeoutMs, or
 * as soon as `child` (the process expected to listen) has exited.
 */
export async function waitForPort(port: number, { host = '127.0.0.1', timeoutMs = 30_000, child }: { host?: string; timeoutMs?: number; child?: ChildProcess } = {}): Promise<void> {
  await pollUntil(`${host}:${port} to accept connections`, async () => {
    if (child && (child.exitCode !== null || child.signalCode !== null)) {
      throw new Error(`the process expected on ${host}:${port} exited (${child.exitCode ?? child.signalCode}) before listening`);
    }
    return accepts(port, host);
  }, { timeoutMs, intervalMs: 50 });
}

function accepts(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, host);
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => (socket.destroy(), resolve(false)));
  });
}

/**
 * Resolves or rejects as `promise` does, or rejects naming `what` if it has not settled
 * within `ms`: a case fails instead of hanging on an event that never comes.
 */
export function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
