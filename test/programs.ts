// External programs that some suites need (Chromium, shellcheck). Outside CI a missing one
// skips its suite with a printed reason, so `npm test` works on a laptop without them; in
// CI (CI=true) the run must not pass without them, so a missing one is a failing test.
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';

export interface Program {
  /** For messages: "Chromium". */
  name: string;
  /** An environment variable that, when set, is the only place looked at: "CHROMIUM_PATH". */
  env?: string;
  /** Absolute paths, or bare names looked up in PATH. */
  candidates: string[];
  /** How to get it: "apt-get install -y chromium". */
  install: string;
  /** The suite that needs it, for the skip message. */
  suite: string;
  /** Whether a candidate found is usable (e.g. a python3 that can import a module); default: any. */
  works?: (file: string) => boolean;
}

export const inCI = () => !!process.env.CI && !['0', 'false'].includes(process.env.CI.toLowerCase());

const executable = (file: string) => {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

/** The first candidate that is an executable file; bare names are searched in PATH. */
export function findProgram(candidates: string[]): string | undefined {
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  for (const candidate of candidates) {
    const paths = candidate.includes('/') ? [candidate] : dirs.map((dir) => path.join(dir, candidate));
    const found = paths.find(executable);
    if (found) return found;
  }
  return undefined;
}

/**
 * The program's path, or undefined when the caller should skip its suite
 * (`if (chromium) e2e.run();`). The reason is printed; in CI a missing program is
 * reported as a failing test named after the suite instead.
 */
export function requireProgram(program: Program): string | undefined {
  const fromEnv = program.env && process.env[program.env];
  const candidates = fromEnv ? [fromEnv] : program.candidates;
  const found = findProgram(candidates);
  if (found && (!program.works || program.works(found))) return found;
  const where = fromEnv ? `${program.env}=${fromEnv}` : `${candidates.map((c) => (c.includes('/') ? c : `${c} in PATH`)).join(', ')}${program.env ? ` (or set ${program.env})` : ''}`;
  const reason = `${program.name} not found: looked for ${where}. ${program.install}`;
  skipOrFail(program.suite, `needs ${program.name}`, reason);
  return undefined;
}

/**
 * Outside CI, prints why `suiteName` does not run and counts it under uvu's "Skipped:";
 * in CI, where the run must not pass without it, reports a failing test instead.
 */
export function skipOrFail(suiteName: string, test: string, reason: string): void {
  if (inCI()) {
    const missing = suite(suiteName);
    missing(test, () => {
      throw new Error(`${reason} CI must run this suite, so it fails instead of skipping.`);
    });
    missing.run();
  } else {
    process.stderr.write(`  skipping "${suiteName}": ${reason}\n`);
    const skipped = suite(suiteName);
    skipped.skip(test);
    skipped.run();
  }
}

/**
 * Starts `work` at once and returns its promise, marked as handled: a failure surfaces where
 * a test awaits it, not as an unhandled rejection before then. For checks that spend
 * seconds of CPU in another process (shellcheck, dependency-cruiser): started as their test
 * file loads, they run while test/run.ts loads and runs the other files, which mostly wait
 * on sockets and timers, instead of after them.
 */
export function startEarly<T>(work: () => Promise<T>): Promise<T> {
  const result = Promise.resolve().then(work);
  result.catch(() => {});
  return result;
}

let offline: string[] | null | undefined;

/**
 * A command prefix that runs a program with no network but loopback (a new network
 * namespace, `unshare -rn`, with only `lo` up), or undefined where the kernel or the
 * platform does not allow one; then the caller's suite is skipped, or fails in CI.
 */
export function offlinePrefix(suiteName: string): string[] | undefined {
  if (offline === undefined) {
    const [unshare, ip] = [findProgram(['unshare']), findProgram(['ip', '/usr/sbin/ip', '/sbin/ip'])];
    const prefix = unshare && ip ? [unshare, '-rn', 'sh', '-c', `${ip} link set lo up && exec "$0" "$@"`] : undefined;
    offline = prefix && spawnSync(prefix[0], [...prefix.slice(1), 'true']).status === 0 ? prefix : null;
  }
  if (offline) return offline;
  skipOrFail(suiteName, 'needs a machine without network (unshare -rn)', 'unshare -rn and ip, to run with loopback only, do not work here (Linux with user namespaces only).');
  return undefined;
}
