/**
 * Regenerates docs/ui.png (desktop) and docs/ui-mobile.png (390×844 phone), the
 * README's pictures of the UI, from the real thing: the classify function and the
 * UI server on loopback, Debian's Chromium, a few of the fixture photos, and events
 * relayed through the function as the Broker would.
 *
 *   node --import tsx ui/screenshot.ts [desktop.png [mobile.png]]
 */
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { chromium, type Page } from 'playwright-core';
import sharp from 'sharp';
import { createUiServer } from './server/app.ts';
import { findProgram } from '../test/programs.ts';
import {
  CHROMIUM_ARGS,
  CHROMIUM_PROGRAM,
  fixtures,
  relayThroughFunction,
  ROOT,
  silentLogger,
  startClassifyFunction,
  testConfig,
} from './test/support.ts';

const CHROMIUM = findProgram(process.env.CHROMIUM_PATH ? [process.env.CHROMIUM_PATH] : CHROMIUM_PROGRAM.candidates);
if (!CHROMIUM) throw new Error(`Chromium not found. ${CHROMIUM_PROGRAM.install}`);
const desktopOut = path.resolve(process.argv[2] ?? path.join(ROOT, 'docs', 'ui.png'));
const mobileOut = path.resolve(process.argv[3] ?? path.join(ROOT, 'docs', 'ui-mobile.png'));
const images = await fixtures();
const token = randomBytes(18).toString('base64url');
const fn = await startClassifyFunction();
const ui = createUiServer(await testConfig({ CLASSIFY_URL: fn.url, UI_EVENTS_TOKEN: token }), silentLogger);
const base = `http://127.0.0.1:${(await ui.listen()).port}`;
const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });

async function save(page: Page, out: string) {
  await page.waitForTimeout(600); // let the bars finish their transition
  const png = await page.screenshot();
  await mkdir(path.dirname(out), { recursive: true });
  // A 256-colour palette keeps the README images small.
  const info = await sharp(png).png({ palette: true, quality: 90, effort: 10, compressionLevel: 9 }).toFile(out);
  console.log(`wrote ${path.relative(process.cwd(), out)} (${info.width}x${info.height}, ${Math.round(info.size / 1024)} KB)`);
}

try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 1180 }, deviceScaleFactor: 1 });
  await page.goto(base);
  await page.locator('.pill-status[data-state="ready"]').waitFor();
  await page.locator('#picker').setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('shopping list') });
  await page.locator('li.card[data-status="error"]').waitFor();
  await page.locator('#picker').setInputFiles(['chelsea.png', 'coffee.png'].map((name) => path.join(images, name)));
  await page.locator('li.card[data-status="done"]').nth(1).waitFor();
  for (const [index, name] of ['rocket.jpg', 'camera.png', 'chelsea.png'].entries()) {
    await relayThroughFunction(fn.url, base, token, path.join(images, name), `screenshot-${index}`);
  }
  await page.locator('.feed-item').nth(2).waitFor();
  await save(page, desktopOut);

  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 1, isMobile: true, hasTouch: true });
  const mobile = await phone.newPage();
  await mobile.goto(base);
  await mobile.locator('.pill-status[data-state="ready"]').waitFor();
  await mobile.locator('#picker').setInputFiles(path.join(images, 'chelsea.png'));
  await mobile.locator('li.card[data-status="done"]').waitFor();
  await save(mobile, mobileOut);
  await phone.close();
} finally {
  await browser.close();
  await ui.close();
  await fn.stop();
}
