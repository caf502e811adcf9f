// Opens the plan page in a real headless Chromium (Debian's /usr/bin/chromium, never a downloaded
// browser) with the network off: one brick per active rank, a hover shows the rank's label, no
// console errors, no network requests; screenshots at 1280×800 go to test-output/viz/.
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fmtSeconds } from '../../planner/html/format.js';
import { writePlanHtml } from '../../planner/html/index.js';
import type { Plan } from '../../planner/types.js';
import { measuredFor, PLANS } from './plans.js';

// Runs inside the page (tsconfig has no DOM lib).
declare const getComputedStyle: (e: unknown) => { fill: string };

const OUT = join(process.cwd(), 'test-output', 'viz');
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const cases: { name: string; plan: () => Plan; measured?: boolean }[] = [
  { name: 'ranks-1', plan: PLANS.one },
  { name: 'ranks-2', plan: PLANS.two, measured: true },
  { name: 'ranks-12-hosts-3', plan: PLANS.twelve, measured: true },
  { name: 'ranks-12-hosts-3-stationary', plan: PLANS.twelveStationary },
  { name: 'ranks-1000', plan: PLANS.thousand },
];

describe('plan page in headless Chromium', () => {
  let browser: Browser;
  let context: BrowserContext;
  let dir: string;
  const requests: string[] = [];

  beforeAll(async () => {
    mkdirSync(OUT, { recursive: true });
    dir = mkdtempSync(join(tmpdir(), 'redblue-viz-'));
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
    context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    await context.setOffline(true);
    // Anything but the page itself is a failure: the file must be self-contained.
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith('file:')) return route.continue();
      requests.push(url);
      return route.abort();
    });
  });

  afterAll(async () => {
    await browser?.close();
  });

  for (const c of cases) {
    it(`${c.name}: one brick per active rank, hover label, no errors`, async () => {
      const plan = c.plan();
      const file = join(dir, `${c.name}.html`);
      writePlanHtml(plan, file, c.measured ? { measured: measuredFor(plan) } : {});
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('console', (msg) => {
        if (msg.type() === 'error' || msg.type() === 'warning') errors.push(`${msg.type()}: ${msg.text()}`);
      });
      page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
      await page.goto(pathToFileURL(file).href);

      const active = plan.ranks.filter((r) => r.bricks.length > 0).map((r) => r.rank);
      const drawn = await page.$$eval('#cube .brick', (els) =>
        els.map((e) => Number(e.getAttribute('data-rank'))),
      );
      expect([...new Set(drawn)].sort((a, b) => a - b)).toEqual(active);

      // The last brick is painted last, so it is in front and can be pointed at.
      const last = page.locator('#cube .brick').last();
      const rank = Number(await last.getAttribute('data-rank'));
      await last.hover();
      const tip = page.locator('#tooltip');
      await expect.poll(() => tip.isVisible()).toBe(true);
      const text = await tip.innerText();
      const r = plan.ranks[rank]!;
      const box = r.bricks;
      expect(text).toContain(`rank ${rank} · host ${r.host} · node ${r.node}`);
      expect(text).toContain(`predicted ${fmtSeconds(r.time.total)} = compute`);
      if (c.measured) expect(text).toContain('measured ');
      expect(text).toContain(
        `m [${Math.min(...box.map((b) => b.m[0]))}, ${Math.max(...box.map((b) => b.m[1]))})`,
      );
      expect(text).toContain(
        `k [${Math.min(...box.map((b) => b.k[0]))}, ${Math.max(...box.map((b) => b.k[1]))})`,
      );

      // The table renders a window of rows, not all 1,000.
      const rows = await page.locator('#rank-table tbody tr:not(.spacer)').count();
      expect(rows).toBeGreaterThan(0);
      expect(rows).toBeLessThanOrEqual(Math.min(plan.ranks.length, 40));
      if (c.measured)
        await expect
          .poll(() => page.locator('#rank-table thead th', { hasText: 'meas. total' }).count())
          .toBe(1);

      // Readable at 1280×800: nothing wider than the window, the cube fully inside it.
      expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(1280);
      const cubeBox = (await page.locator('#cube').boundingBox())!;
      expect(cubeBox.x + cubeBox.width).toBeLessThanOrEqual(1280);
      expect(cubeBox.y + cubeBox.height).toBeLessThanOrEqual(800);

      await page.screenshot({ path: join(OUT, `${c.name}.png`) });
      await page.screenshot({ path: join(OUT, `${c.name}-full.png`), fullPage: true });
      expect(errors).toEqual([]);
      expect(requests).toEqual([]);
      await page.close();
    });
  }

  it('2,048 ranks: merged boxes name their ranks when pointed at', async () => {
    const plan = PLANS.merged();
    const file = join(dir, 'merged.html');
    writePlanHtml(plan, file);
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    await page.goto(pathToFileURL(file).href);
    expect(await page.locator('#cube .brick').count()).toBeLessThanOrEqual(1500);
    const last = page.locator('#cube .brick').last();
    const count = await last.getAttribute('data-count');
    const ranks = await last.getAttribute('data-ranks');
    expect(Number(count)).toBeGreaterThan(1);
    await last.hover();
    await expect.poll(() => page.locator('#tooltip').innerText()).toContain(`${count} ranks: ${ranks}`);
    await page.screenshot({ path: join(OUT, 'ranks-2048-merged.png') });
    expect(errors).toEqual([]);
    await page.close();
  });

  it('controls: colour by host, peel away k layers, click a brick to find its table row', async () => {
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    const open = async (p: Plan, name: string) => {
      const file = join(dir, `${name}.html`);
      writePlanHtml(p, file);
      await page.goto(pathToFileURL(file).href);
    };
    await open(PLANS.twelve(), 'controls-12');
    const fillOf = (rank: number) =>
      page
        .locator(`#cube .brick[data-rank="${rank}"] .t`)
        .first()
        .evaluate((e) => getComputedStyle(e).fill);
    // Ranks 0 and 1 share host 0: distinct colours per rank, the same colour per host.
    expect(await fillOf(0)).not.toBe(await fillOf(1));
    await page.selectOption('#colour-mode', 'host');
    expect(await fillOf(0)).toBe(await fillOf(1));
    expect(await fillOf(0)).not.toBe(await fillOf(4));

    const last = page.locator('#cube .brick').last();
    const rank = await last.getAttribute('data-rank');
    await last.click();
    await expect
      .poll(() => page.locator('#rank-table tbody tr.selected').getAttribute('data-rank'))
      .toBe(rank);

    // Split along k only: peeling to the first layer leaves the one brick at k = 0.
    await open(PLANS.longK(), 'controls-longk');
    const visible = () => page.locator('#cube .brick:visible').count();
    expect(await visible()).toBe(4);
    await page.locator('#peel').fill('0');
    expect(await visible()).toBe(1);
    expect(await page.locator('#cube .brick:visible').getAttribute('data-k0')).toBe('0');
    expect(errors).toEqual([]);
    await page.close();
  });
});
