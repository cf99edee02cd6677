// Regenerates docs/perf/load-report.png, the docs' picture of the load-test report, from a
// synthesized Knative run (bench/test/synthetic-run.ts; the page says so in a banner) in
// Debian's Chromium.
//
//   node --import tsx bench/report-screenshot.ts [out.png]
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import sharp from 'sharp';
import { findProgram } from '../test/programs.ts';
import { CHROMIUM_ARGS, CHROMIUM_PROGRAM, ROOT } from '../ui/test/support.ts';
import { report } from './load-report.ts';
import { writeSyntheticRun } from './test/synthetic-run.ts';

const out = path.resolve(process.argv[2] ?? path.join(ROOT, 'docs/perf/load-report.png'));
const CHROMIUM = findProgram(process.env.CHROMIUM_PATH ? [process.env.CHROMIUM_PATH] : CHROMIUM_PROGRAM.candidates);
if (!CHROMIUM) throw new Error(`Chromium not found. ${CHROMIUM_PROGRAM.install}`);
const dir = mkdtempSync(path.join(os.tmpdir(), 'klassify-report-'));
const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
try {
  writeSyntheticRun(dir);
  report(dir);
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 }, deviceScaleFactor: 1 });
  await page.goto(pathToFileURL(path.join(dir, 'report.html')).href);
  const png = await page.screenshot({ fullPage: true });
  // A 256-colour palette keeps the picture small.
  const info = await sharp(png).png({ palette: true, quality: 90, effort: 10, compressionLevel: 9 }).toFile(out);
  console.log(`wrote ${path.relative(process.cwd(), out)} (${info.width}x${info.height}, ${Math.round(info.size / 1024)} KB)`);
} finally {
  await browser.close();
  rmSync(dir, { recursive: true, force: true });
}
