// Communication volume as horizontal bars: the largest per-rank volume against the lower bound and
// every baseline, and the total volume split by link class. Bars far beyond the plan are clipped
// (marked ⟫) so the plan's own bar stays readable.
import { LINK_CLASSES, type LinkClass, type Plan } from '../types.js';
import { escapeHtml, fmtBytes, fmtElements, fmtRatio } from './format.js';

const CLIP = 5;
export const LINK_LABEL: Record<LinkClass, string> = {
  network: 'network',
  interSocket: 'inter-socket',
  memory: 'memory',
};

interface Row {
  name: string;
  cls: string;
  segments: { value: number; cls: string; title: string }[];
  text: string;
  note?: string;
}

function chart(rows: Row[], reference: number, caption: string): string {
  const totals = rows.map((r) => r.segments.reduce((s, x) => s + x.value, 0));
  const max = Math.max(...totals, 1e-300);
  const scale = Math.max(reference, Math.min(max, CLIP * reference)) || max;
  const body = rows
    .map((r, i) => {
      const total = totals[i]!;
      const clipped = total > scale * 1.0001;
      let used = 0;
      const segs = r.segments
        .map((s) => {
          const w = Math.max(0, Math.min((s.value / scale) * 100, 100 - used));
          used += w;
          return w > 0
            ? `<span class="seg ${s.cls}" style="width:${w.toFixed(2)}%" title="${escapeHtml(s.title)}"></span>`
            : '';
        })
        .join('');
      const note = r.note ? `<span class="note">${escapeHtml(r.note)}</span>` : '';
      return (
        `<div class="bar-row ${r.cls}"><span class="bar-name">${escapeHtml(r.name)}</span>` +
        `<span class="bar-track">${segs}${clipped ? '<span class="clip" title="bar clipped">⟫</span>' : ''}</span>` +
        `<span class="bar-value">${escapeHtml(r.text)}${note}</span></div>`
      );
    })
    .join('');
  return `<div class="bars"><div class="bar-caption">${escapeHtml(caption)}</div>${body}</div>`;
}

export function renderVolumeBars(plan: Plan): string {
  const planMax = plan.volume.maxPerRank;
  const bound = plan.lowerBound.perRank;
  const baselines = Object.values(plan.baselines);
  const inapplicable = baselines.filter((b) => !b.applicable);
  const applicable = baselines.filter((b) => b.applicable);

  const perRank: Row[] = [
    {
      name: 'lower bound',
      cls: 'bound',
      segments: [{ value: bound, cls: 'bound', title: 'per-rank lower bound' }],
      text: `${fmtElements(bound)}`,
    },
    {
      name: 'this plan',
      cls: 'plan',
      segments: [{ value: planMax, cls: 'plan', title: 'largest per-rank volume of the plan' }],
      text: `${fmtElements(planMax)} · ${fmtBytes(plan.volume.maxPerRankBytes)} · ${fmtRatio(plan.ratioToLowerBound)} bound`,
    },
    ...applicable.map((b) => ({
      name: b.name,
      cls: b.fitsMemory ? 'baseline' : 'baseline over',
      segments: [{ value: b.volume.maxPerRank, cls: 'baseline', title: b.description }],
      text: `${fmtElements(b.volume.maxPerRank)} · ${fmtRatio(b.ratioToPlan)} plan`,
      note: b.fitsMemory ? undefined : ' over memory',
    })),
  ];
  const planTotal = plan.volume.total;
  const stacked = (
    name: string,
    cls: string,
    per: Record<LinkClass, number>,
    total: number,
    bytes: number,
    note?: string,
  ): Row => ({
    name,
    cls,
    segments: [...LINK_CLASSES]
      .reverse()
      .map((c) => ({ value: per[c], cls: `link-${c}`, title: `${LINK_LABEL[c]}: ${fmtElements(per[c])}` })),
    text: `${fmtElements(total)} · ${fmtBytes(bytes)}${cls === 'plan' ? '' : ` · ${fmtRatio(planTotal > 0 ? total / planTotal : NaN)} plan`}`,
    note,
  });
  const totals: Row[] = [
    stacked('this plan', 'plan', plan.volume.perLinkClass, planTotal, plan.volume.totalBytes),
    ...applicable.map((b) =>
      stacked(b.name, 'baseline', b.volume.perLinkClass, b.volume.total, b.volume.totalBytes),
    ),
  ];
  const legend =
    '<div class="legend-links">' +
    [...LINK_CLASSES]
      .reverse()
      .map((c) => `<span><i class="sw link-${c}"></i>${LINK_LABEL[c]}</span>`)
      .join('') +
    '</div>';
  const na = inapplicable.length
    ? `<ul class="na">${inapplicable.map((b) => `<li>${escapeHtml(b.name)}: not applicable${b.reason ? ` (${escapeHtml(b.reason)})` : ''}</li>`).join('')}</ul>`
    : '';
  const nothing =
    plan.volume.total === 0
      ? '<p class="hint">This plan moves no data: every rank already holds what it needs.</p>'
      : '';
  const clipNote = `${nothing}<p class="hint">Elements moved (A and B received, partial C sent). Bars longer than ${CLIP}× the plan are clipped (⟫); the numbers are exact.</p>`;
  return (
    chart(perRank, Math.max(planMax, bound), 'Largest per-rank volume') +
    chart(totals, planTotal, 'Total volume by link class (slowest first)') +
    legend +
    na +
    clipNote
  );
}
