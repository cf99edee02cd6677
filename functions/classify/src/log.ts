// The function's log: JSON lines on stdout and stderr (server-kit/log.ts, shared with the UI
// server). Errors that name their own fix, a client's or a start-up's, are logged without
// a stack trace. A worker's error crosses the thread boundary as a plain Error that keeps
// its name, hence the names.
import { createLogger } from '../../../server-kit/log.ts';
import { ClientError } from './errors.ts';

export function expected(err: unknown): boolean {
  return err instanceof ClientError || ['ConfigError', 'AssetError'].includes((err as Error)?.name);
}

export const log = createLogger({ expected });
