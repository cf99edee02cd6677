// The README is the front door: at most 300 lines, with the detail in docs/. Every relative
// link in it and in docs/ (to a file, a folder, or a heading of a Markdown file) resolves.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const ROOT = path.resolve(import.meta.dirname, '../..');
const DOCS = [path.join(ROOT, 'README.md'), ...readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => path.join(ROOT, 'docs', f))];

/** The text without fenced code blocks and code spans, where a bracket is not a link. */
const prose = (markdown: string) => markdown.replace(/^```[\s\S]*?^```/gm, '').replace(/`[^`\n]*`/g, '');

/** Heading anchors as GitHub makes them: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const [, heading] of markdown.replace(/^```[\s\S]*?^```/gm, '').matchAll(/^#{1,6}\s+(.+?)\s*#*$/gm)) {
    const slug = heading.toLowerCase().replace(/[^\p{L}\p{N}\p{M}\s_-]/gu, '').trim().replace(/\s/g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    out.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return out;
}

/** Relative link targets: [text](target) and <img src="target">. */
function links(markdown: string): string[] {
  const text = prose(markdown);
  const targets = [...text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g), ...text.matchAll(/<img[^>]*\ssrc="([^"]+)"/g)].map((m) => m[1]);
  return targets.filter((target) => !/^[a-z][a-z+.-]*:/i.test(target));
}

const docs = suite('docs');
docs('README.md is at most 300 lines', () => {
  const lines = readFileSync(path.join(ROOT, 'README.md'), 'utf8').split('\n').length - 1;
  assert.ok(lines <= 300, `README.md has ${lines} lines`);
});
docs('every relative link in README.md and docs/ resolves, headings included', () => {
  const broken: string[] = [];
  for (const file of DOCS) {
    const markdown = readFileSync(file, 'utf8');
    for (const link of links(markdown)) {
      const [target, anchor] = link.split('#') as [string, string | undefined];
      const resolved = target ? path.resolve(path.dirname(file), decodeURIComponent(target)) : file;
      const where = `${path.relative(ROOT, file)}: ${link}`;
      if (!existsSync(resolved)) broken.push(`${where} (no such file)`);
      else if (anchor && resolved.endsWith('.md') && !anchors(readFileSync(resolved, 'utf8')).has(anchor)) broken.push(`${where} (no such heading)`);
    }
  }
  assert.equal(broken, []);
});
docs('the link check finds a broken file and a broken heading (it can fail)', () => {
  assert.equal(links('[a](missing.md) `[b](code.md)` [c](https://example.com) <img src="x.png">'), ['missing.md', 'x.png']);
  const headings = anchors('# Offline: the data mirror\n## `npm start`\n## int8 (opt-in)\n## Notes\n## Notes\n');
  assert.equal([...headings], ['offline-the-data-mirror', 'npm-start', 'int8-opt-in', 'notes', 'notes-1']);
});
docs.run();
