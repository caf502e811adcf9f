// renderPlanHtml: one self-contained HTML page (inline CSS and JS, no network, system fonts) that
// pictures a Plan: the iteration cube split into bricks, communication volume against the lower
// bound and the baselines, the per-rank table, the predicted schedule (and, after a run, the executed
// one beside it), and stationary placement.
import type { Plan } from '../types.js';
import { renderVolumeBars } from './bars.js';
import { CLIENT_SCRIPT } from './client.js';
import { coloursFor, MAX_DISTINCT, type Colours, type ColourMode } from './colours.js';
import { renderCube } from './cube.js';
import { compactList, escapeHtml, fmtBytes, fmtCount, fmtRatio, fmtSeconds } from './format.js';
import { renderExecuted } from './executed.js';
import { renderGantt } from './gantt.js';
import { renderPlacement } from './placement.js';
import { STYLE } from './style.js';
import { tableData } from './table.js';
import type { MeasuredRun } from './types.js';

export interface RenderOptions {
  measured?: MeasuredRun;
  title?: string;
}

const MODE_LABEL: Record<ColourMode, string> = { rank: 'rank (host · node)', host: 'host', node: 'node' };

function legend(plan: Plan, colours: Colours, mode: ColourMode): string {
  const sw = (c: string) => `<i class="sw" style="background:${c}"></i>`;
  const hosts = plan.cluster.hosts;
  let body: string;
  if (mode === 'rank') {
    const groups: string[] = [];
    for (let h = 0; h < hosts; h++) {
      const ranks = plan.ranks.filter((r) => r.host === h);
      groups.push(
        `<span class="host-group">host ${h}:${ranks.map((r) => `${sw(colours.rank(r.rank, r.host, r.node))}${r.rank}`).join('')}</span>`,
      );
    }
    body = groups.join('');
  } else if (mode === 'host') {
    body =
      hosts <= MAX_DISTINCT
        ? Array.from({ length: hosts }, (_, h) => `<span>${sw(colours.host(h))}host ${h}</span>`).join('')
        : `<span>host 0<i class="ramp" style="background:linear-gradient(90deg,${[0, 0.25, 0.5, 0.75, 1]
            .map((f) => colours.host(Math.round(f * (hosts - 1))))
            .join(',')})"></i>host ${hosts - 1} (one hue per host; point at a brick for its rank)</span>`;
  } else {
    const nodes = Math.max(...plan.cluster.nodesPerHost, 1);
    body = Array.from(
      { length: Math.min(nodes, MAX_DISTINCT) },
      (_, j) => `<span>${sw(colours.node(j))}node ${j}</span>`,
    ).join('');
  }
  return `<div class="legend" data-mode="${mode}">${body}</div>`;
}

function summary(plan: Plan, measured?: MeasuredRun): string {
  const p = plan.problem;
  const chip = (label: string, value: string) =>
    `<span class="chip"><span>${escapeHtml(label)}</span> <b>${escapeHtml(value)}</b></span>`;
  const idle = plan.strategy.idleRanks;
  const c = plan.cluster;
  // Ranks from listedRanks on are idle too, in no list: name them as one range.
  const idleList = [compactList(idle), c.listedRanks < c.ranks ? `${c.listedRanks}–${c.ranks - 1}` : '']
    .filter(Boolean)
    .join(', ');
  const chips = [
    chip(
      'C = A·B:',
      `${p.m} × ${p.n} × ${p.k} (m × n × k), ${p.dtype} (${plan.dtype.bytesPerElement} B/element)`,
    ),
    chip(
      'cluster:',
      `${c.hosts} host(s), ${c.ranks} rank(s)${c.ranks > plan.strategy.usedRanks ? `, ${c.ranks - plan.strategy.usedRanks} idle` : ''}`,
    ),
    chip('objective:', plan.options.objective),
    chip(
      'predicted time:',
      `${fmtSeconds(plan.time.total)} (compute ${fmtSeconds(plan.time.compute)} + communication ${fmtSeconds(plan.time.communication)})`,
    ),
    chip(
      'largest per-rank volume:',
      `${fmtCount(plan.volume.maxPerRank)} elements, ${fmtRatio(plan.ratioToLowerBound)} the lower bound`,
    ),
    chip(
      'peak memory:',
      `${fmtBytes(plan.memory.peakBytes)} of ${fmtBytes(plan.memory.limitBytes)} per rank`,
    ),
    chip(
      'compute imbalance:',
      `${(plan.compute.imbalance * 100).toFixed(1)}% (max ${(plan.options.maxImbalance * 100).toFixed(1)}%)`,
    ),
  ];
  if (measured && measured.ranks.length > 0) {
    const worst = Math.max(...measured.ranks.map((r) => r.total));
    chips.push(
      chip('measured:', `${fmtSeconds(worst)} slowest rank${measured.label ? ` (${measured.label})` : ''}`),
    );
  }
  const seq = plan.strategy.sequential;
  const levels = plan.strategy.levels
    .map(
      (l) =>
        `<li>${escapeHtml(l.name)}: ${escapeHtml(l.description)} — ${l.usedParts} of ${l.parts} used, brick ≤ ${Math.ceil(l.brick.m)}×${Math.ceil(l.brick.n)}×${Math.ceil(l.brick.k)}</li>`,
    )
    .concat(
      seq.m * seq.n * seq.k > 1
        ? [`<li>sequential steps ${seq.m}×${seq.n}×${seq.k}: ${escapeHtml(seq.reason)}</li>`]
        : [],
    )
    .join('');
  const idleText = idleList ? `<p class="hint">Idle ranks: ${escapeHtml(idleList)}</p>` : '';
  return `<div class="chips">${chips.join('')}</div><p class="hint">${escapeHtml(plan.strategy.description)}</p><ul class="levels">${levels}</ul>${idleText}`;
}

/** The JSON the page's script reads; `<` is escaped so no string can close the script element. */
function dataScript(value: unknown): string {
  return `<script type="application/json" id="plan-data">${JSON.stringify(value).replace(/</g, '\\u003c')}</script>`;
}

export function renderPlanHtml(plan: Plan, options: RenderOptions = {}): string {
  const colours = coloursFor(plan);
  const cube = renderCube(plan, colours);
  const p = plan.problem;
  const title =
    options.title ?? `redblue plan: ${p.m}×${p.n}×${p.k} ${p.dtype} on ${plan.cluster.ranks} rank(s)`;
  const modeOptions = colours.modes.map((m) => `<option value="${m}">${MODE_LABEL[m]}</option>`).join('');
  const colourNote =
    plan.cluster.ranks > MAX_DISTINCT
      ? `<p class="hint">More than ${MAX_DISTINCT} ranks: colours are per host.</p>`
      : '';
  const cubeNotes = cube.notes.map((n) => `<p class="hint">${escapeHtml(n)}</p>`).join('');
  const table = tableData(plan, options.measured);
  const measuredNote = options.measured
    ? `<p class="hint">Measured times${options.measured.label ? ` (${escapeHtml(options.measured.label)})` : ''} beside the predicted ones.</p>`
    : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style></head>
<body><main>
<h1>${escapeHtml(title)}</h1>
<section id="summary">${summary(plan, options.measured)}</section>
<div class="top">
<div class="panel" id="space"><h2>Iteration space: ${cube.heading}</h2>
<div class="controls"><label>colour by <select id="colour-mode">${modeOptions}</select></label>
<label><input type="checkbox" id="explode"> explode</label>
<label>peel <input type="range" id="peel" min="0" max="0" step="1" value="0"> <span id="peel-text"></span></label></div>
${cube.svg}
${colours.modes.map((m) => legend(plan, colours, m)).join('')}${colourNote}${cubeNotes}
<p class="hint">Point at a brick for its rank, host, node and ranges; click it to find it in the table.</p></div>
<div class="panel" id="volume"><h2>Communication volume</h2>${renderVolumeBars(plan)}</div>
</div>
<section id="schedule"><h2>Predicted schedule per rank</h2>${renderGantt(plan, options.measured)}</section>
${renderExecuted(plan, options.measured)}
<section id="ranks"><h2>Ranks</h2>${measuredNote}
<div id="rank-scroll"><table id="rank-table"><thead></thead><tbody></tbody><tfoot></tfoot></table></div>
<p class="hint">${plan.ranks.length} rank(s); click a heading to sort. Volumes in elements (el); the last row holds each column's maximum (point at it for the rank).</p></section>
<section id="placement"><h2>Stationary operands</h2>${renderPlacement(plan)}</section>
<footer>Plan schema v${plan.schemaVersion} · ${plan.cluster.hosts} host(s) × nodes ${escapeHtml(summariseNodes(plan.cluster.nodesPerHost))} · links: ${escapeHtml(linksText(plan))}</footer>
</main>
<div id="tooltip" role="tooltip" hidden></div>
${dataScript({ table })}
<script>${CLIENT_SCRIPT}</script>
</body></html>
`;
}

function summariseNodes(nodes: number[]): string {
  const uniq = [...new Set(nodes)];
  return uniq.length === 1
    ? String(uniq[0])
    : nodes.length > 8
      ? `${Math.min(...nodes)}–${Math.max(...nodes)}`
      : nodes.join(', ');
}

function linksText(plan: Plan): string {
  const l = plan.cluster.links;
  const one = (name: string, s: { bandwidth: number; latency: number }) =>
    `${name} ${(s.bandwidth / 1e9).toPrecision(3)} GB/s, ${fmtSeconds(s.latency)}`;
  return [one('memory', l.memory), one('inter-socket', l.interSocket), one('network', l.network)].join('; ');
}
