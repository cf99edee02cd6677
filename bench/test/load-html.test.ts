// The load-test report: one self-contained HTML page. Checked as text (nothing external,
// everything escaped) and in Debian's Chromium on a synthesized Knative run: it renders
// every section, asks the network for nothing, and logs no error.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { renderReport } from '../load-html.ts';
import { parseHey, report } from '../load-report.ts';
import { requireProgram } from '../../test/programs.ts';
import { CHROMIUM_ARGS, CHROMIUM_PROGRAM } from '../../ui/test/support.ts';
import { heyText, writeSyntheticRun } from './synthetic-run.ts';

/** Tags or attributes that would load something: the page must have none. */
const EXTERNAL = /<(?:script|link|iframe|img|object|embed)\b|<[^>]*\s(?:src|href)\s*=|url\(|@import/i;

const text = suite('load-test report: the page');

text('is self-contained and escapes what it prints', () => {
  const step = { ...parseHey(heyText({ seconds: 10, ok: 500, p50: 20 })), concurrency: 4, okRps: 50 };
  const html = renderReport({ meta: { label: '<img src=x onerror=alert(1)>', url: 'http://a/"b' }, steps: [step], pods: [], coldStarts: [] });
  assert.not.match(html, EXTERNAL);
  assert.match(html, '&lt;img src=x onerror=alert(1)&gt;');
  assert.match(html, 'http://a/&quot;b');
  assert.match(html, 'did not go through Knative');
});

text('the check for external references can fail', () => {
  for (const bad of ['<script>1</script>', '<link rel=stylesheet href=a.css>', '<p style="background:url(x)">', '<img src="a.png">']) {
    assert.match(bad, EXTERNAL);
  }
});

text.run();

const CHROMIUM_PATH = requireProgram({ ...CHROMIUM_PROGRAM, suite: 'load-test report in Chromium' });

if (CHROMIUM_PATH) {
  const browser = suite<{ dir: string; browser?: Browser }>('load-test report in Chromium', { dir: '' });

  browser.before(async (ctx) => {
    ctx.dir = mkdtempSync(path.join(os.tmpdir(), 'klassify-report-'));
    ctx.browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true });
  });

  browser.after(async (ctx) => {
    await ctx.browser?.close();
    rmSync(ctx.dir, { recursive: true, force: true });
  });

  browser('a synthesized Knative run: every section, the model beside the measurement, nothing fetched', async (ctx) => {
    writeSyntheticRun(ctx.dir);
    const { prediction } = report(ctx.dir);
    assert.ok(prediction, 'a Knative run gets the model');
    const file = path.join(ctx.dir, 'report.html');
    assert.not.match(readFileSync(file, 'utf8'), EXTERNAL);

    const page = await ctx.browser!.newPage({ viewport: { width: 1400, height: 900 } });
    const requests: string[] = [];
    const errors: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(pathToFileURL(file).href);
    assert.equal(requests, [pathToFileURL(file).href], 'the page loaded nothing but itself');
    assert.equal(errors, []);

    assert.ok(await page.locator('#synthetic').isVisible(), 'the synthesized-data banner shows');
    assert.is(await page.locator('#steps tbody tr').count(), 6);
    // Each step has its status codes as a bar and in words, and the model's range beside it.
    const top = page.locator('#steps tr[data-concurrency="32"]');
    assert.match(await top.innerText(), /503 × 37/);
    assert.match(await top.innerText(), /504 × 12/);
    assert.is(await top.locator('.bar i').count(), 4);
    assert.is(await page.locator('#steps td.model').count(), 12);
    assert.ok(await page.locator('#steps td.differs, #steps td.agrees').count() >= 6, 'every step is judged against the model');
    // Charts: throughput and latency with the model's band, pods over time with Pending.
    const charts = page.locator('svg');
    assert.is(await charts.count(), 3);
    for (let i = 0; i < 3; i++) {
      const box = await charts.nth(i).boundingBox();
      assert.ok(box && box.width > 300 && box.height > 200, `chart ${i} is drawn: ${JSON.stringify(box)}`);
    }
    assert.is(await page.locator('svg polygon').count(), 2, 'the model band in the throughput and latency charts');
    const pods = await page.locator('#pods svg').innerHTML();
    for (const name of ['ready pods (measured)', 'pending pods (measured)', 'ready pods (model)', 'the pods the load asks for']) assert.match(pods, name);
    assert.is(await page.locator('#cold-starts tbody tr').count(), 3);
    assert.match(await page.locator('#model').innerText(), /Derived, not measured/);
    assert.match(await page.locator('#summary').innerText(), /most Pending pods/);
    const png = await page.screenshot({ fullPage: true });
    assert.ok(png.length > 50_000, `a screenshot with content (${png.length} bytes)`);
    await page.close();
  });

  browser.run();
}
