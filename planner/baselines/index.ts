// Every baseline planned on the same ranks and judged by the same evaluator (volume, memory, time)
// as the plan itself, so the table compares like with like.
import type { EvalContext } from '../context.js';
import { gridCandidate, type Candidate } from '../candidates.js';
import type { Evaluation } from '../evaluate.js';
import type { Grid, GridScoreInput } from '../grid-search.js';
import { evaluateCandidate } from '../select.js';
import { recursiveTree } from '../tree.js';
import type { BaselinePlan, Brick } from '../types.js';
import { carmaApplies, oneDGrid, summaGrid, twoFiveDGrid } from './classic.js';
import { cosmaGrid, cosmaSteps } from './cosma.js';

export function toBaseline(
  name: string,
  c: Candidate,
  ev: Evaluation,
  fits: boolean,
  planMax: number,
): BaselinePlan {
  return {
    name,
    applicable: true,
    description: c.description,
    usedRanks: ev.usedRanks,
    volume: {
      maxPerRank: ev.maxVolume,
      total: ev.totalVolume,
      perLinkClass: ev.perLinkClass,
      totalBytes: ev.totalVolumeBytes,
      maxPerRankBytes: ev.maxVolumeBytes,
    },
    ratioToPlan: planMax > 0 ? ev.maxVolume / planMax : ev.maxVolume === 0 ? 1 : null,
    peakMemoryBytes: ev.peakBytes,
    imbalance: ev.imbalance,
    time: ev.time,
    fitsMemory: fits,
  };
}

function notApplicable(name: string, reason: string): BaselinePlan {
  const zero = { memory: 0, interSocket: 0, network: 0 };
  return {
    name,
    applicable: false,
    reason,
    description: 'n/a',
    usedRanks: 0,
    volume: { maxPerRank: 0, total: 0, perLinkClass: zero, totalBytes: 0, maxPerRankBytes: 0 },
    ratioToPlan: null,
    peakMemoryBytes: 0,
    imbalance: 0,
    time: { compute: 0, communication: 0, total: 0 },
    fitsMemory: false,
  };
}

/** The COSMA candidate (also offered to the planner's own search, so the plan can never lose to it
 * where COSMA's grid is balanced). `P`: the ranks COSMA is given, when `ranks` lists only those
 * that can get work. */
export function cosmaCandidate(
  box: Brick,
  ranks: readonly number[],
  s: GridScoreInput,
  P = ranks.length,
): Candidate {
  const { m, n, k } = s;
  const g = cosmaGrid(m, n, k, P);
  const c = gridCandidate(box, g, ranks, s.gran, P);
  return { ...c, description: `${c.description}, steps ${cosmaSteps(m, n, k, g)}` };
}

/** `P`: the cluster's ranks, when ctx lists only those that can get work. Each method chooses its
 * grid for all P ranks (no grid has more parts than the product has bricks, so it lands on the
 * listed ranks) and is evaluated on the listed ones. */
export function runBaselines(
  ctx: EvalContext,
  box: Brick,
  s: GridScoreInput,
  planMax: number,
  P = ctx.P,
): Record<string, BaselinePlan> {
  const ranks = Array.from({ length: ctx.P }, (_, i) => i);
  const out: Record<string, BaselinePlan> = {};
  const add = (name: string, c: Candidate) => {
    const { ev, fits } = evaluateCandidate(ctx, c);
    out[name] = toBaseline(name, c, ev, fits, planMax);
  };
  const grid = (g: Grid) => gridCandidate(box, g, ranks, s.gran, P);
  add('1D-m', grid(oneDGrid(0, s.m, P)));
  add('1D-n', grid(oneDGrid(1, s.n, P)));
  add('1D-k', grid(oneDGrid(2, Math.ceil(s.k / s.gran), P)));
  add('2D-SUMMA', grid(summaGrid(P, s.m, s.n)));
  add('2.5D', grid(twoFiveDGrid(P, s)));
  if (carmaApplies(P)) {
    add('CARMA', {
      // Halves the listed ranks (halving all P would scatter its bricks across the whole cluster).
      tree: recursiveTree(box, ranks, new Array<number>(ctx.P).fill(1), s.gran),
      family: 'recursive',
      grid: null,
      used: P,
      description: 'recursive halving of the largest dimension',
    });
  } else out['CARMA'] = notApplicable('CARMA', `CARMA needs P a power of two (P = ${P})`);
  add('COSMA', cosmaCandidate(box, ranks, s, P));
  return out;
}
