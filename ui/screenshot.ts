/**
 * Regenerates docs/ui.png, the README's picture of the UI, from the real thing:
 * the classify function and the UI server on loopback, Debian's Chromium, a few of
 * the shared photos, and events relayed through the function as the Broker would.
 *
 *   node --import tsx ui/screenshot.ts [out.png]
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { chromium } from 'playwright-core';
import sharp from 'sharp';
import { createUiServer } from './server/app.ts';
import {
  CHROMIUM,
  CHROMIUM_ARGS,
  IMAGES,
  relayThroughFunction,
  ROOT,
  silentLogger,
  startClassifyFunction,
  testConfig,
} from './test/support.ts';

const out = path.resolve(process.argv[2] ?? path.join(ROOT, 'docs', 'ui.png'));
const fn = await startClassifyFunction();
const ui = createUiServer(await testConfig({ CLASSIFY_URL: fn.url }), silentLogger);
const base = `http://127.0.0.1:${(await ui.listen()).port}`;
const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 1180 }, deviceScaleFactor: 1 });
  await page.goto(base);
  await page.locator('.pill-status[data-state="ready"]').waitFor();
  await page.locator('#picker').setInputFiles({
    name: 'diagram.svg',
    mimeType: 'image/svg+xml',
    buffer: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'),
  });
  await page.locator('li.card[data-status="error"]').waitFor();
  await page.locator('#picker').setInputFiles(['chelsea.png', 'coffee.png'].map((name) => path.join(IMAGES, name)));
  await page.locator('li.card[data-status="done"]').nth(1).waitFor();
  for (const [index, name] of ['rocket.jpg', 'camera.png', 'chelsea.png'].entries()) {
    await relayThroughFunction(fn.url, base, path.join(IMAGES, name), `screenshot-${index}`);
  }
  await page.locator('.feed-item').nth(2).waitFor();
  await page.waitForTimeout(600); // let the bars finish their transition
  const png = await page.screenshot();
  await mkdir(path.dirname(out), { recursive: true });
  // A 256-colour palette keeps the README image small.
  const info = await sharp(png).png({ palette: true, quality: 90, effort: 10, compressionLevel: 9 }).toFile(out);
  console.log(`wrote ${path.relative(process.cwd(), out)} (${info.width}x${info.height}, ${Math.round(info.size / 1024)} KB)`);
} finally {
  await browser.close();
  await ui.close();
  await fn.stop();
}
