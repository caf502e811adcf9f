// The executed schedule beside the planned one: per rank, the steps, the blocks of A and B read and
// the memory the plan predicts, next to what the rank's executor reports it did. Shown only when
// a run reported them (`redblue run gemm --report`).
import type { Plan } from '../types.js';
import { escapeHtml, fmtBytes, fmtCount } from './format.js';
import type { MeasuredRun } from './types.js';

const MAX_ROWS = 64;

export function renderExecuted(plan: Plan, measured?: MeasuredRun): string {
  const got = new Map(
    (measured?.ranks ?? []).flatMap((m) => (m.executed ? [[m.rank, m.executed] as const] : [])),
  );
  if (got.size === 0) return '';
  const bpe = plan.dtype.bytesPerElement;
  const cell = (planned: string, executed: string | undefined, ok: boolean) =>
    `<td>${planned}</td><td${ok ? '' : ' class="over"'}>${executed ?? '-'}</td>`;
  const rows = plan.ranks.slice(0, MAX_ROWS).map((r) => {
    const e = got.get(r.rank);
    const blockBytes = r.bricks.reduce(
      (t, b) => t + (b.k[1] - b.k[0]) * (b.m[1] - b.m[0] + b.n[1] - b.n[0]) * bpe,
      0,
    );
    return (
      `<tr><td>${r.rank}</td>` +
      cell(fmtCount(r.bricks.length), e && fmtCount(e.steps), !e || e.steps === r.bricks.length) +
      cell(
        fmtCount(2 * r.bricks.length),
        e && fmtCount(e.blocksFetched),
        !e || e.blocksFetched === 2 * r.bricks.length,
      ) +
      cell(fmtBytes(blockBytes), e && fmtBytes(e.bytesFetched), !e || e.bytesFetched === blockBytes) +
      cell(
        fmtBytes(r.peakMemoryBytes),
        e && fmtBytes(e.localPeakBytes),
        !e || e.localPeakBytes <= r.peakMemoryBytes,
      ) +
      '</tr>'
    );
  });
  const more =
    plan.ranks.length > MAX_ROWS
      ? `<p class="hint">… and ${plan.ranks.length - MAX_ROWS} more rank(s).</p>`
      : '';
  const s = plan.strategy.sequential;
  return (
    `<section id="executed"><h2>Executed schedule beside the planned one</h2>` +
    `<p class="hint">Planned: ${s.m}×${s.n}×${s.k} sequential chunks per rank (${escapeHtml(s.reason)}). ` +
    `Executed: what each executor's native step reports it did. Blocks are those of A and B each step reads; ` +
    `memory is the plan's peak per rank beside the node-local bytes the executor mapped at most. ` +
    `A figure that differs from the plan is marked.</p>` +
    `<table class="executed"><thead><tr><th>rank</th><th>steps planned</th><th>executed</th>` +
    `<th>blocks planned</th><th>fetched</th><th>block bytes planned</th><th>fetched</th>` +
    `<th>peak memory planned</th><th>node-local peak</th></tr></thead><tbody>${rows.join('')}</tbody></table>${more}</section>`
  );
}
