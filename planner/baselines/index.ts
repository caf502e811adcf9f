// Every baseline planned on the same ranks and judged by the same evaluator (volume, memory, time)
// as the plan itself, so the table compares like with like.
import type { EvalContext } from '../context.js';
import { gridCandidate, type Candidate } from '../candidates.js';
import type { Evaluation } from '../evaluate.js';
import type { GridScoreInput } from '../grid-search.js';
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
 * where COSMA's grid is balanced). */
export function cosmaCandidate(box: Brick, ranks: readonly number[], s: GridScoreInput): Candidate {
  const { m, n, k } = s;
  const g = cosmaGrid(m, n, k, ranks.length);
  const c = gridCandidate(box, g, ranks, s.gran);
  return { ...c, description: `${c.description}, steps ${cosmaSteps(m, n, k, g)}` };
}

export function runBaselines(
  ctx: EvalContext,
  box: Brick,
  s: GridScoreInput,
  planMax: number,
): Record<string, BaselinePlan> {
  const P = ctx.P;
  const ranks = Array.from({ length: P }, (_, i) => i);
  const out: Record<string, BaselinePlan> = {};
  const add = (name: string, c: Candidate) => {
    const { ev, fits } = evaluateCandidate(ctx, c);
    out[name] = toBaseline(name, c, ev, fits, planMax);
  };
  add('1D-m', gridCandidate(box, oneDGrid(0, s.m, P), ranks, s.gran));
  add('1D-n', gridCandidate(box, oneDGrid(1, s.n, P), ranks, s.gran));
  add('1D-k', gridCandidate(box, oneDGrid(2, Math.ceil(s.k / s.gran), P), ranks, s.gran));
  add('2D-SUMMA', gridCandidate(box, summaGrid(P, s.m, s.n), ranks, s.gran));
  add('2.5D', gridCandidate(box, twoFiveDGrid(P, s), ranks, s.gran));
  if (carmaApplies(P)) {
    add('CARMA', {
      tree: recursiveTree(box, ranks, new Array(P).fill(1), s.gran),
      family: 'recursive',
      grid: null,
      used: P,
      description: 'recursive halving of the largest dimension',
    });
  } else out['CARMA'] = notApplicable('CARMA', `CARMA needs P a power of two (P = ${P})`);
  add('COSMA', cosmaCandidate(box, ranks, s));
  return out;
}
