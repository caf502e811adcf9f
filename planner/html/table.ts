// Data of the per-rank table. The page renders only the rows in view (1,000 ranks stay fast), so
// each cell travels as [raw value for sorting, formatted text]. A last row holds column maxima.
import type { Brick, Plan, RankPlan } from '../types.js';
import { fmtBytes, fmtCount, fmtElements, fmtSeconds } from './format.js';
import type { MeasuredRank, MeasuredRun } from './types.js';

export interface TableData {
  /** key: what the page's script looks cells up by (brick tooltips); label: the heading. */
  columns: { key: string; label: string }[];
  /** One per rank, in rank order: cells of [sort key, text]. */
  rows: [number | string, string][][];
  /** Column maxima: [text, rank that has it], null where a maximum means nothing. */
  max: ([string, number] | null)[];
}

const size = (b: Brick) => [b.m[1] - b.m[0], b.n[1] - b.n[0], b.k[1] - b.k[0]] as const;
const vol = (b: Brick) => size(b).reduce((a, x) => a * x, 1);

function largestBrick(r: RankPlan): Brick | null {
  return r.bricks.reduce<Brick | null>((a, b) => (!a || vol(b) > vol(a) ? b : a), null);
}

export function tableData(plan: Plan, measuredRun?: MeasuredRun): TableData {
  const measured = new Map<number, MeasuredRank>((measuredRun?.ranks ?? []).map((m) => [m.rank, m]));
  const hasMeasured = measuredRun !== undefined;
  const columns = (
    [
      ['rank', 'rank'],
      ['host', 'host'],
      ['node', 'node'],
      ['steps', 'steps'],
      ['brick', 'brick m×n×k'],
      ['madds', 'mult-adds'],
      ['peak', 'peak mem.'],
      ['fetched', 'A+B in'],
      ['sent', 'C out'],
      ['network', 'network'],
      ['compute', 'compute'],
      ['comm', 'comm.'],
      ['total', 'total'],
      ...(hasMeasured
        ? [
            ['mCompute', 'meas. compute'],
            ['mExchange', 'meas. exchange'],
            ['mTotal', 'meas. total'],
          ]
        : []),
    ] as [string, string][]
  ).map(([key, label]) => ({ key, label }));
  const sec = (s: number | undefined): [number, string] => (s === undefined ? [-1, '-'] : [s, fmtSeconds(s)]);
  const rows = plan.ranks.map((r) => {
    const b = largestBrick(r);
    const dims = b ? size(b) : null;
    const v = r.volume;
    const m = measured.get(r.rank);
    const cells: [number | string, string][] = [
      [r.rank, String(r.rank)],
      [r.host, String(r.host)],
      [r.node, String(r.node)],
      [r.bricks.length, r.bricks.length ? String(r.bricks.length) : 'idle'],
      [b ? vol(b) : 0, dims ? dims.join('×') : '-'],
      [r.multiplyAdds, fmtCount(r.multiplyAdds)],
      [r.peakMemoryBytes, fmtBytes(r.peakMemoryBytes)],
      [v.A + v.B, fmtElements(v.A + v.B)],
      [v.C, fmtElements(v.C)],
      [v.perLinkClass.network, fmtElements(v.perLinkClass.network)],
      sec(r.time.compute),
      sec(r.time.communication),
      sec(r.time.total),
      ...(hasMeasured ? [sec(m?.compute), sec(m?.exchange), sec(m?.total)] : []),
    ];
    return cells;
  });
  const textCols = new Set([0, 1, 2, 4]);
  const max = columns.map((_, c) => {
    if (textCols.has(c) || rows.length === 0) return null;
    const best = rows.reduce((a, row) => ((row[c]![0] as number) > (a[c]![0] as number) ? row : a));
    return [best[c]![1], best[0]![0] as number] as [string, number];
  });
  return { columns, rows, max };
}
