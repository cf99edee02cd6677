// Command lines of the bench scripts, read with node:util's parseArgs: an unknown or
// malformed flag stops the script with one line and its usage, not a stack trace or a
// silently ignored typo.
import { parseArgs, type ParseArgsConfig } from 'node:util';

export function cli<T extends ParseArgsConfig>(config: T, usage: string): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\nusage: ${usage}\n`);
    process.exit(2);
  }
}
