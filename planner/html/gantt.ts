// The predicted schedule per rank as a Gantt chart: for each sequential step, fetch A and B, then
// compute; finally send partial C (reduce). The planner gives each rank's compute and communication
// time; here they are split across steps by brick size and by the elements each step moves.
// More than 64 ranks: one row per group (host, or a block of ranks) showing its slowest rank.
import type { Brick, Plan, RankPlan } from '../types.js';
import { escapeHtml, fmtSeconds } from './format.js';
import type { MeasuredRank, MeasuredRun } from './types.js';

const MAX_ROWS = 64;
const MAX_RECTS = 2500;
const LABEL_W = 200;
const PLOT_W = 950;
const ROW_H = 16;

interface Segment {
  kind: 'fetch' | 'compute' | 'reduce';
  start: number;
  duration: number;
  step: number;
}

const brickVolume = (b: Brick) => (b.m[1] - b.m[0]) * (b.n[1] - b.n[0]) * (b.k[1] - b.k[0]);

function fetchesPerStep(plan: Plan): Map<number, number[]> | null {
  if (plan.schedule.omitted || plan.schedule.transfers.length === 0) return null;
  const out = new Map<number, number[]>();
  for (const t of plan.schedule.transfers) {
    if (t.phase !== 'fetch') continue;
    const arr = out.get(t.to) ?? [];
    arr[t.step] = (arr[t.step] ?? 0) + t.elements;
    out.set(t.to, arr);
  }
  return out;
}

export function rankSegments(r: RankPlan, fetched: number[] | null, mergeSteps: boolean): Segment[] {
  const steps = mergeSteps ? 1 : Math.max(1, r.bricks.length);
  const vol = r.volume;
  const moved = vol.A + vol.B + vol.C;
  const comm = r.time.communication;
  const fetchT = moved > 0 ? (comm * (vol.A + vol.B)) / moved : comm;
  const reduceT = comm - fetchT;
  const volumes = mergeSteps ? [r.bricks.reduce((s, b) => s + brickVolume(b), 0)] : r.bricks.map(brickVolume);
  const totalVol = volumes.reduce((s, v) => s + v, 0);
  const fetchedTotal = fetched && !mergeSteps ? fetched.reduce((s, v) => s + (v ?? 0), 0) : 0;
  const segs: Segment[] = [];
  let t = 0;
  for (let i = 0; i < steps; i++) {
    const f = fetchedTotal > 0 ? (fetchT * (fetched![i] ?? 0)) / fetchedTotal : fetchT / steps;
    if (f > 0) segs.push({ kind: 'fetch', start: t, duration: f, step: i });
    t += f;
    const c = totalVol > 0 ? (r.time.compute * (volumes[i] ?? 0)) / totalVol : r.time.compute / steps;
    if (c > 0) segs.push({ kind: 'compute', start: t, duration: c, step: i });
    t += c;
  }
  if (reduceT > 0) segs.push({ kind: 'reduce', start: t, duration: reduceT, step: steps - 1 });
  return segs;
}

interface GanttRow {
  label: string;
  rank: RankPlan;
  measured?: MeasuredRank;
}

function rowsOf(plan: Plan, measured: Map<number, MeasuredRank>): { rows: GanttRow[]; note: string } {
  const withMeasured = (r: RankPlan) => ({ rank: r, measured: measured.get(r.rank) });
  if (plan.ranks.length <= MAX_ROWS) {
    return {
      rows: plan.ranks.map((r) => ({ label: `rank ${r.rank} · h${r.host} n${r.node}`, ...withMeasured(r) })),
      note: '',
    };
  }
  const groups = new Map<string, RankPlan[]>();
  const byHost = plan.cluster.hosts >= 2 && plan.cluster.hosts <= MAX_ROWS;
  const block = Math.ceil(plan.ranks.length / 50);
  for (const r of plan.ranks) {
    const key = byHost
      ? `host ${r.host}`
      : `r${Math.floor(r.rank / block) * block}–${Math.min(plan.ranks.length, (Math.floor(r.rank / block) + 1) * block) - 1}`;
    const g = groups.get(key) ?? [];
    g.push(r);
    groups.set(key, g);
  }
  const rows: GanttRow[] = [];
  for (const [key, ranks] of groups) {
    const slowest = ranks.reduce((a, b) => (b.time.total > a.time.total ? b : a));
    rows.push({ label: `${key}: slowest r${slowest.rank}`, ...withMeasured(slowest) });
  }
  return {
    rows,
    note: `${plan.ranks.length} ranks: one row per ${byHost ? 'host' : `block of ${block} ranks`}, showing its slowest rank.`,
  };
}

/** 1, 2 or 5 times a power of ten, so that about `count` ticks span [0, max]. */
function niceStep(max: number, count: number): number {
  const raw = max / count;
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  return [1, 2, 5, 10].map((f) => f * p).find((s) => s >= raw) ?? 10 * p;
}

export function renderGantt(plan: Plan, measuredRun?: MeasuredRun): string {
  const measured = new Map((measuredRun?.ranks ?? []).map((m) => [m.rank, m]));
  const { rows, note } = rowsOf(plan, measured);
  const fetched = fetchesPerStep(plan);
  const steps = Math.max(1, plan.schedule.steps);
  const mergeSteps = rows.length * (2 * steps + 1) > MAX_RECTS;
  const maxT = Math.max(
    1e-12,
    ...rows.map((r) => r.rank.time.total),
    ...rows.map((r) => r.measured?.total ?? 0),
  );
  const rowH = ROW_H + (measured.size > 0 ? 9 : 0) + 4;
  const top = 8;
  const height = top + rows.length * rowH + 34;
  const x = (t: number) => LABEL_W + (t / maxT) * PLOT_W;
  const parts: string[] = [];
  const step = niceStep(maxT, 8);
  for (let t = 0; t <= maxT * 1.0001; t += step) {
    const xx = x(t).toFixed(1);
    parts.push(
      `<line class="grid" x1="${xx}" x2="${xx}" y1="${top}" y2="${height - 26}"/>` +
        `<text class="tick" x="${xx}" y="${height - 12}" text-anchor="middle">${escapeHtml(fmtSeconds(t))}</text>`,
    );
  }
  rows.forEach((row, i) => {
    const y = top + i * rowH;
    const r = row.rank;
    parts.push(
      `<text class="row-label" x="${LABEL_W - 8}" y="${y + ROW_H - 4}" text-anchor="end">${escapeHtml(row.label)}</text>`,
    );
    if (r.bricks.length === 0) {
      parts.push(`<text class="idle" x="${LABEL_W + 4}" y="${y + ROW_H - 4}">idle</text>`);
    }
    for (const s of rankSegments(r, fetched?.get(r.rank) ?? null, mergeSteps)) {
      const title = `rank ${r.rank} step ${s.step + 1}: ${s.kind} ${fmtSeconds(s.duration)} (from ${fmtSeconds(s.start)})`;
      parts.push(
        `<rect class="g-${s.kind}" x="${x(s.start).toFixed(1)}" y="${y}" width="${Math.max(0.5, x(s.start + s.duration) - x(s.start)).toFixed(1)}" height="${ROW_H}"><title>${escapeHtml(title)}</title></rect>`,
      );
    }
    const m = row.measured;
    if (m) {
      const my = y + ROW_H + 1;
      const title = `rank ${r.rank} measured: compute ${fmtSeconds(m.compute)}, exchange ${fmtSeconds(m.exchange)}, total ${fmtSeconds(m.total)}`;
      parts.push(
        `<g class="measured"><title>${escapeHtml(title)}</title>` +
          `<rect class="m-compute" x="${x(0)}" y="${my}" width="${(x(m.compute) - x(0)).toFixed(1)}" height="7"/>` +
          `<rect class="m-exchange" x="${x(m.compute).toFixed(1)}" y="${my}" width="${(x(m.compute + m.exchange) - x(m.compute)).toFixed(1)}" height="7"/>` +
          `<line class="m-total" x1="${x(m.total).toFixed(1)}" x2="${x(m.total).toFixed(1)}" y1="${my - 2}" y2="${my + 9}"/></g>`,
      );
    }
  });
  const legend =
    '<div class="legend-gantt"><span><i class="sw g-fetch"></i>fetch A, B</span><span><i class="sw g-compute"></i>compute</span>' +
    '<span><i class="sw g-reduce"></i>send partial C</span>' +
    (measured.size > 0
      ? '<span><i class="sw m-compute"></i>measured compute</span><span><i class="sw m-exchange"></i>measured exchange</span><span><i class="sw m-total-sw"></i>measured total</span>'
      : '') +
    '</div>';
  const notes = [
    note,
    mergeSteps ? 'Steps merged into one fetch and one compute bar per row (too many to draw).' : '',
  ]
    .filter(Boolean)
    .map((n) => `<p class="hint">${escapeHtml(n)}</p>`)
    .join('');
  return (
    legend +
    `<div class="gantt-scroll"><svg id="gantt" viewBox="0 0 ${LABEL_W + PLOT_W + 20} ${height}" style="width:100%;min-width:900px">${parts.join('')}</svg></div>` +
    notes +
    '<p class="hint">Communication time is split between fetch and reduce by the elements each moves; no overlap of compute and communication is assumed (as in the planner\'s model).</p>'
  );
}
