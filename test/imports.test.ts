// Import directions for every part, checked by one tool: dependency-cruiser, with the rules
// in .dependency-cruiser.mjs. The tree must break none of them, and each rule must bite: a
// scratch tree that breaks every rule once fails with each of them.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startEarly } from './programs.ts';
import { ROOT } from './support.ts';

const CONFIG = path.join(ROOT, '.dependency-cruiser.mjs');
const CLI = path.join(ROOT, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');
const PARTS = ['functions', 'contracts', 'server-kit', 'ui', 'scripts', 'bench', 'test', 'knative'];

interface Violation {
  rule: { name: string };
  from: string;
  to: string;
  cycle?: { name: string }[];
}

/** Runs the CLI (under plain node: swc's parser does not load under tsx) and returns its violations. */
async function cruise(cwd: string, targets: string[]): Promise<{ violations: Violation[]; modules: number; rules: string[] }> {
  const { stdout } = await promisify(execFile)(process.execPath, [CLI, '--config', CONFIG, '--output-type', 'json', ...targets], {
    cwd,
    maxBuffer: 64 * 1024 * 1024,
  }).catch((err: { stdout?: string; stderr?: string }) => {
    // It exits non-zero when it finds violations; its JSON is still on stdout.
    if (!err.stdout) throw new Error(`dependency-cruiser failed: ${err.stderr}`);
    return { stdout: err.stdout };
  });
  const { summary } = JSON.parse(stdout) as { summary: { violations: Violation[]; totalCruised: number; ruleSetUsed: { forbidden: { name: string }[] } } };
  return { violations: summary.violations, modules: summary.totalCruised, rules: summary.ruleSetUsed.forbidden.map((r) => r.name) };
}

const show = (v: Violation) => `${v.rule.name}: ${v.from} → ${v.cycle ? v.cycle.map((c) => c.name).join(' → ') : v.to}`;

/**
 * One file or more per rule, each breaking it; `{}` files are empty modules to import.
 * Type-only and lazy imports form the cycle, as they count too.
 */
const BROKEN: Record<string, string> = {
  'package.json': JSON.stringify({ name: 'scratch', devDependencies: { ajv: '*' } }),
  'contracts/events.ts': "import '../server-kit/log.ts';",
  'functions/classify/src/events/handler.ts': "import { toProblem } from '../http/problems.ts';",
  'functions/classify/src/http/problems.ts': 'export const toProblem = 1;',
  'functions/classify/src/classifier.ts': "import './http/problems.ts';\nimport './model/prepare.ts';",
  'functions/classify/src/decode-budget.ts': "import { INPUT_SIZE } from './model/mobilenet.ts';",
  'functions/classify/src/model/mobilenet.ts': "import '../errors.ts';\nexport const INPUT_SIZE = 224;",
  'functions/classify/src/model/prepare.ts': '',
  'functions/classify/src/engines/engine.ts': "import './onnx.ts';\nimport type { Config } from '../config.ts';",
  'functions/classify/src/engines/onnx.ts': '',
  'functions/classify/src/config.ts': '',
  'functions/classify/src/errors.ts': "import '../../../test/support.ts';\nimport 'ajv';\nimport './missing.ts';",
  'functions/classify/src/a.ts': "import type { B } from './b.ts';\nexport type A = B;",
  'functions/classify/src/b.ts': "export type B = number;\nexport const load = () => import('./a.ts');",
  'ui/src/app.ts': "import 'node:fs';\nimport '../server/app.ts';",
  'ui/server/app.ts': "import '../src/lib.ts';\nimport '../../functions/classify/src/config.ts';",
  'ui/src/lib.ts': '',
  'server-kit/log.ts': "import '../ui/server/app.ts';",
  'test/support.ts': '',
};

/** Cruises the scratch tree of BROKEN, and removes it. */
async function cruiseBroken() {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'klassify-imports-'));
  try {
    for (const [file, text] of Object.entries(BROKEN)) {
      await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
      await writeFile(path.join(dir, file), text);
    }
    await symlink(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
    return await cruise(dir, ['contracts', 'functions', 'ui', 'server-kit']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// Seconds of CPU each: started now, they run beside the other test files (startEarly).
const tree = startEarly(() => cruise(ROOT, PARTS));
const scratch = startEarly(cruiseBroken);

const imports = suite('import directions (dependency-cruiser)');
imports('the tree breaks no rule', async () => {
  const { violations, modules } = await tree;
  assert.ok(modules > 150, `only ${modules} modules were cruised`);
  assert.equal(violations.map(show), []);
});
imports('every rule bites: a scratch tree that breaks each one fails with each of them', async () => {
  const { violations, rules } = await scratch;
  assert.ok(rules.length >= 10, rules.join());
  const broken = new Set(violations.map((v) => v.rule.name));
  for (const rule of rules) assert.ok(broken.has(rule), `rule ${rule} did not bite; found:\n${violations.map(show).join('\n')}`);
  const cycle = violations.find((v) => v.rule.name === 'no-circular');
  assert.ok(cycle?.cycle?.some((c) => c.name.endsWith('b.ts')), 'the cycle runs through a type-only and a lazy import');
  assert.ok(violations.some((v) => v.rule.name === 'events-not-http' && v.from.endsWith('events/handler.ts')));
});
imports.run();
