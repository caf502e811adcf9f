// The page's stylesheet (inlined). System fonts only: the page must open without a network.
export const STYLE = `
:root { --ink: #1d2430; --muted: #5d6675; --line: #d9dde3; --panel: #ffffff; --bg: #f3f4f6;
  --net: #d1495b; --socket: #edae49; --mem: #66a182; --plan: #30638e; --bound: #8d99ae; --base: #a3a9b3;
  --fetch: #edae49; --compute: #30638e; --reduce: #a05195; }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 13px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", "Liberation Sans", sans-serif; }
main { max-width: 1264px; margin: 0 auto; padding: 10px 12px 24px; }
h1 { font-size: 18px; margin: 2px 0 6px; }
h2 { font-size: 15px; margin: 0 0 6px; }
section, .panel { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; margin-top: 10px; }
.chips { display: flex; flex-wrap: wrap; gap: 6px 14px; }
.chip b { font-weight: 600; }
.chip span { color: var(--muted); }
.levels { margin: 6px 0 0; padding-left: 18px; color: var(--muted); }
.top { display: grid; grid-template-columns: 600px minmax(0, 1fr); gap: 10px; }
.top > .panel { margin-top: 10px; }
.controls { display: flex; flex-wrap: wrap; gap: 4px 14px; align-items: center; margin-bottom: 4px; }
.controls label { white-space: nowrap; }
#peel { width: 120px; vertical-align: middle; }
#cube { width: 100%; height: auto; max-height: 470px; display: block; }
#cube .brick polygon { stroke: rgba(255,255,255,.8); stroke-width: .7; stroke-linejoin: round; }
#cube.colour-rank .brick { --c: var(--c-rank); }
#cube.colour-host .brick { --c: var(--c-host); }
#cube.colour-node .brick { --c: var(--c-node); }
#cube .brick .t { fill: var(--c); }
#cube .brick .l { fill: color-mix(in srgb, var(--c) 80%, black); }
#cube .brick .r { fill: color-mix(in srgb, var(--c) 62%, black); }
#cube .brick.hover .t, #cube .brick.selected .t { fill: color-mix(in srgb, var(--c) 55%, white); }
#cube .brick.hover polygon, #cube .brick.selected polygon { stroke: #111; stroke-width: 1.4; }
#cube .brick { cursor: pointer; outline: none; }
#cube.exploded .brick { transform: scale(.78); transform-box: fill-box; transform-origin: center; }
#cube .brick text { font-size: 12px; font-weight: 700; fill: #111; text-anchor: middle; pointer-events: none;
  paint-order: stroke; stroke: rgba(255,255,255,.85); stroke-width: 3px; }
#cube .axis-back { stroke: #9aa3af; stroke-dasharray: 3 3; }
#cube .axis-label { font-size: 13px; fill: var(--ink); }
.legend { display: flex; flex-wrap: wrap; gap: 2px 10px; font-size: 12px; margin-top: 4px; }
.legend .host-group { white-space: nowrap; }
.sw { display: inline-block; width: 11px; height: 11px; border-radius: 2px; vertical-align: -1px; margin: 0 3px 0 0; }
.legend .sw { margin-left: 4px; }
.ramp { display: inline-block; width: 180px; height: 11px; border-radius: 2px; vertical-align: -1px; margin: 0 6px; }
#tooltip { position: fixed; z-index: 10; pointer-events: none; max-width: 460px; background: #fff; color: var(--ink);
  border: 1px solid #9aa3af; border-radius: 5px; padding: 6px 9px; box-shadow: 0 3px 10px rgba(0,0,0,.18); font-size: 12.5px; }
#tooltip .tip-title { font-weight: 700; }
#tooltip .tip-ranges { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; }
.bars { margin-bottom: 10px; }
.bar-caption { font-weight: 600; margin-bottom: 3px; }
.bar-row { display: grid; grid-template-columns: 92px minmax(60px, 1fr) 250px; gap: 8px; align-items: center; height: 21px; }
.bar-name { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.bar-row.plan .bar-name { font-weight: 700; }
.bar-track { position: relative; height: 13px; background: #eef0f3; border-radius: 2px; display: flex; }
.seg { height: 100%; }
.seg.plan { background: var(--plan); } .seg.bound { background: var(--bound); } .seg.baseline { background: var(--base); }
.link-network { background: var(--net); } .link-interSocket { background: var(--socket); } .link-memory { background: var(--mem); }
.clip { position: absolute; right: -2px; top: -3px; font-size: 13px; color: var(--ink); background: #fff; line-height: 18px; }
.bar-value { font-size: 12px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; font-variant-numeric: tabular-nums; }
.bar-value .note { color: #b3261e; }
.bar-row.over .bar-track { opacity: .5; }
.legend-links, .legend-gantt { display: flex; gap: 14px; font-size: 12px; margin: 2px 0 4px; flex-wrap: wrap; }
.hint { color: var(--muted); font-size: 12px; margin: 4px 0 0; }
ul.na, ul.reasons { margin: 2px 0 0; padding-left: 18px; color: var(--muted); font-size: 12px; }
.gantt-scroll { max-height: 430px; overflow: auto; border: 1px solid var(--line); border-radius: 4px; }
#gantt .grid { stroke: #e3e6ea; }
#gantt .tick { font-size: 11px; fill: var(--muted); }
#gantt .row-label { font-size: 11.5px; fill: var(--ink); }
#gantt .idle { font-size: 11px; fill: var(--muted); font-style: italic; }
.g-fetch { fill: var(--fetch); background: var(--fetch); } .g-compute { fill: var(--compute); background: var(--compute); }
.g-reduce { fill: var(--reduce); background: var(--reduce); }
.m-compute { fill: #1b3a57; background: #1b3a57; } .m-exchange { fill: #b07a1e; background: #b07a1e; }
.m-total { stroke: #b3261e; stroke-width: 2; } .m-total-sw { background: #b3261e; width: 3px; }
#rank-scroll { max-height: 360px; overflow: auto; border: 1px solid var(--line); border-radius: 4px; }
#rank-table { border-collapse: collapse; width: 100%; font-size: 12px; font-variant-numeric: tabular-nums; }
#rank-table th, #rank-table td { padding: 0 6px; white-space: nowrap; text-align: right; border-bottom: 1px solid #eceef1; }
#rank-table thead th { position: sticky; top: 0; background: #e9ecf0; cursor: pointer; height: 26px; z-index: 1; }
#rank-table thead th.asc::after { content: " ▲"; } #rank-table thead th.desc::after { content: " ▼"; }
#rank-table tbody tr:not(.spacer) { height: 22px; }
#rank-table tbody tr.spacer td { padding: 0; border: 0; }
#rank-table tbody tr:hover, #rank-table tbody tr.selected { background: #fff4cc; }
#rank-table tfoot th, #rank-table tfoot td { position: sticky; bottom: 0; background: #f6f7f9; height: 24px; border-top: 1px solid var(--line); font-weight: 600; }
table.placement { border-collapse: collapse; font-size: 12px; margin-top: 6px; }
table.placement th, table.placement td { padding: 2px 8px; border-bottom: 1px solid #eceef1; text-align: left; white-space: nowrap; }
table.executed { border-collapse: collapse; font-size: 12px; margin-top: 6px; font-variant-numeric: tabular-nums; }
table.executed th, table.executed td { padding: 2px 8px; border-bottom: 1px solid #eceef1; text-align: right; white-space: nowrap; }
table.executed td.over { color: #b3261e; font-weight: 600; }
.mode-mirror { color: #30638e; font-weight: 600; } .mode-shard { color: #a05195; font-weight: 600; }
.meter { display: inline-block; position: relative; width: 160px; height: 11px; background: #eef0f3; border: 1px solid #c9ced6; vertical-align: -1px; }
.meter span { position: absolute; left: 0; top: 0; bottom: 0; }
.meter .m-peak { background: #b9c7d8; } .meter .m-placed { background: #30638e; }
.meter.over { border-color: #b3261e; }
.meter-text { margin-left: 6px; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; }
footer { color: var(--muted); font-size: 11.5px; margin-top: 10px; }
`;
