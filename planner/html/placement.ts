// Where a stationary operand (weights) lives: per node, mirror (a full copy) or shard (the block its
// bricks need), with that node's memory use against its limit. Above 64 nodes: one row per host.
import type { Placement, Plan } from '../types.js';
import { escapeHtml, fmtBytes, fmtRange } from './format.js';

const MAX_ROWS = 64;

function meter(placed: number, peak: number, limit: number): string {
  const pct = (v: number) => Math.min(100, (v / Math.max(limit, 1)) * 100).toFixed(1);
  const over = Math.max(placed, peak) > limit;
  return (
    `<span class="meter${over ? ' over' : ''}" title="operand ${fmtBytes(placed)}, peak ${fmtBytes(peak)} of ${fmtBytes(limit)}">` +
    `<span class="m-peak" style="width:${pct(Math.max(placed, peak))}%"></span>` +
    `<span class="m-placed" style="width:${pct(placed)}%"></span></span>` +
    `<span class="meter-text">${fmtBytes(Math.max(placed, peak))} / ${fmtBytes(limit)}</span>`
  );
}

function blockText(p: Placement): string {
  if (!p.block) return '-';
  return `rows ${fmtRange(p.block.rows)} × cols ${fmtRange(p.block.cols)}`;
}

export function renderPlacement(plan: Plan): string {
  const stationary = plan.options.stationary;
  if (!stationary || plan.placement.length === 0) {
    return '<p class="hint">No stationary operand in this plan (plan with <code>--stationary A</code> or <code>--stationary B</code> to keep weights resident).</p>';
  }
  const limit = plan.memory.limitBytes;
  const peakOf = (rank: number) => plan.memory.perRank[rank] ?? 0;
  const mirrors = plan.placement.filter((p) => p.mode === 'mirror').length;
  const summary =
    `<p>Operand <b>${escapeHtml(stationary)}</b> stays resident: ${mirrors} node(s) hold a mirror, ` +
    `${plan.placement.length - mirrors} a shard. Bars: the operand (dark) and the rank's peak memory (light) against the per-node limit of ${fmtBytes(limit)}.</p>`;
  const reasons = [...new Set(plan.placement.map((p) => p.reason))];
  const more = reasons.length > 6 ? `<li>… and ${reasons.length - 6} more (see the plan's JSON)</li>` : '';
  const reasonList = `<ul class="reasons">${reasons
    .slice(0, 6)
    .map((r) => `<li>${escapeHtml(r)}</li>`)
    .join('')}${more}</ul>`;
  let table: string;
  if (plan.placement.length <= MAX_ROWS) {
    table =
      '<table class="placement"><thead><tr><th>host</th><th>node</th><th>rank</th><th>mode</th><th>block held</th><th>operand size</th><th>memory used / node memory</th></tr></thead><tbody>' +
      plan.placement
        .map(
          (p) =>
            `<tr><td>${p.host}</td><td>${p.node}</td><td>${p.rank}</td><td class="mode-${p.mode}">${p.mode}</td>` +
            `<td>${escapeHtml(blockText(p))}</td><td>${fmtBytes(p.bytes)}</td><td>${meter(p.bytes, peakOf(p.rank), limit)}</td></tr>`,
        )
        .join('') +
      '</tbody></table>';
  } else {
    const hosts = new Map<number, Placement[]>();
    for (const p of plan.placement) hosts.set(p.host, [...(hosts.get(p.host) ?? []), p]);
    const rows = [...hosts.entries()].slice(0, 200).map(([h, ps]) => {
      const worst = ps.reduce((a, b) =>
        Math.max(b.bytes, peakOf(b.rank)) > Math.max(a.bytes, peakOf(a.rank)) ? b : a,
      );
      const nm = ps.filter((p) => p.mode === 'mirror').length;
      return (
        `<tr><td>${h}</td><td>${ps.length}</td><td>${nm} mirror, ${ps.length - nm} shard</td>` +
        `<td>${fmtBytes(ps.reduce((s, p) => s + p.bytes, 0))}</td><td>node ${worst.node} (rank ${worst.rank}): ${meter(worst.bytes, peakOf(worst.rank), limit)}</td></tr>`
      );
    });
    table =
      `<p class="hint">${plan.placement.length} nodes: one row per host${hosts.size > 200 ? ' (first 200 hosts)' : ''}; the bar shows the host's fullest node.</p>` +
      '<table class="placement"><thead><tr><th>host</th><th>nodes</th><th>modes</th><th>operand bytes on host</th><th>fullest node</th></tr></thead><tbody>' +
      rows.join('') +
      '</tbody></table>';
  }
  return summary + reasonList + table;
}
