// The model-split page (`redblue generate --dry-run --html FILE`) in a real headless Chromium
// with the network off: every rank that holds part of an axis has its band there, a band names
// its rank and range when pointed at, no console errors, no requests.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeModelSplitHtml } from '../../planner/html/model-split.js';
import { planModelSplit, type ModelShape } from '../../planner/model-split.js';
import { tinyLlamaQ4_0 } from '../helpers/model-shapes.js';

const OUT = join(process.cwd(), 'test-output', 'viz');

// TinyLlama's shape in Q4_0: 4 KV heads over 3 ranks cannot be even.
const SHAPE: ModelShape = tinyLlamaQ4_0();

describe('model split page in headless Chromium', () => {
  let browser: Browser;
  let dir: string;

  beforeAll(async () => {
    mkdirSync(OUT, { recursive: true });
    dir = mkdtempSync(join(tmpdir(), 'redblue-split-'));
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--disable-background-networking',
      ],
    });
  });
  afterAll(async () => {
    await browser?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const ranks of [1, 3]) {
    it(`${ranks} rank(s): one band per rank and axis, labels on hover`, async () => {
      const split = planModelSplit(
        SHAPE,
        Array.from({ length: ranks }, () => ({ rate: 1 })),
        { context: 2048 },
      );
      const file = join(dir, `split-${ranks}.html`);
      writeModelSplitHtml(split, file, { model: 'tinyllama-q4_0.gguf', description: 'llama, 22 layers' });
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      await context.setOffline(true);
      const requests: string[] = [];
      await context.route('**/*', (route) => {
        const url = route.request().url();
        if (url.startsWith('file:')) return route.continue();
        requests.push(url);
        return route.abort();
      });
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning') errors.push(m.text());
      });
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(pathToFileURL(file).href);

      const bars = page.locator('svg.split-bar');
      expect(await bars.count()).toBe(4);
      const kv = await bars
        .nth(0)
        .locator('rect.part')
        .evaluateAll((els) => els.map((e) => e.getAttribute('data-rank')));
      expect(kv).toEqual(split.ranks.filter((r) => r.kvHeads[1] > r.kvHeads[0]).map((r) => String(r.rank)));
      const vocab = bars.nth(3).locator('rect.part');
      expect(await vocab.count()).toBe(ranks);
      const last = split.ranks[ranks - 1]!;
      expect(await vocab.last().locator('title').textContent()).toBe(
        `rank ${last.rank}: vocabulary rows [${last.vocab[0]}, ${last.vocab[1]})`,
      );
      expect(await page.locator('#rank-table tbody tr').count()).toBe(ranks);
      expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(1280);
      await page.screenshot({ path: join(OUT, `model-split-${ranks}.png`), fullPage: true });
      expect(errors).toEqual([]);
      expect(requests).toEqual([]);
      await context.close();
    });
  }
});
