// renderModelSplitHtml: the tensor-parallel split of a model (`redblue generate --dry-run
// --html FILE`) as one self-contained page: for each axis the split cuts (KV heads, the FFN's
// inner dimension, the vocabulary) a bar divided among the ranks, and a table of what each rank
// holds. No script, no network: it opens anywhere.
import { writeFileSync } from 'node:fs';
import { embeddingLines, type ModelSplit } from '../model-split.js';
import { escapeHtml, fmtBytes } from './format.js';
import { STYLE } from './style.js';

export interface ModelSplitPage {
  /** The model's name or file, for the title. */
  model: string;
  /** Shown under the title, e.g. "llama, 22 layers, 2048 wide". */
  description: string;
}

const hue = (rank: number, ranks: number) =>
  `hsl(${Math.round(210 + (rank * 360) / Math.max(ranks, 1)) % 360} 55% 52%)`;

function bar(
  split: ModelSplit,
  label: string,
  pick: (r: ModelSplit['ranks'][number]) => [number, number],
): string {
  const total = Math.max(...split.ranks.map((r) => pick(r)[1]));
  const parts = split.ranks
    .map((r) => {
      const [lo, hi] = pick(r);
      if (hi <= lo) return '';
      const x = (lo / total) * 100;
      const w = ((hi - lo) / total) * 100;
      const title = `rank ${r.rank}: ${label} [${lo}, ${hi})`;
      return (
        `<rect class="part" data-rank="${r.rank}" x="${x.toFixed(4)}%" y="0" width="${w.toFixed(4)}%" height="28" ` +
        `fill="${hue(r.rank, split.ranks.length)}"><title>${escapeHtml(title)}</title></rect>` +
        (w > 6
          ? `<text x="${(x + w / 2).toFixed(4)}%" y="18" text-anchor="middle" fill="#fff" font-size="12">rank ${r.rank}</text>`
          : '')
      );
    })
    .join('');
  return `<h3>${escapeHtml(label)} (${total})</h3><svg class="split-bar" width="100%" height="28" role="img" aria-label="${escapeHtml(label)}">${parts}</svg>`;
}

export function renderModelSplitHtml(split: ModelSplit, page: ModelSplitPage): string {
  const range = (r: [number, number]) => `[${r[0]}, ${r[1]})`;
  const rows = split.ranks
    .map(
      (r) =>
        `<tr><td><i class="sw" style="background:${hue(r.rank, split.ranks.length)}"></i>${r.rank}</td><td>${r.rate}</td>` +
        `<td>${range(r.kvHeads)}</td><td>${range(r.qHeads)}</td><td>${range(r.ff)}</td><td>${range(r.vocab)}</td>` +
        `<td>${fmtBytes(r.weightBytes)}</td><td>${fmtBytes(r.kvCacheBytes)}</td></tr>`,
    )
    .join('');
  const notes = [
    ...embeddingLines(split),
    `${split.groupSize} query heads per KV head; n_ff cut in blocks of ${split.ffBlock}`,
    ...split.notes,
  ]
    .map((n) => `<li>${escapeHtml(n)}</li>`)
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(`redblue: ${page.model} split over ${split.ranks.length} rank(s)`)}</title>
<style>${STYLE}
.split-bar { display: block; margin: 4px 0 14px; border-radius: 4px; background: #eee; }
.split-bar .part:hover { opacity: 0.8; }
</style></head>
<body><main>
<h1>${escapeHtml(page.model)} over ${split.ranks.length} rank(s)</h1>
<p>${escapeHtml(page.description)}; KV cache for ${split.context} positions.</p>
<section>
${bar(split, 'KV heads', (r) => r.kvHeads)}
${bar(split, 'query heads', (r) => r.qHeads)}
${bar(split, 'FFN inner dimension (n_ff)', (r) => r.ff)}
${bar(split, 'vocabulary rows', (r) => r.vocab)}
</section>
<section><h2>Per rank</h2>
<table id="rank-table"><thead><tr><th>rank</th><th>rate</th><th>KV heads</th><th>query heads</th><th>n_ff</th><th>vocabulary rows</th><th>weights</th><th>KV cache</th></tr></thead>
<tbody>${rows}</tbody></table>
<ul>${notes}</ul></section>
</main></body></html>
`;
}

export function writeModelSplitHtml(split: ModelSplit, file: string, page: ModelSplitPage): void {
  try {
    writeFileSync(file, renderModelSplitHtml(split, page));
  } catch (e) {
    throw new Error(`cannot write the split page to ${file}: ${(e as Error).message}`);
  }
}
