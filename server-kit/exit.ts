/**
 * How a server that cannot start says so. Both servers exit with EXIT_CANNOT_START
 * (EX_CONFIG from sysexits.h) when start-up fails, whatever the cause: an invalid setting,
 * a missing model, a port in use. Any other non-zero status is a crash after start-up.
 * A CrashLoopBackOff with exit code 78 tells an operator to read the pod's last
 * log line rather than look for a bug.
 */
import { ConfigError } from './config.ts';
import type { Fields, Logger } from './log.ts';

export const EXIT_CANNOT_START = 78;

/**
 * The one log line that explains a failed start-up. An `expected` error (one that names its
 * own fix, such as a missing model) is shown by its message alone; anything else keeps its
 * stack, since it is a bug.
 */
export function startFailure(err: unknown, expected: (err: unknown) => boolean = () => false): { msg: string; fields: Fields } {
  if (err instanceof ConfigError || (err as Error)?.name === 'ConfigError') {
    const problems = (err as ConfigError).problems ?? [(err as Error).message];
    return { msg: `cannot start: ${problems.length === 1 ? problems[0] : 'invalid configuration'}`, fields: problems.length === 1 ? {} : { problems } };
  }
  const { code, port } = (err ?? {}) as { code?: unknown; port?: unknown };
  if (code === 'EADDRINUSE') {
    return { msg: `cannot start: port ${port} is already in use; stop the other process or set PORT`, fields: {} };
  }
  if (expected(err)) return { msg: `cannot start: ${(err as Error).message}`, fields: {} };
  return { msg: 'cannot start', fields: { error: err } };
}

/** Logs why start-up failed and exits with EXIT_CANNOT_START. */
export function exitCannotStart(log: Logger, err: unknown, expected?: (err: unknown) => boolean): never {
  const { msg, fields } = startFailure(err, expected);
  log.error(msg, fields);
  process.exit(EXIT_CANNOT_START);
}
