// External programs that some suites need (Chromium, shellcheck). Outside CI a missing one
// skips its suite with a printed reason, so `npm test` works on a laptop without them; in
// CI (CI=true) the run must not pass without them, so a missing one is a failing test.
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
  if (inCI()) {
    const missing = suite(program.suite);
    missing(`needs ${program.name}`, () => {
      throw new Error(`${reason} CI must run this suite, so it fails instead of skipping.`);
    });
    missing.run();
  } else {
    process.stderr.write(`  skipping "${program.suite}": ${reason}\n`);
    // Counted in uvu's "Skipped:" line, so the summary shows that something did not run.
    const skipped = suite(program.suite);
    skipped.skip(`needs ${program.name}`);
    skipped.run();
  }
  return undefined;
}
