// The m×n×k iteration space as an isometric SVG, one box per rank (the bounding box of its bricks;
// sequential steps are chunks of it), painted back to front (partition.ts).
import type { Plan } from '../types.js';
import type { Colours } from './colours.js';
import { compactList } from './format.js';
import { boundingBox, brickVolume, drawBoxes } from './partition.js';

/** At most this many boxes (3 polygons each); more ranks are merged with their neighbours. */
const MAX_BOXES = 1500;
const WIDTH = 600;
const HEIGHT = 440;
const PAD = { left: 100, right: 20, top: 20, bottom: 46 };
const COS30 = Math.cos(Math.PI / 6);
const SIN30 = 0.5;

export interface CubeSvg {
  svg: string;
  /** Boxes drawn (one per active rank unless a rank's bricks do not form a box). */
  boxes: number;
  polygons: number;
  notes: string[];
  /** e.g. "12 active rank(s), one box each". */
  heading: string;
}

export function renderCube(plan: Plan, colours: Colours): CubeSvg {
  const notes: string[] = [];
  const { m, n, k } = plan.problem;
  const maxDim = Math.max(m, n, k);
  // Very thin dimensions are drawn thicker than to scale so their bricks stay visible.
  const len = (d: number) => Math.max(d / maxDim, 0.15);
  const [Lm, Ln, Lk] = [len(m), len(n), len(k)];
  if (Lm * maxDim !== m || Ln * maxDim !== n || Lk * maxDim !== k)
    notes.push('Thin dimensions are drawn thicker than to scale.');
  const unit = Math.min(WIDTH / ((Lm + Ln) * COS30), HEIGHT / ((Lm + Ln) * SIN30 + Lk));
  const ox = PAD.left + Ln * COS30 * unit;
  const oy = PAD.top + Lk * unit;
  // m runs down-right, n down-left, k up; the viewer sits at +m, +n, +k (origin hidden at the back).
  const pt = (im: number, jn: number, kk: number) => {
    const x = (im / m) * Lm;
    const y = (jn / n) * Ln;
    const z = (kk / k) * Lk;
    return [ox + (x - y) * COS30 * unit, oy + (x + y) * SIN30 * unit - z * unit] as const;
  };
  const poly = (pts: (readonly [number, number])[]) =>
    pts.map(([a, b]) => `${a.toFixed(1)},${b.toFixed(1)}`).join(' ');

  const { boxes: ordered, notes: boxNotes } = drawBoxes(plan, MAX_BOXES);
  notes.push(...boxNotes);
  const labelRanks = plan.cluster.ranks <= 64;
  const parts: string[] = [];
  for (const { ranks, box } of ordered) {
    const r = ranks[0]!;
    const [m0, m1] = box.m;
    const [n0, n1] = box.n;
    const [k0, k1] = box.k;
    const top = poly([pt(m0, n0, k1), pt(m1, n0, k1), pt(m1, n1, k1), pt(m0, n1, k1)]);
    const left = poly([pt(m0, n1, k1), pt(m1, n1, k1), pt(m1, n1, k0), pt(m0, n1, k0)]);
    const right = poly([pt(m1, n0, k1), pt(m1, n1, k1), pt(m1, n1, k0), pt(m1, n0, k0)]);
    const style =
      `--c-rank:${colours.rank(r.rank, r.host, r.node)};` +
      `--c-host:${colours.host(r.host)};--c-node:${colours.node(r.node)}`;
    // A merged box names its ranks; a single rank's box gives the rank's whole footprint.
    const bb = ranks.length > 1 ? box : boundingBox(r.bricks.filter((b) => brickVolume(b) > 0));
    const group =
      ranks.length > 1
        ? `data-count="${ranks.length}" data-ranks="${compactList(ranks.map((x) => x.rank))}" ` +
          `data-hosts="${compactList(ranks.map((x) => x.host))}" `
        : '';
    let label = '';
    if (labelRanks) {
      const [cx, cy] = pt((m0 + m1) / 2, (n0 + n1) / 2, k1);
      const [ax] = pt(m1, n0, k1);
      const [bx] = pt(m0, n1, k1);
      const face = ax - bx;
      const size = Math.min(22, Math.max(11, face / 7));
      if (face > 26)
        label = `<text x="${cx.toFixed(1)}" y="${(cy + size / 3).toFixed(1)}" style="font-size:${size.toFixed(0)}px">${r.rank}</text>`;
    }
    parts.push(
      `<g class="brick" tabindex="-1" data-rank="${r.rank}" data-host="${r.host}" data-node="${r.node}" ` +
        `data-m="${bb.m[0]},${bb.m[1]}" data-n="${bb.n[0]},${bb.n[1]}" data-k="${bb.k[0]},${bb.k[1]}" ` +
        `data-k0="${k0}" data-steps="${r.bricks.length}" ${group}style="${style}">` +
        `<polygon class="t" points="${top}"/><polygon class="l" points="${left}"/>` +
        `<polygon class="r" points="${right}"/>${label}</g>`,
    );
  }
  // Outline and axis labels of the whole cube.
  const corners = {
    back: pt(0, 0, 0),
    leftB: pt(0, n, 0),
    frontB: pt(m, n, 0),
    rightB: pt(m, 0, 0),
    leftT: pt(0, n, k),
    frontT: pt(m, n, k),
    rightT: pt(m, 0, k),
    backT: pt(0, 0, k),
  };
  const line = (a: readonly [number, number], b: readonly [number, number], cls: string) =>
    `<line class="${cls}" x1="${a[0].toFixed(1)}" y1="${a[1].toFixed(1)}" x2="${b[0].toFixed(1)}" y2="${b[1].toFixed(1)}"/>`;
  const back = [
    line(corners.back, corners.leftB, 'axis-back'),
    line(corners.back, corners.rightB, 'axis-back'),
    line(corners.back, corners.backT, 'axis-back'),
  ].join('');
  const mid = (a: readonly [number, number], b: readonly [number, number]) => [
    (a[0] + b[0]) / 2,
    (a[1] + b[1]) / 2,
  ];
  const [mx, my] = mid(corners.leftB, corners.frontB);
  const [nx, ny] = mid(corners.frontB, corners.rightB);
  const [kx, ky] = mid(corners.leftB, corners.leftT);
  const axes =
    `<text class="axis-label" x="${(mx! - 14).toFixed(1)}" y="${(my! + 26).toFixed(1)}" text-anchor="end">m = ${m} ↘</text>` +
    `<text class="axis-label" x="${(nx! + 14).toFixed(1)}" y="${(ny! + 26).toFixed(1)}" text-anchor="start">↙ n = ${n}</text>` +
    `<text class="axis-label" x="${(kx! - 10).toFixed(1)}" y="${ky!.toFixed(1)}" text-anchor="end">k = ${k} ↑</text>`;
  const vbW = PAD.left + (Lm + Ln) * COS30 * unit + PAD.right;
  const vbH = PAD.top + ((Lm + Ln) * SIN30 + Lk) * unit + PAD.bottom;
  const svg =
    `<svg id="cube" class="colour-${colours.modes[0]}" viewBox="0 0 ${vbW.toFixed(0)} ${vbH.toFixed(0)}" ` +
    `role="img" aria-label="iteration space split into ${ordered.length} bricks">` +
    `<g class="outline">${back}</g><g class="bricks">${parts.join('')}</g>${axes}</svg>`;
  const active = new Set(ordered.flatMap((b) => b.ranks.map((r) => r.rank))).size;
  const heading =
    ordered.length === active
      ? `${active} active rank(s), one box each`
      : ordered.length > active
        ? `${active} active rank(s) in ${ordered.length} bricks`
        : `${active} active ranks merged into ${ordered.length} boxes`;
  return { svg, boxes: ordered.length, polygons: ordered.length * 3, notes, heading };
}
