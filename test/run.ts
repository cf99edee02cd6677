// The test runner behind `npm test`: uvu's file discovery and reporter, plus deadlines.
//   node --import tsx test/run.ts [dir] [pattern] [-i ignore]... [--bail] [--unit]
// Test files import `uvu` as usual; a resolve hook hands them test/uvu.ts, which races
// every test and hook against KLASSIFY_TEST_TIMEOUT_MS. A watchdog ends the whole run after
// KLASSIFY_TEST_RUN_TIMEOUT_MS, and once uvu has printed its summary the process exits with
// its code even if something is still open, naming what was left open.
import { register } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { parse } from 'uvu/parse';

// A mirror folder given relative (`KLASSIFY_MIRROR=../shared npm test`) means the same
// folder to every program a test starts, whatever its working directory.
for (const [name, value] of Object.entries(process.env)) {
  if (/^KLASSIFY_(\w+_)?MIRROR$/.test(name) && value?.trim()) process.env[name] = path.resolve(value.trim());
}

const WRAPPER = new URL('./uvu.ts', import.meta.url).href;
const RUN_TIMEOUT_MS = Number(process.env.KLASSIFY_TEST_RUN_TIMEOUT_MS ?? 30 * 60_000);
if (!Number.isFinite(RUN_TIMEOUT_MS) || RUN_TIMEOUT_MS <= 0) {
  process.stderr.write(`KLASSIFY_TEST_RUN_TIMEOUT_MS must be a positive number of milliseconds, got ${process.env.KLASSIFY_TEST_RUN_TIMEOUT_MS}\n`);
  process.exit(1);
}
/** How long open handles may take to close by themselves after the summary. */
const EXIT_GRACE_MS = 3_000;

// Every `uvu` import except the wrapper's own goes to the wrapper.
const hooks = `
export async function resolve(specifier, context, next) {
  if (specifier === 'uvu' && context.parentURL !== ${JSON.stringify(WRAPPER)}) {
    return { url: ${JSON.stringify(WRAPPER)}, shortCircuit: true };
  }
  return next(specifier, context);
}`;
register(`data:text/javascript,${encodeURIComponent(hooks)}`);

/**
 * `--unit` (`npm run test:unit`): the files that need no model, no photos, no browser and
 * no network, so they run in seconds on a fresh clone. The UI server tests use loopback
 * sockets and an esbuild build of the page; the script tests use bash (and shellcheck
 * when it is installed). scripts/test/unit-selection.test.ts runs this selection with no
 * network, no browser and no mirror, in a copy of the tracked files: a file that needs
 * any of those fails there.
 */
const UNIT = '(^|/)(contracts|server-kit|bench|scripts|docs)/test/[^/]*\\.test\\.ts$|(^|/)ui/test/(lib|server)/[^/]*\\.test\\.ts$' +
  '|(^|/)knative/test/capacity\\.test\\.ts$|(^|/)functions/classify/test/units\\.test\\.ts$|^test/(imports|helpers)\\.test\\.ts$';
/** Files in those folders that need the model, the photos, the Knative CRDs, npm itself or hey. */
const NOT_UNIT = [
  'bench/test/http.test.ts',
  'bench/test/load-html.test.ts',
  'scripts/test/deploy-scripts.test.ts',
  'scripts/test/generated-output.test.ts',
  'scripts/test/start.test.ts',
  'scripts/test/install.test.ts',
  'scripts/test/load-test.test.ts',
  'scripts/test/unit-selection.test.ts',
  'ui/test/lib/image-format.test.ts',
];

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    bail: { type: 'boolean', short: 'b', default: false },
    unit: { type: 'boolean', default: false },
    ignore: { type: 'string', short: 'i', multiple: true, default: [] },
  },
});
const [dir = '.', pattern = values.unit ? UNIT : '\\.test\\.ts$'] = positionals;
if (values.unit) values.ignore.push(...NOT_UNIT.map((file) => file.replace(/[.]/g, '\\.')));

/** Open handles by kind, with addresses for sockets and servers, for the exit message. */
function openHandles(): string {
  const kinds = new Map<string, number>();
  for (const kind of process.getActiveResourcesInfo()) kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  const lines = [...kinds].map(([kind, n]) => `${kind} ×${n}`);
  // The handle objects say which port is open. `_getActiveHandles` is deprecated (DEP0161,
  // documentation only) and may go: then only the kinds above are printed.
  const handles = (process as unknown as { _getActiveHandles?(): unknown[] })._getActiveHandles?.() ?? [];
  for (const h of handles) {
    const addr = (h as { address?: () => unknown }).address?.();
    if (addr && typeof addr === 'object' && 'port' in addr) lines.push(`${(h as object).constructor.name} on ${JSON.stringify(addr)}`);
  }
  return lines.join(', ') || 'none';
}

// Unref'd: it never keeps the process alive, but fires if anything else does.
const watchdog = setTimeout(async () => {
  const { current } = await import(WRAPPER);
  const running = current.since ? `${current.step} in "${current.suite}", running for ${((Date.now() - current.since) / 1000).toFixed(0)} s` : 'loading test files';
  process.stderr.write(`\n  The test run exceeded ${RUN_TIMEOUT_MS / 1000} s (KLASSIFY_TEST_RUN_TIMEOUT_MS) while at: ${running}.\n  Open handles: ${openHandles()}\n`);
  process.exit(2);
}, RUN_TIMEOUT_MS).unref();

// uvu defers its queue to the caller when UVU_DEFER is set before it loads.
(globalThis as { UVU_DEFER?: number }).UVU_DEFER = 1;
const wrapper: typeof import('./uvu.ts') = await import(WRAPPER);
const ctx = await parse(dir, pattern, { ignore: ['node_modules', '(^|/)dist(/|$)', '(^|/)\\.cache(/|$)', ...values.ignore] });
if (!ctx.suites.length) {
  process.stderr.write(`No test files match ${pattern} under ${ctx.dir}.\n`);
  process.exit(1);
}
const queue = (globalThis as unknown as { UVU_QUEUE: unknown[][] }).UVU_QUEUE;
for (const [index, file] of ctx.suites.entries()) {
  (globalThis as { UVU_INDEX?: number }).UVU_INDEX = index;
  queue.push([file.name]);
  try {
    await import(pathToFileURL(file.file).href);
  } catch (err) {
    // A file that cannot load fails as one test of its own; the other files still run.
    const broken = wrapper.suite(file.name);
    broken('the test file loads', () => {
      throw err;
    });
    broken.run();
  }
}
await wrapper.exec(values.bail);
clearTimeout(watchdog);

let code = Number(process.exitCode ?? 0);
if (wrapper.hookFailures.length) {
  process.stderr.write(`  ${wrapper.hookFailures.length} after hook(s) failed (printed above).\n`);
  code ||= 1;
}
process.exitCode = code;
setTimeout(() => {
  process.stderr.write(`  Tests finished, but the process did not exit within ${EXIT_GRACE_MS / 1000} s; still open: ${openHandles()}\n` +
    '  A test or suite does not close what it opened (servers, workers, child processes, sockets).\n');
  process.exit(code);
}, EXIT_GRACE_MS).unref();
