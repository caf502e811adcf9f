// The page as text (no browser): self-contained, escaped, bounded in size for 1,000 ranks, bricks
// painted back to front, measured times and stationary placement present when given.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { renderPlanHtml } from '../../planner/html/index.js';
import type { Plan } from '../../planner/types.js';
import { gridPlan } from './fixtures.js';

type Box = Record<'m' | 'n' | 'k', [number, number]>;

/** The boxes of the cube in the order they are painted. */
function paintedBoxes(html: string): { rank: number; box: Box }[] {
  const re =
    /<g class="brick"[^>]*data-rank="(\d+)"[^>]*data-m="(\d+),(\d+)" data-n="(\d+),(\d+)" data-k="(\d+),(\d+)"/g;
  return [...html.matchAll(re)].map((x) => {
    const v = x.slice(1).map(Number);
    return { rank: v[0]!, box: { m: [v[1]!, v[2]!], n: [v[3]!, v[4]!], k: [v[5]!, v[6]!] } };
  });
}

/** Every box painted earlier lies behind every later one along some axis (viewer at +m, +n, +k). */
function backToFront(boxes: Box[]): boolean {
  for (let i = 0; i < boxes.length; i++)
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i]!;
      const b = boxes[j]!;
      if (!(['m', 'n', 'k'] as const).some((d) => a[d][1] <= b[d][0])) return false;
    }
  return true;
}

const small = (): Plan =>
  gridPlan({ m: 300, n: 500, k: 700, grid: [2, 3, 2], hosts: 3, nodesPerHost: 4, stationary: 'B' });

describe('renderPlanHtml', () => {
  it('is one self-contained document: no external scripts, styles, fonts or images', () => {
    const html = renderPlanHtml(small());
    expect(html.startsWith('<!doctype html>')).toBe(true);
    for (const bad of ['http://', 'https://', '<link', ' src=', '@import', 'url(', '@font-face']) {
      expect(html).not.toContain(bad);
    }
    expect(html).toContain('<script>');
    expect(html).toContain('<style>');
  });

  it('escapes text that could break out of the page', () => {
    const html = renderPlanHtml(small(), { title: '</script><script>alert(1)</script>' });
    expect(html).not.toContain('<script>alert(1)');
    expect(html.split('</script>').length - 1).toBe(2); // the data block and the page script
  });

  it('draws one box per active rank, none for idle ranks, and names the idle ones', () => {
    const plan = gridPlan({ m: 64, n: 64, k: 64, grid: [2, 2, 3], hosts: 1, nodesPerHost: 13 });
    const html = renderPlanHtml(plan);
    const ranks = paintedBoxes(html).map((b) => b.rank);
    expect(ranks.sort((a, b) => a - b)).toEqual([...Array(12).keys()]);
    expect(html).toContain('Idle ranks: 12');
  });

  it('paints boxes back to front for any grid', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 5, max: 5000 }),
        fc.integer({ min: 5, max: 5000 }),
        fc.integer({ min: 5, max: 5000 }),
        (dm, dn, dk, m, n, k) => {
          const plan = gridPlan({ m, n, k, grid: [dm, dn, dk], hosts: 1, nodesPerHost: dm * dn * dk });
          const boxes = paintedBoxes(renderPlanHtml(plan)).map((b) => b.box);
          expect(backToFront(boxes)).toBe(true);
          // The check itself can fail: front to back is wrong whenever two boxes touch.
          if (boxes.length > 1) expect(backToFront([...boxes].reverse())).toBe(false);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('keeps a 1,000-rank page small: ≤ 3 polygons per rank, ≤ 64 schedule rows, colours per host', () => {
    const plan = gridPlan({
      m: 16384,
      n: 16384,
      k: 16384,
      grid: [10, 10, 10],
      hosts: 125,
      nodesPerHost: 8,
      stationary: 'A',
    });
    const html = renderPlanHtml(plan);
    expect(html.match(/<polygon/g)!.length).toBeLessThanOrEqual(3000);
    expect(html.match(/class="row-label"/g)!.length).toBeLessThanOrEqual(64);
    expect(html.length).toBeLessThan(2_500_000);
    expect(html).toContain('colours are per host');
    expect(html).not.toContain('<option value="rank">');
    expect(html).toContain('one row per host'); // placement grouped by host
  });

  it('shows measured times beside the predicted ones when given', () => {
    const plan = small();
    const without = renderPlanHtml(plan);
    expect(without).not.toContain('meas. total');
    const html = renderPlanHtml(plan, {
      measured: {
        label: 'run 1',
        ranks: plan.ranks.map((r) => ({ rank: r.rank, compute: 0.5, exchange: 0.25, total: 0.8 })),
      },
    });
    expect(html).toContain('meas. total');
    expect(html.match(/class="m-compute"/g)!.length).toBe(plan.ranks.length);
    expect(html).toContain('800 ms slowest rank (run 1)');
  });

  it('lists stationary placement per node with memory against the limit', () => {
    const html = renderPlanHtml(small());
    expect(html).toContain('Operand <b>B</b> stays resident');
    expect(html.match(/class="mode-(mirror|shard)"/g)!.length).toBe(12);
    expect(html).toContain('/ 8.0 GiB');
    expect(
      renderPlanHtml(gridPlan({ m: 8, n: 8, k: 8, grid: [1, 1, 1], hosts: 1, nodesPerHost: 1 })),
    ).toContain('No stationary operand');
  });
});
