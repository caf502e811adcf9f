// The page as text (no browser): self-contained, escaped, bounded in size for 1,000 ranks, bricks
// painted back to front, measured times and stationary placement present when given.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compactList, fmtSeconds } from '../../planner/html/format.js';
import { renderPlanHtml } from '../../planner/html/index.js';
import type { Plan } from '../../planner/types.js';
import { hostsCluster, ranksCluster } from '../../planner/cluster.js';
import { plan } from '../../planner/index.js';
import { measuredFor, PLANS } from './plans.js';

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

const small = (): Plan => PLANS.twelveStationary();

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
    const p = plan({ m: 2, n: 2, k: 2, dtype: 'f32' }, ranksCluster(16));
    expect(p.strategy.idleRanks.length).toBeGreaterThan(0);
    const html = renderPlanHtml(p);
    const active = p.ranks.filter((r) => r.bricks.length > 0).map((r) => r.rank);
    expect([...new Set(paintedBoxes(html).map((b) => b.rank))].sort((a, b) => a - b)).toEqual(active);
    expect(html).toContain(`Idle ranks: ${compactList(p.strategy.idleRanks)}`);
  });

  it("paints boxes back to front for the planner's grids and recursive splits", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 5000 }),
        fc.integer({ min: 1, max: 5000 }),
        fc.integer({ min: 1, max: 5000 }),
        (hosts, nodes, m, n, k) => {
          const p = plan({ m, n, k, dtype: 'f32' }, hostsCluster(hosts, nodes));
          const boxes = paintedBoxes(renderPlanHtml(p)).map((b) => b.box);
          expect(backToFront(boxes)).toBe(true);
          // The check itself can fail: front to back is wrong whenever two boxes touch.
          if (boxes.length > 1) expect(backToFront([...boxes].reverse())).toBe(false);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('keeps a 1,000-rank page small: ≤ 3 polygons per rank, ≤ 64 schedule rows, colours per host', () => {
    const p = plan({ m: 16384, n: 16384, k: 16384, dtype: 'f32' }, hostsCluster(125, 8), { stationary: 'A' });
    const html = renderPlanHtml(p);
    expect(html.match(/<polygon/g)!.length).toBeLessThanOrEqual(3000);
    expect(html.match(/class="row-label"/g)!.length).toBeLessThanOrEqual(64);
    expect(html.length).toBeLessThan(2_500_000);
    expect(html).toContain('colours are per host');
    expect(html).not.toContain('<option value="rank">');
    expect(html).toContain('one row per host'); // placement grouped by host
  });

  it('merges neighbouring ranks into at most 1,500 boxes, each active rank in exactly one', () => {
    const p = PLANS.merged();
    const html = renderPlanHtml(p);
    expect(html.match(/<polygon/g)!.length).toBeLessThanOrEqual(4500);
    const lists = [...html.matchAll(/data-count="(\d+)" data-ranks="([^"]+)"/g)];
    expect(lists.length).toBeGreaterThan(0);
    const covered = lists.flatMap((x) => {
      const ranks = x[2]!.split(', ').flatMap((part) => {
        const [a, b] = part.split('–').map(Number);
        return Array.from({ length: (b ?? a!) - a! + 1 }, (_, i) => a! + i);
      });
      expect(ranks.length).toBe(Number(x[1]));
      return ranks;
    });
    const drawnSingles = [...html.matchAll(/<g class="brick"(?![^>]*data-count)[^>]*data-rank="(\d+)"/g)].map(
      (x) => Number(x[1]),
    );
    const all = [...covered, ...drawnSingles].sort((a, b) => a - b);
    const active = p.ranks.filter((r) => r.bricks.length > 0).map((r) => r.rank);
    expect(all).toEqual(active);
    expect(html).toContain('neighbouring ranks are merged');
  });

  it('shows measured times beside the predicted ones when given', () => {
    const p = PLANS.twelve();
    expect(renderPlanHtml(p)).not.toContain('meas. total');
    const measured = measuredFor(p);
    const html = renderPlanHtml(p, { measured });
    expect(html).toContain('meas. total');
    expect(html.match(/class="m-compute"/g)!.length).toBe(p.ranks.length);
    const slowest = Math.max(...measured.ranks.map((r) => r.total));
    expect(html).toContain(`${fmtSeconds(slowest)} slowest rank (test numbers)`);
  });

  it('shows the executed schedule beside the planned one, marking what differs', () => {
    const p = PLANS.two();
    expect(renderPlanHtml(p, { measured: measuredFor(p) })).not.toContain('id="executed"');
    const asPlanned = (r: Plan['ranks'][number]) => ({
      steps: r.bricks.length,
      blocksFetched: 2 * r.bricks.length,
      bytesFetched: r.bricks.reduce(
        (t, b) => t + (b.k[1] - b.k[0]) * (b.m[1] - b.m[0] + b.n[1] - b.n[0]) * p.dtype.bytesPerElement,
        0,
      ),
      localPeakBytes: Math.floor(r.peakMemoryBytes / 2),
    });
    const measured = measuredFor(p);
    measured.ranks = measured.ranks.map((m) => ({ ...m, executed: asPlanned(p.ranks[m.rank]!) }));
    const html = renderPlanHtml(p, { measured });
    expect(html).toContain('Executed schedule beside the planned one');
    expect(html.match(/<tr><td>\d+<\/td>/g)).toHaveLength(p.ranks.length);
    expect(html).not.toMatch(/<td class="over">/);
    // a rank that ran one step fewer and went over its peak is marked twice
    const first = measured.ranks[0]!;
    first.executed = { ...first.executed!, steps: first.executed!.steps - 1, localPeakBytes: 1e15 };
    expect(renderPlanHtml(p, { measured }).match(/<td class="over">/g)).toHaveLength(2);
  });

  it('lists stationary placement per node with memory against the limit', () => {
    const p = small();
    const html = renderPlanHtml(p);
    expect(html).toContain('Operand <b>B</b> stays resident');
    const modes = html.match(/class="mode-(mirror|shard)">(mirror|shard)</g)!;
    expect(modes.length).toBe(12);
    expect(modes.filter((x) => x.endsWith('shard<')).length).toBe(
      p.placement.filter((x) => x.mode === 'shard').length,
    );
    expect(html).toContain('/ 600 MiB');
    expect(renderPlanHtml(PLANS.one())).toContain('No stationary operand');
  });
});
