/**
 * One JSON object per line, as cluster log agents expect: info to stdout, warn and error
 * to stderr. An Error anywhere in the fields becomes { name, message, stack }; its stack is left
 * out when `expected(err)` says the error is one a client or an operator caused (a bad
 * request, an invalid setting): those say what to fix, and a stack would only bury it.
 */

export type Level = 'info' | 'warn' | 'error';
export type Fields = Record<string, unknown>;

/** Methods are bound, so `log.info` can be handed on as a plain `(msg) => void`. */
export interface Logger {
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
}

export interface LoggerOptions {
  /** Errors logged without their stack. */
  expected?: (err: unknown) => boolean;
  /** Where a finished line goes; by default stdout for info, stderr otherwise. */
  write?: (level: Level, line: string) => void;
  /** The clock, for tests. */
  now?: () => Date;
}

function writeStd(level: Level, line: string): void {
  (level === 'info' ? process.stdout : process.stderr).write(`${line}\n`);
}

export function createLogger({ expected = () => false, write = writeStd, now = () => new Date() }: LoggerOptions = {}): Logger {
  const serialise = (value: unknown): unknown => {
    if (!(value instanceof Error)) return value;
    const out: Fields = { name: value.name, message: value.message };
    const code = (value as { code?: unknown }).code;
    if (typeof code === 'string' || typeof code === 'number') out.code = code;
    if (!expected(value) && value.stack) out.stack = value.stack;
    return out;
  };
  const line = (level: Level, msg: string, fields: Fields = {}): string => {
    const entry: Fields = { time: now().toISOString(), level, msg };
    // time, level and msg are the logger's: a field cannot overwrite them.
    for (const [name, value] of Object.entries(fields)) if (!(name in entry)) entry[name] = value;
    try {
      return JSON.stringify(entry, (_key, value) => (typeof value === 'bigint' ? String(value) : serialise(value)));
    } catch {
      // A cycle in the fields: the message still gets through.
      return JSON.stringify({ time: entry.time, level, msg, fields: 'not serialisable' });
    }
  };
  const at = (level: Level) => (msg: string, fields?: Fields) => write(level, line(level, msg, fields));
  return { info: at('info'), warn: at('warn'), error: at('error') };
}

/** Drops everything: for tests and tools that do not want the servers' logs. */
export const silentLogger: Logger = { info() {}, warn() {}, error() {} };
