// Command lines of the bench scripts, read with node:util's parseArgs: an unknown or
// malformed flag stops the script with one line and its usage, not a stack trace or a
// silently ignored typo. And their progress lines.
import { parseArgs, type ParseArgsConfig } from 'node:util';

export function cli<T extends ParseArgsConfig>(config: T, usage: string): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\nusage: ${usage}\n`);
    process.exit(2);
  }
}

/** Progress on stderr, with the time, so stdout stays a clean markdown report. */
export const progress = (msg: string) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
