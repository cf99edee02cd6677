// The function's modules form no import cycle: an interface imports no implementation, and
// the core no module that imports it back. Type-only and lazy `import()` edges count too,
// since they tie the modules together just the same for a reader.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const SRC = fileURLToPath(new URL('../src/', import.meta.url));

/** Relative imports of a source file, resolved to absolute paths. */
export function importsOf(file: string, source = readFileSync(file, 'utf8')): string[] {
  const specs = [
    ...source.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s*['"](\.{1,2}\/[^'"]+)['"]/gm),
    ...source.matchAll(/^\s*import\s*['"](\.{1,2}\/[^'"]+)['"]/gm),
    ...source.matchAll(/\bimport\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g),
  ].map((m) => m[1]);
  return specs.filter((s) => /\.(ts|mjs|js)$/.test(s)).map((s) => path.resolve(path.dirname(file), s));
}

/** The first cycle found by a depth-first walk, as a list of files ending where it began. */
export function findCycle(roots: string[], edges: (file: string) => string[]): string[] | undefined {
  const done = new Set<string>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const visit = (file: string): string[] | undefined => {
    if (onStack.has(file)) return [...stack.slice(stack.indexOf(file)), file];
    if (done.has(file)) return undefined;
    stack.push(file);
    onStack.add(file);
    for (const next of edges(file)) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    stack.pop();
    onStack.delete(file);
    done.add(file);
    return undefined;
  };
  for (const root of roots) {
    const cycle = visit(root);
    if (cycle) return cycle;
  }
  return undefined;
}

const sources = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(path.join(dir, e.name)) : /\.(ts|mjs)$/.test(e.name) ? [path.join(dir, e.name)] : [],
  );

const test = suite('import graph of functions/classify/src');
test('the walk finds a cycle, lazy or type-only edges included', () => {
  const graph: Record<string, string> = {
    '/a.ts': "import type { X } from './b.ts';",
    '/b.ts': "export async function f() { return import('./c.ts'); }",
    '/c.ts': "import { y } from './a.ts';",
  };
  const edges = (f: string) => importsOf(f, graph[f] ?? '');
  assert.equal(findCycle(['/a.ts'], edges), ['/a.ts', '/b.ts', '/c.ts', '/a.ts']);
  graph['/c.ts'] = "import { y } from './d.ts';";
  assert.is(findCycle(['/a.ts'], edges), undefined);
});
test('has no cycle', () => {
  const files = sources(SRC);
  assert.ok(files.length > 20, `found only ${files.length} source files under ${SRC}`);
  const within = (f: string) => importsOf(f).filter((g) => g.startsWith(SRC));
  const cycle = findCycle(files, within);
  assert.is(cycle, undefined, `import cycle: ${cycle?.map((f) => path.relative(SRC, f)).join(' → ')}`);
});
const local = (file: string) => importsOf(path.join(SRC, file)).map((f) => path.relative(SRC, f));
test('the engine interface and the model description import no implementation', () => {
  for (const file of ['engines/engine.ts', 'model/mobilenet.ts']) {
    const imports = local(file);
    assert.equal(imports.filter((f) => f !== 'config.ts'), [], `${file} imports ${imports.join(', ')}`);
  }
});
test('the core takes the model facts from the description, not from the downloader', () => {
  const imports = local('classifier.ts');
  assert.ok(imports.includes('model/mobilenet.ts'), imports.join(', '));
  assert.not.ok(imports.some((f) => /^model\/(prepare|assets)\.ts$/.test(f)), imports.join(', '));
});
test.run();
