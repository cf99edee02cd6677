// The page and the server share only contracts/: the server never imports browser code
// (not even a type), and the page never imports the server or Node's modules. Each side's
// tsconfig.json keeps the other side's globals out; this keeps the imports out.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

const UI = path.resolve(import.meta.dirname, '..', '..');
/** The servers' shared toolkit: Node only, never in the page's bundle. */
const SERVER_KIT = path.resolve(UI, '..', 'server-kit');

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await sources(full)));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) out.push(full);
  }
  return out;
}

async function imports(file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8');
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1] ?? m[2]);
}

const boundaries = suite('ui: server and page share only contracts/');
boundaries('ui/server imports nothing from ui/src', async () => {
  for (const file of await sources(path.join(UI, 'server'))) {
    for (const spec of await imports(file)) {
      const resolved = spec.startsWith('.') ? path.resolve(path.dirname(file), spec) : spec;
      assert.not.ok(resolved.startsWith(path.join(UI, 'src')), `${path.relative(UI, file)} imports ${spec}`);
    }
  }
});
boundaries('ui/src imports neither the server, server-kit nor node:*', async () => {
  const files = await sources(path.join(UI, 'src'));
  assert.ok(files.length > 5);
  for (const file of files) {
    for (const spec of await imports(file)) {
      const resolved = spec.startsWith('.') ? path.resolve(path.dirname(file), spec) : spec;
      assert.not.ok(resolved.startsWith(path.join(UI, 'server')), `${path.relative(UI, file)} imports ${spec}`);
      assert.not.ok(resolved.startsWith(SERVER_KIT), `${path.relative(UI, file)} imports ${spec}`);
      assert.not.match(spec, /^node:/, `${path.relative(UI, file)} imports ${spec}`);
    }
  }
});
boundaries.run();
