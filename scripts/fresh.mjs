// Whether a bundle in dist/ was built from the files now on disk. A build records what it
// read, from esbuild's metafile (the real import graph, node_modules included) plus any
// file the build reads itself, in dist/.inputs/<name>.json with a digest of each file's
// size and mtime. A bundle is fresh while every recorded file is unchanged: an edit that
// adds an import changes the importing file, so a new file is never missed.
// Plain JavaScript, so that scripts/start.mjs can use it before anything is bundled.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const record = (root, name) => path.join(root, 'dist', '.inputs', `${name}.json`);

/** size and mtime of each file, in order; null when one is missing. */
function digest(root, files) {
  const hash = createHash('sha256');
  for (const file of files) {
    let stat;
    try {
      stat = statSync(path.join(root, file));
    } catch {
      return null;
    }
    hash.update(`${file}\0${stat.size}\0${stat.mtimeMs}\n`);
  }
  return hash.digest('hex');
}

/** The source files an esbuild metafile lists, relative to `root` (esbuild's absWorkingDir). */
export function metafileInputs(metafile) {
  // Virtual inputs (a `define`, a disabled module) carry a namespace prefix and no file.
  return Object.keys(metafile.inputs).filter((input) => !/^[a-z-]+:/i.test(input));
}

/** True when `outputs` exist and every input recorded for `name` is as it was at the build. */
export function isFresh(root, name, outputs) {
  const file = record(root, name);
  if (!existsSync(file) || !outputs.every((output) => existsSync(path.join(root, output)))) return false;
  try {
    const { inputs, sha256 } = JSON.parse(readFileSync(file, 'utf8'));
    return Array.isArray(inputs) && digest(root, inputs) === sha256;
  } catch {
    return false; // unreadable: build again
  }
}

/** Records the files (relative to `root`) that the build of `name` read. */
export function recordInputs(root, name, inputs) {
  const files = [...new Set(inputs.map((input) => path.relative(root, path.resolve(root, input))))]
    .filter((input) => existsSync(path.join(root, input)))
    .sort();
  const file = record(root, name);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify({ inputs: files, sha256: digest(root, files) }, null, 1)}\n`);
}
