// uvu with deadlines. test/run.ts redirects every `import … from 'uvu'` in a test file
// here, so test files keep uvu's API and gain three things uvu lacks:
// - each test and hook races a timeout, so one stuck await fails its test, not the run;
// - a failing `before` hook fails every test of its suite with its error (uvu itself
//   swallows it in a `finally` and reports the suite as neither failed nor passed);
// - a failing `after`/`after.each` hook is printed and fails the run, instead of being lost.
import * as uvu from 'uvu';
import type { Callback, Test } from 'uvu';

type Context = Record<string, any>;
type Hook<T> = Test<T>['before'];

const positive = (name: string, fallback: number) => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number of milliseconds, got ${process.env[name]}`);
  return value;
};

/** Per test and per hook. Generous: the 2-core CI machine may be busy with other jobs. */
export const TEST_TIMEOUT_MS = positive('KLASSIFY_TEST_TIMEOUT_MS', 120_000);

/** What is running now, for the whole-run watchdog's message. */
export const current = { suite: '', step: '', since: 0 };

/** Errors that uvu's own summary cannot show (after hooks); the runner fails on them. */
export const hookFailures: string[] = [];

function within<T>(what: string, run: () => T | Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    // A ref'd timer: a test awaiting a promise that nothing will settle still ends.
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${TEST_TIMEOUT_MS / 1000} s (KLASSIFY_TEST_TIMEOUT_MS)`)), TEST_TIMEOUT_MS);
  });
  return Promise.race([Promise.resolve().then(run), timeout]).finally(() => clearTimeout(timer));
}

export function suite<T = Context>(title = '', state?: T): Test<T> {
  const inner = uvu.suite<T>(title, state);
  const label = title ? `"${title}"` : 'the default suite';
  let setupError: Error | undefined;
  let setupReported = false;

  const step = (what: string, fn: () => unknown) => {
    Object.assign(current, { suite: title, step: what, since: Date.now() });
    return within(`${what} in ${label}`, fn);
  };
  const wrapTest = (name: string, fn: Callback<T>): Callback<T> => async (ctx) => {
    if (setupError) {
      // The full error once per suite; the other tests point back to it.
      if (setupReported) throw new Error('not run: the before hook failed (error shown above for the first test of this suite)');
      setupReported = true;
      throw new Error(`not run: the before hook failed: ${setupError.message}`, { cause: setupError });
    }
    await step(`test "${name}"`, () => fn(ctx));
  };
  const before: Hook<T> = (fn) => inner.before(async (ctx) => {
    if (setupError) return;
    try {
      await step('before hook', () => fn(ctx));
    } catch (err) {
      setupError = err as Error;
    }
  });
  before.each = (fn) => inner.before.each(async (ctx) => { await step('before.each hook', () => fn(ctx)); });
  const reportAfter = (what: string) => (fn: Callback<T>) => async (ctx: Parameters<Callback<T>>[0]) => {
    try {
      await step(what, () => fn(ctx));
    } catch (err) {
      const msg = `${what} in ${label} failed: ${(err as Error)?.stack ?? err}`;
      hookFailures.push(msg);
      process.stderr.write(`\n  ${msg}\n`);
    }
  };
  const after: Hook<T> = (fn) => inner.after(reportAfter('after hook')(fn));
  after.each = (fn) => inner.after.each(reportAfter('after.each hook')(fn));

  const test = ((name: string, fn: Callback<T>) => inner(name, wrapTest(name, fn))) as Test<T>;
  test.only = (name, fn) => inner.only(name, wrapTest(name, fn));
  test.skip = inner.skip;
  test.before = before;
  test.after = after;
  test.run = inner.run;
  return test;
}

export const test = suite();
export const exec = uvu.exec;
